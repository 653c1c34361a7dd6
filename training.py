"""Train a registered model by name; resumable, logged, and never leaving a broken file.

    python training.py colorizer_3 --epochs 20 --max-minutes 15
    python -c "import training; training.train('colorizer_3', epochs=20)"

Files in `models_dir` for a model NAME:
    NAME.keras, NAME.json   the trained model (best epoch on val_loss) and its record
    NAME.log.csv            per-epoch history (CSVLogger)
    NAME.run/               work files of an unfinished run (backup, best checkpoint); a run
                            started again with the same arguments continues from there
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import pathlib
import shutil
import time

import numpy as np
import keras

import data
import models

# Settled by benchmarks/throughput.py --compare and benchmarks/speed_quality.py (README, Performance):
# on this AVX-512 BF16 CPU, bfloat16 at batch 128 trains every model 1.15-1.77x faster than float32 at
# batch 32 (colorizer_3 1.54x), within the 0.1 dB quality tolerance; XLA was slower on every model.
DEFAULTS = dict(epochs=10, batch_size=128, jit_compile=False, precision="auto")
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def cpu_has_bf16():
    """True where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere TF emulates
    it and mixed bfloat16 is slower than float32."""
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to know, stay with float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision):
    """"auto" -> "bfloat16" on a CPU with native bfloat16 and no GPU, else "float32"; any other
    value is checked against PRECISIONS."""
    if precision == "auto":
        import tensorflow as tf
        return "bfloat16" if cpu_has_bf16() and not tf.config.list_logical_devices("GPU") else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of: auto, {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def precision_policy(precision):
    """Build the models inside under a mixed-precision policy (`bfloat16` for CPUs with AVX-512
    BF16/AMX, `float16` for GPUs): layers compute in that type, variables stay float32, and the
    output layers are float32 (see models.py). The previous global policy comes back on exit."""
    precision = resolve_precision(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TimeBudget(keras.callbacks.Callback):
    """Stop after the epoch in which `max_minutes` of training time (summed over resumed runs)
    run out, and keep the count of finished epochs and seconds in `state_path`. Keras has no
    wall-clock callback, hence this one."""

    def __init__(self, max_minutes, state_path):
        super().__init__()
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.state_path = pathlib.Path(state_path)
        self.state = _read_json(self.state_path) or {"epochs_done": 0, "seconds": 0.0}
        self.stopped = False

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.state["seconds"] += time.perf_counter() - self._t
        self.state["epochs_done"] = epoch + 1
        _write_json(self.state_path, self.state)
        if self.max_seconds is not None and self.state["seconds"] >= self.max_seconds:
            self.stopped = True
            self.model.stop_training = True


def _read_json(path):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path, obj):
    """Write to a temporary name and rename: an interrupted write never leaves half a file."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


def save_model(model, path):
    """Save a `.keras` file atomically (temporary name, then rename), its archive deflated:
    Keras stores it uncompressed, and a fresh optimizer's all-zero moments then cost twice the
    weights' size on disk."""
    import zipfile
    path = pathlib.Path(path)
    tmp, packed = path.with_name(path.stem + ".tmp.keras"), path.with_name(path.stem + ".tmp2.keras")
    model.save(tmp)
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    tmp.unlink()
    os.replace(packed, path)


def read_history(csv_path):
    """Per-epoch history from a CSVLogger file; a row repeated by a resumed epoch counts once (last)."""
    import csv
    if not pathlib.Path(csv_path).exists():
        return {}
    rows = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    history = {}
    for epoch in sorted(rows):
        for k, v in rows[epoch].items():
            history.setdefault(k, []).append(int(v) if k == "epoch" else float(v))
    return history


def default_strategy():
    """MirroredStrategy over all GPUs when there are several, else the default (one device)."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def load_training_images(data_dir=None, subset=None, seed=0):
    """CIFAR-10 training images (uint8) and their source description; `subset` keeps a seeded
    random sample of that many (the folder is ordered by class, so never the first N)."""
    (x, y), _ = data.load_cifar10(data_dir)
    source = str(data_dir or os.environ.get("CIFAR10_DIR") or "keras.datasets.cifar10")
    if subset is not None:
        if not 0 < subset <= len(x):
            raise ValueError(f"subset must be between 1 and {len(x)}, got {subset}")
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), subset, replace=False))]
    return x, source


def _required_models(builder, models_dir):
    """Load the trained models a builder sits on (colorizer_2 -> autoencoder_1)."""
    out = {}
    for name in builder.requires:
        path = pathlib.Path(models_dir) / f"{name}.keras"
        if not path.exists():
            raise FileNotFoundError(
                f"{builder.__name__} builds on a trained {name}, and {path} does not exist. "
                f"Train it first: python training.py {name} --models-dir {models_dir}")
        out[name] = keras.models.load_model(path)
    return out


def train(model_name, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"], max_minutes=None,
          data_dir=None, subset=None, models_dir="saved_models", seed=0, resume=True, overwrite=False,
          learning_rate=None, val_fraction=0.1, jit_compile=DEFAULTS["jit_compile"],
          precision=DEFAULTS["precision"], strategy=None, verbose="auto"):
    """Train `model_name` on CIFAR-10 and write `models_dir/<name>.keras` and `.json`.

    The data pipeline follows the model's I/O contract; the validation split (`val_fraction`,
    seeded) comes out of the training set. Killed and started again with the same arguments,
    the run continues from its last finished epoch. `max_minutes` stops after the epoch in
    which the budget runs out. `precision` ("auto", "float32", "bfloat16", "float16"; auto is
    bfloat16 on CPUs with native bfloat16, else float32) and `jit_compile` (XLA) change how
    training computes, not what is saved: the saved model is float32.
    Returns the record written to the JSON file.
    """
    builder = models._builder(model_name)  # an unknown name raises the error that lists the names
    precision = resolve_precision(precision)  # before anything is written
    models_dir = pathlib.Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    final, record_path = models_dir / f"{model_name}.keras", models_dir / f"{model_name}.json"
    run_dir, csv_path = models_dir / f"{model_name}.run", models_dir / f"{model_name}.log.csv"
    config = dict(model_name=model_name, epochs=epochs, batch_size=batch_size, max_minutes=max_minutes,
                  data_dir=str(data_dir or os.environ.get("CIFAR10_DIR") or ""), subset=subset, seed=seed,
                  learning_rate=learning_rate, val_fraction=val_fraction, jit_compile=bool(jit_compile),
                  precision=precision)

    previous = _read_json(run_dir / "config.json")
    resuming = resume and previous == config
    if final.exists() and not resuming and not overwrite:
        done = _read_json(record_path) or {}
        if done.get("config") == config:
            print(f"{final} is already trained with these arguments; nothing to do.")
            return done
        raise FileExistsError(
            f"{final} already exists (trained with {done.get('config')}); pass overwrite=True "
            f"(--overwrite) to replace it, or choose another models_dir.")
    if not resuming:
        shutil.rmtree(run_dir, ignore_errors=True)
        csv_path.unlink(missing_ok=True)
    run_dir.mkdir(exist_ok=True)
    _write_json(run_dir / "config.json", config)

    keras.utils.set_random_seed(seed)
    x_train, source = load_training_images(data_dir, subset, seed)
    inputs, outputs = builder.inputs, builder.outputs
    strategy = strategy or default_strategy()
    # Several replicas cannot split a short last batch evenly (TF raises in AddN): drop it there.
    train_ds, val_ds = data.make_train_val(x_train, inputs, outputs, batch_size, val_fraction, seed,
                                           drop_remainder=strategy.num_replicas_in_sync > 1)
    train_idx, _ = data.split_train_val(len(x_train), val_fraction, seed)  # the same split
    n_train = len(train_idx)

    kwargs = _required_models(builder, models_dir)
    if builder.data_kwargs:  # e.g. colorizer_4's ab bins, from the training part only
        kwargs.update(builder.data_kwargs(x_train[train_idx]))
    with strategy.scope(), precision_policy(precision):
        model = models.get_model(model_name, **kwargs)
        model.jit_compile = bool(jit_compile)
        if learning_rate is not None:
            model.optimizer.learning_rate = learning_rate

    history = read_history(csv_path)
    budget = TimeBudget(max_minutes, run_dir / "state.json")
    if resuming and budget.state["epochs_done"]:
        print(f"Resuming {model_name} from epoch {budget.state['epochs_done']} "
              f"({budget.state['seconds'] / 60:.1f} min already trained).")
    best_so_far = min(history.get("val_loss", [math.inf]))
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=None if math.isinf(best_so_far) else best_so_far),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        budget,  # last: it records an epoch as done only once it is backed up
    ]
    t0 = time.perf_counter()
    # shuffle=False: the dataset shuffles itself (seeded), fit cannot shuffle a tf.data pipeline
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    history = read_history(csv_path)

    # The only early stops are the time budget and TerminateOnNaN.
    terminated = budget.state["epochs_done"] < epochs and not budget.stopped
    losses = np.asarray(history.get("loss", []) + history.get("val_loss", []), np.float64)
    if terminated or not np.all(np.isfinite(losses)) or \
            not all(np.all(np.isfinite(w)) for w in model.get_weights()):
        shutil.rmtree(run_dir, ignore_errors=True)
        raise RuntimeError(
            f"Training {model_name} diverged: the loss became NaN or inf (epoch "
            f"{len(history.get('loss', []))}); no model was saved. Try a lower learning_rate "
            f"(now {float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)):g}).")

    best_path = run_dir / "best.keras"
    best = keras.models.load_model(best_path) if best_path.exists() else model
    # Save the best weights in a freshly compiled model: its optimizer's moments are zeros, which
    # deflate to nothing, so the file is a third of the size; it loads ready to predict or fine-tune.
    clean = models.get_model(model_name, **kwargs)
    clean.set_weights(best.get_weights())
    clean.optimizer.build(clean.trainable_variables)  # zero moments: loads without a mismatch warning
    epochs_run = budget.state["epochs_done"]
    seconds = budget.state["seconds"]
    import tensorflow as tf
    record = dict(
        model=model_name, kind=builder.kind, inputs=inputs, outputs=outputs,
        params=int(model.count_params()), epochs_run=epochs_run,
        best_epoch=int(np.argmin(history["val_loss"])) + 1, best_val_loss=float(np.min(history["val_loss"])),
        stopped_by="time budget" if budget.stopped else "epochs",
        train_minutes=seconds / 60, images_per_s=n_train * epochs_run / max(seconds, 1e-9),
        batch_size=batch_size, precision=precision, jit_compile=bool(jit_compile), seed=seed,
        data_source=source, train_images=n_train,
        val_images=len(x_train) - n_train, tensorflow=tf.__version__, keras=keras.__version__,
        date=datetime.datetime.now().isoformat(timespec="seconds"), this_session_seconds=time.perf_counter() - t0,
        config=config, history=history)
    save_model(clean, final)
    _write_json(record_path, record)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"Saved {final} (epoch {record['best_epoch']} of {epochs_run}, val_loss {record['best_val_loss']:.4f}, "
          f"{seconds / 60:.1f} min, {record['images_per_s']:.0f} images/s)")
    return record


def main(argv=None):
    p = argparse.ArgumentParser(description="Train a registered model on CIFAR-10.")
    p.add_argument("model", nargs="+", help=f"one or more of: {', '.join(models.MODELS)}")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--models-dir", default="saved_models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default=DEFAULTS["precision"],
                   help="compute type of training (default auto: bfloat16 on CPUs with AVX-512 BF16 or AMX, "
                        "else float32); the saved model is float32")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=DEFAULTS["jit_compile"],
                   help="XLA-compile the training step")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-resume", dest="resume", action="store_false")
    p.add_argument("--verbose", default="auto")
    args = p.parse_args(argv)
    for name in args.model:
        if name not in models.MODELS:
            p.error(f"Unknown model '{name}'; choose one of: {', '.join(models.MODELS)}")
    verbose = int(args.verbose) if args.verbose.isdigit() else args.verbose
    for name in args.model:
        train(name, epochs=args.epochs, batch_size=args.batch_size, max_minutes=args.max_minutes,
              data_dir=args.data_dir, subset=args.subset, models_dir=args.models_dir, seed=args.seed,
              resume=args.resume, overwrite=args.overwrite, learning_rate=args.learning_rate,
              precision=args.precision, jit_compile=args.jit_compile, verbose=verbose)


if __name__ == "__main__":
    main()
