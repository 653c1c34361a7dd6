"""Train a registered model by name; resumable, logged, and never leaving a broken file.

    python training.py colorizer_3 --epochs 20 --max-minutes 15
    python -c "import training; training.train('colorizer_3', epochs=20)"

Files in `models_dir` for a model NAME:
    NAME.keras, NAME.json   the trained model (best epoch on val_loss) and its record
    NAME.log.csv            per-epoch history (CSVLogger)
    NAME.run/               work files of the run (config, state, backup, best checkpoint): a run
                            started again with the same arguments continues from there, and a
                            finished one keeps them for resume="extend"
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import argparse
import datetime
import errno
import math
import shutil
import sys
import time

import numpy as np
import keras

import calibration
import data as datasets  # train() has an argument named `data`
import distribute
from callbacks import EpochLines, ResumablePlateau, TimeBudget, make_callbacks, plural  # noqa: F401
import machine
import models
import pipelines
import runfiles
import store

# The defaults, the number type and the argument checks live in settings.py; train() and the command
# line take them from there (training.DEFAULTS is settings.DEFAULTS).
from settings import (DEFAULTS, LR_SCHEDULES, PRECISIONS, VERBOSE, batch_size_for, check_arguments,  # noqa: F401
                      cpu_has_bf16, precision_policy, resolve_precision)

_write_json, save_model, read_history = store.write_json, store.save_model, store.read_history
VAL_FRACTION = 0.1  # of the training set, the validation split (train()'s default; the command line's)
RunExists, prepare_run = runfiles.RunExists, runfiles.prepare_run  # a run's files: decided in runfiles.py


def check_finite(model_name, model, history, budget, epochs, run_dir):
    """The only early stops are the time budget and TerminateOnNaN: anything else diverged."""
    terminated = budget.state["epochs_done"] < epochs and not budget.stopped
    losses = np.asarray(history.get("loss", []) + history.get("val_loss", []), np.float64)
    if terminated or not np.all(np.isfinite(losses)) or \
            not all(np.all(np.isfinite(w)) for w in model.get_weights()):
        shutil.rmtree(run_dir, ignore_errors=True)
        raise RuntimeError(
            f"Training {model_name} diverged: the loss became NaN or inf (epoch "
            f"{len(history.get('loss', []))}); no model was saved. Try a lower learning_rate "
            f"(now {float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)):g}).")


def check_learned(model_name, model, history, initial, run_dir):
    """A model whose best validation loss is no better than the untrained model's learned nothing
    (a learning rate far too high saturates it): it is not saved as trained. A run of one or two
    epochs may not have beaten it yet without anything being wrong: it is saved with a note, unless
    its loss is far worse (1.5x) than the untrained model's."""
    best = min(history.get("val_loss", [math.inf]))
    epochs_run = len(history.get("val_loss", []))
    if not best < initial and epochs_run < 3 and best <= 1.5 * initial:
        print(f"note: {model_name}'s best validation loss {best:.4g} is not yet better than the untrained "
              f"model's {initial:.4g} after {epochs_run} epoch(s); train it longer.")
        return
    if not best < initial:
        shutil.rmtree(run_dir, ignore_errors=True)
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        raise RuntimeError(
            f"Training {model_name} did not learn: its best validation loss {best:.4g} is no better than the "
            f"untrained model's {initial:.4g}; no model was saved. Try a lower learning_rate (now {lr:g}, "
            f"the default is 1e-3).")


def keep_best(model_name, model, best_path, input_shape, kwargs, fitted_here=True):
    """The best epoch's weights in a freshly compiled float32 model: its optimizer's moments are
    zeros, which deflate to nothing, so the file is a third of the size; it loads ready to predict
    or fine-tune. Without a best checkpoint, the weights `fit` left (when it ran in this process)."""
    if not best_path.exists() and not fitted_here:
        raise RuntimeError(f"{model_name}: training had finished but its best checkpoint {best_path} is gone; "
                           f"nothing trained is left to save. Train it again (overwrite=True / --no-resume).")
    best = keras.models.load_model(best_path) if best_path.exists() else model
    clean = models.get_model(model_name, input_shape=input_shape, **kwargs)
    clean.set_weights(best.get_weights())
    clean.optimizer.build(clean.trainable_variables)  # zero moments: loads without a mismatch warning
    return clean


def train(model_name, epochs=DEFAULTS["epochs"], batch_size=None, max_minutes=None,
          data=datasets.DEFAULT, image_size=None, data_dir=None, subset=None, models_dir=store.TRAIN_DIR, seed=0,
          resume=True, overwrite=False, learning_rate=None, val_fraction=VAL_FRACTION, jit_compile=DEFAULTS["jit_compile"],
          precision=DEFAULTS["precision"], strategy=None, verbose="auto", lr_schedule=DEFAULTS["lr_schedule"],
          model_options=None, calibrate=True):
    """Train `model_name` on `data` ('cifar10', a folder of photos such as the landscapes, or a
    data.Dataset) at `image_size` (default: the dataset's, 32 for CIFAR-10, 64 for folders) and
    write `<models_dir>[/<dataset>]/<name>.keras` and `.json`.

    `batch_size` None: the model's own at that size (batch_size_for). The validation split (`val_fraction`,
    seeded) comes out of the training set. Killed and started again with the same arguments (or no batch:
    runfiles.prepare_run), it continues from its last epoch. A finished run asked for more (`epochs` or
    `max_minutes` changed) continues from its saved state with `resume="extend"` (history and record
    continuous); any other change is refused (RunExists, one line naming each changed argument) unless
    `overwrite=True`. `max_minutes` stops after the epoch in which the budget runs out. `precision` ("auto",
    "float32", "bfloat16", "float16"; auto is bfloat16 on CPUs with native bfloat16, else float32) and
    `jit_compile` (XLA) change how training computes, not what is saved: the saved model is float32.
    `lr_schedule` "plateau" (default) halves the learning rate after 2 epochs without a better val_loss;
    "cosine" decays it along a half cosine over `max_minutes` (else over `epochs`); "constant" keeps it.
    `strategy`: a tf.distribute.Strategy, or a name of distribute.STRATEGIES ("multi-worker": one process per
    worker, configured by TF_CONFIG; each trains on its shard, the chief saves). `model_options`: the model's
    training options (models.ModelSpec.options, e.g. colorizer_6's {"neutral_weight": 4}). `calibrate=False`
    skips choosing colorizer_6's decoding on validation photos after training, for quick tries (asked again
    without it, the finished run is calibrated then). `verbose="lines"`: a line per epoch. Returns the record."""
    spec, dataset, image_size, batch_size, defaulted, model_options = check_call(
        model_name, data=data, data_dir=data_dir, image_size=image_size, batch_size=batch_size, epochs=epochs,
        subset=subset, val_fraction=val_fraction, max_minutes=max_minutes, seed=seed, learning_rate=learning_rate,
        lr_schedule=lr_schedule, resume=resume, verbose=verbose, model_options=model_options)
    # before TensorFlow runs anything: MultiWorkerMirroredStrategy must exist first (TF_CONFIG checked)
    strategy, role = distribute.strategy_for(strategy, batch_size)
    precision = resolve_precision(precision)  # before anything is written
    config = dict(model_name=model_name, data=dataset.name, image_size=image_size, epochs=epochs,
                  batch_size=batch_size, max_minutes=max_minutes, subset=subset, seed=seed,
                  learning_rate=learning_rate, val_fraction=val_fraction, jit_compile=bool(jit_compile),
                  precision=precision, lr_schedule=lr_schedule,
                  **({"model_options": model_options} if model_options else {}))  # records before options: equal
    run = Run(spec, dataset, config, models_dir, strategy, verbose, role, calibrate)
    return run.start(resume, overwrite, defaulted if role.count == 1 else {})  # several workers: as configured


def check_call(model_name, *, data, data_dir, image_size, batch_size, epochs, subset, val_fraction, max_minutes, seed,
               learning_rate, lr_schedule, resume, verbose, model_options):
    """train()'s arguments checked and resolved, before TensorFlow runs anything (training.py's command
    line checks every model's this way before training the first): (spec, dataset, image_size,
    batch_size, defaulted, model_options), or a ValueError / FileNotFoundError naming the value."""
    spec = models.MODELS[model_name]  # an unknown name: the error that lists the names, before anything else
    dataset = datasets.get(data, data_dir)
    image_size = dataset.default_image_size if image_size is None else image_size
    dataset.check_image_size(image_size)
    # not given: the model's own, or its run's on disk made at a default then (128; colorizer_6's 64 at any size)
    defaulted = {} if batch_size is not None else {"batch_size": {DEFAULTS["batch_size"], *spec.batch_size.values()}}
    batch_size = batch_size_for(model_name, batch_size, image_size)
    check_arguments(epochs, batch_size, subset, val_fraction, max_minutes, seed, learning_rate, lr_schedule, resume, verbose)
    models.input_shape_for(model_name, image_size)  # refuses a size the model cannot be built for
    dataset.check_source()  # last: it lists a photo folder's files
    return spec, dataset, image_size, batch_size, defaulted, models.check_options(model_name, model_options)


class Run:
    """One training run of a registered model (`spec`) on a `dataset`, with its `config` (what
    train() was asked for) and its files (`paths`, store.run_paths). `execute` takes the steps in
    order: prepare -> fit -> check -> keep best -> calibrate -> save."""

    def __init__(self, spec, dataset, config, models_dir, strategy, verbose="auto", role=distribute.Role(),
                 calibrate=True):
        self.spec, self.dataset, self.config, self.verbose = spec, dataset, config, verbose
        self.wants_calibration = bool(calibrate)  # not in config: it changes no trained weight
        self.models_dir, self.strategy, self.role = models_dir, strategy, role
        # the chief's files where a one-machine run has them; another worker's in a folder of its own
        self.paths = store.run_paths(spec.name, distribute.worker_dir(models_dir, role), dataset.name)
        self.input_shape = models.input_shape_for(spec.name, config["image_size"])

    def start(self, resume, overwrite, defaulted=None):
        """Under the run's lock: resume, extend, start afresh, or return the finished run's record
        (runfiles.prepare_run decides; every worker agrees), then execute."""
        self.paths["lock"].parent.mkdir(parents=True, exist_ok=True)
        with runfiles.RunLock(self.paths["lock"]):
            try:
                resuming, done = prepare_run(self.spec.name, self.config, self.paths, resume, overwrite, defaulted)
            except RunExists:
                distribute.agree_on_run(self.strategy, self.role, "refuse")  # every worker refuses, or all are told why not
                raise
            distribute.agree_on_run(self.strategy, self.role,
                                    "done" if done is not None else "resume" if resuming else "fresh")
            if done is not None:
                return self.trained_before(done)
            try:
                return self.execute(resuming)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                raise OSError(e.errno, f"The disk is full ({e}). Free some space where {self.paths['run'].parent} "
                                       f"lives and run the same command again: the run resumes from its last "
                                       f"finished epoch") from e

    def execute(self, resuming):
        """The steps of the run, in order (train() checks the arguments and holds the lock)."""
        self.prepare(resuming)
        t0 = time.perf_counter()
        fitted_here = self.fit(resuming)
        self.check()
        self.keep_best(fitted_here)
        self.calibrate()
        return self.save(time.perf_counter() - t0)

    def agree(self, flag):
        """True on every worker when `flag` is True on any (distribute.agree): one decision for all."""
        return distribute.agree(self.strategy, self.role, flag)

    def trained_before(self, record):
        """The record of a run trained already (nothing to train). One trained without calibration
        (--no-calibrate) and asked again with it is calibrated now: what the run would have done."""
        if self.wants_calibration and self.spec.calibrate and "calibration" not in record and self.role.is_chief:
            print(f"{self.paths['final']} was trained without calibration (--no-calibrate): choosing its decoding "
                  f"on the validation photos now (its weights are kept)")
            record = calibration.calibrate_saved(self.paths["final"], self.dataset)
        return record

    def prepare(self, resuming):
        """Data pipelines, the model (its data-derived arguments from the training images), the
        callbacks and the state of a resumed run."""
        c = self.config
        announce(c, self.paths, self.verbose)
        keras.utils.set_random_seed(c["seed"])
        # Several replicas of one pipeline cannot split a short last batch evenly (TF raises in AddN):
        # drop it there. Several workers each take an equal shard with their share of the batch
        # (distribute.py): their short last batches are alike, and each worker has one replica.
        role = self.role
        self.sets = self.dataset.training_sets(self.spec.contract, c["image_size"], c["subset"], c["seed"],
                                               c["val_fraction"],
                                               c["batch_size"] // (self.strategy.num_replicas_in_sync if role.shard else 1),
                                               self.strategy.num_replicas_in_sync > role.count,
                                               **({"shard": role.shard} if role.shard else {}))
        self.sets.info["workers"] = role.count
        self.kwargs = models.builder_kwargs(self.spec.name, self.sets.fit_images,
                                            store.required_models(self.spec.name, self.models_dir, self.dataset.name),
                                            c.get("model_options"))
        self.model = build(c, self.input_shape, self.kwargs, self.strategy)
        for part in ("train", "val"):
            ds = getattr(self.sets, part)
            if getattr(self.model.loss, "takes_luma", False):  # a loss on decoded colours needs each pixel's L
                ds = pipelines.with_luma(ds)
            setattr(self.sets, part, distribute.per_worker(self.strategy, ds, role))
        distribute.detach_for_keras(self.model, role)
        dropped = resuming and runfiles.recover_run_files(self.spec.name, self.paths)
        if resuming and role.count > 1:
            runfiles.rewind_backup(self.paths, distribute.common_epoch(self.strategy, role,
                                                                    runfiles.backed_up_epochs(self.paths)))
        self.callbacks, self.budget = make_callbacks(self.paths, c["max_minutes"], read_history(self.paths["csv"]),
                                                     c["epochs"], self.verbose, c.get("lr_schedule", "constant"),
                                                     self.agree,
                                                     lambda share: distribute.largest(self.strategy, role, share))
        if dropped:  # the saved model will be the best of the epochs still to come
            self.budget.state["best_from_epoch"] = self.budget.state["epochs_done"]

    def fit(self, resuming):
        """Fit, resuming from the backup (see fit), in the strategy's scope (distribute.detach_for_keras)."""
        with self.strategy.scope():
            return fit(self.model, self.sets, self.callbacks, self.budget, self.paths, self.config, resuming,
                       self.verbose, self.agree)

    def check(self):
        """Refuse a run that diverged or learned nothing (its work files are removed)."""
        self.history = read_history(self.paths["csv"])
        check_finite(self.spec.name, self.model, self.history, self.budget, self.config["epochs"], self.paths["run"])
        check_learned(self.spec.name, self.model, self.history, self.budget.state["initial_val_loss"],
                      self.paths["run"])

    def keep_best(self, fitted_here):
        self.clean = keep_best(self.spec.name, self.model, self.paths["best"], self.input_shape, self.kwargs,
                               fitted_here)
        distribute.average_statistics(self.strategy, self.role, self.clean)

    def calibrate(self):
        """Decoding settings chosen on the validation images, for a model whose spec names a calibration."""
        self.calibration = None
        if self.spec.calibrate and self.wants_calibration and self.role.is_chief:  # the chief's model is the one published
            # minutes on a large folder (its photos read again at their evaluation size, then scored), after
            # the last epoch's line: said first, so that a log does not look stuck
            print(f"Choosing {self.spec.name}'s decoding settings on its {self.sets.info['val_images']} validation "
                  f"images ...", flush=True)
            t0 = time.perf_counter()
            self.calibration = calibration.calibrate(self.spec, self.clean, self.sets.calib_images())
            print(f"... chosen in {(time.perf_counter() - t0) / 60:.1f} min.", flush=True)

    def save(self, session_seconds):
        """The model and its record; the work folder is kept, marked finished (its backup, best
        checkpoint and state let resume="extend" continue the run later). Returns the record."""
        record = write_record(self.spec, self.model, self.budget, self.history, self.config, self.sets.info,
                              self.calibration, session_seconds)
        save_model(self.clean, self.paths["final"])
        _write_json(self.paths["record"], record)
        _write_json(self.paths["state"], {**self.budget.state, "finished": True})
        print(f"Saved {self.paths['final']} (epoch {record['best_epoch']} of {record['epochs_run']}, val_loss "
              f"{record['best_val_loss']:.4f}, {record['train_minutes']:.1f} min, "
              f"{record['images_per_s']:.0f} images/s)")
        return record


def announce(config, paths, verbose):
    if verbose == "lines":
        budget = f" or {plural(config['max_minutes'], 'minute')}, whichever comes first" if config["max_minutes"] else ""
        print(f"Training {config['model_name']} on {config['data']} at {config['image_size']} px: up to "
              f"{plural(config['epochs'], 'epoch')}{budget} -> {paths['final']}", flush=True)


def build(config, input_shape, kwargs, strategy):
    """The model to train, built under the distribution strategy and the precision policy."""
    with strategy.scope(), precision_policy(config["precision"]):
        model = models.get_model(config["model_name"], input_shape=input_shape, **kwargs)
        model.jit_compile = bool(config["jit_compile"])
        if config["learning_rate"] is not None:
            model.optimizer.learning_rate = config["learning_rate"]
    return model


def keras_verbose(verbose):
    """What fit() is told: nothing for "lines" (EpochLines prints them), and for "auto" a line per epoch
    when the output is neither a terminal nor a notebook: Keras redraws its progress bar with
    backspaces every 50 ms even into a file, which fills a `nohup ... > log` with them."""
    if verbose == "lines":
        return 0
    if verbose == "auto" and not machine.is_terminal(sys.stdout) and "ipykernel" not in sys.modules:
        return 2
    return verbose


def fit(model, sets, callbacks, budget, paths, config, resuming, verbose, agree=bool):
    """Fit, resuming from the backup; first score the untrained model (training must beat it).
    Returns False when fit() had already ended, or its time budget had run out, before a kill
    (nothing is trained again; with several workers, when it had on any: `agree`)."""
    name = config["model_name"]
    if resuming and budget.state["epochs_done"]:
        print(f"Resuming {name} from epoch {budget.state['epochs_done']} "
              f"({budget.state['seconds'] / 60:.1f} min already trained).")
    if "initial_val_loss" not in budget.state:
        budget.state["initial_val_loss"] = float(model.evaluate(sets.val, verbose=0, return_dict=True)["loss"])
        _write_json(paths["state"], budget.state)
    # killed after fit() ended (or after the epoch that spent the budget), before the save: nothing left to train
    if agree(bool(budget.state.get("fit_done") or budget.stopped)):
        print(f"{name}: training had finished ({budget.state['epochs_done']} epochs); saving it.")
        return False
    # shuffle=False: the datasets shuffle themselves (seeded), fit cannot shuffle a tf.data pipeline
    model.fit(sets.train, validation_data=sets.val, epochs=config["epochs"], callbacks=callbacks,
              verbose=keras_verbose(verbose), shuffle=False)
    budget.state["fit_done"] = True
    _write_json(paths["state"], budget.state)
    return True


def write_record(spec, model, budget, history, config, info, calibration, session_seconds):
    """The record saved beside the model: what was trained, on what, how long, how well, with what.
    (Its key `kind` is the model's family, as in the published records.)"""
    import tensorflow as tf
    epochs_run, seconds = budget.state["epochs_done"], budget.state["seconds"]
    val, first = history["val_loss"], budget.state.get("best_from_epoch", 0)  # see runfiles.recover_run_files
    record = dict(
        model=spec.name, kind=spec.family, inputs=spec.inputs, outputs=spec.outputs,
        params=int(model.count_params()), epochs_run=epochs_run,
        best_epoch=first + int(np.argmin(val[first:])) + 1, best_val_loss=float(np.min(val[first:])),
        stopped_by="time budget" if budget.stopped else "epochs",
        train_minutes=seconds / 60, images_per_s=info["train_images"] * epochs_run / max(seconds, 1e-9),
        batch_size=config["batch_size"], precision=config["precision"], jit_compile=config["jit_compile"],
        seed=config["seed"], data=config["data"], image_size=config["image_size"], **info, tensorflow=tf.__version__, keras=keras.__version__,
        machine=machine.describe(),  # images/s compare only beside the peak of the same host
        date=datetime.datetime.now().isoformat(timespec="seconds"), this_session_seconds=session_seconds,
        config=config, history=history)
    if calibration is not None:
        record["calibration"] = calibration
    return record


def parse_options(parser, items):
    """--option NAME=VALUE items -> {NAME: VALUE} (a malformed or repeated item is a usage error; the
    values are checked for each model with its other arguments, check_call)."""
    options = {}
    for item in items:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            parser.error(f"--option {item!r} is not NAME=VALUE (e.g. neutral_weight=4)")
        if options.get(key, value) != value:  # which was meant? Refuse rather than keep the last
            parser.error(f"--option {key!r} given twice ({options[key]!r} and {value!r}); give each option once")
        options[key] = value
    return options


def parser():
    p = argparse.ArgumentParser(description="Train a registered model on CIFAR-10 or a folder of photos.")
    p.add_argument("model", nargs="+", help=f"one or more of: {', '.join(models.MODELS)}")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=None, help=f"default: the model's own, else {DEFAULTS['batch_size']}")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--data", default=datasets.DEFAULT,
                   help="cifar10 (default), landscapes ($LANDSCAPES_DIR), or a folder of photos")
    p.add_argument("--image-size", type=int, default=None, help="training size in pixels (default 32 for "
                   "cifar10, 64 for folders); a multiple of the model's stride")
    p.add_argument("--data-dir", default=None, help="a CIFAR-10 folder (default $CIFAR10_DIR or the Keras download)")
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--models-dir", default=store.TRAIN_DIR,
                   help=f"where to save (default {store.TRAIN_DIR}; the published models are in {store.MODELS_DIR})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default=DEFAULTS["precision"],
                   help="compute type of training (default auto: bfloat16 on CPUs with AVX-512 BF16 or AMX, "
                        "else float32); the saved model is float32")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=DEFAULTS["jit_compile"],
                   help="XLA-compile the training step")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS["lr_schedule"],
                   help="plateau (default): halve the learning rate after 2 epochs without a better val_loss; "
                        "cosine: decay it along a half cosine over --max-minutes (else over --epochs)")
    p.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                   help="default: this host's one device (all GPUs when several); mirrored: this host's devices; "
                        "multi-worker: the TF_CONFIG cluster, started once per worker (README)")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a training option of the model (repeatable), e.g. colorizer_6's neutral_weight=3 or "
                        "colourfulness_weight=0.2")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip choosing the decoding settings on the validation photos after training "
                        "(colorizer_6; for benchmarks and quick tries)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-resume", dest="resume", action="store_false")
    p.add_argument("--extend", dest="resume", action="store_const", const="extend",
                   help="continue a finished run to the new --epochs / --max-minutes")
    p.add_argument("--verbose", default="auto", choices=list(map(str, VERBOSE)), help="lines: one printed line per epoch")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    for name in args.model:
        if name not in models.MODELS:
            p.error(f"Unknown model '{name}'; choose one of: {', '.join(models.MODELS)}")
    verbose = int(args.verbose) if args.verbose.isdigit() else args.verbose
    options = parse_options(p, args.option)
    if args.strategy == "multi-worker":
        try:
            distribute.read_tf_config()
        except ValueError as e:
            p.error(str(e))
    for i, name in enumerate(args.model):  # every model's arguments, before the first trains: a usage error
        try:
            dataset = check_call(name, data=args.data, data_dir=args.data_dir, image_size=args.image_size,
                       batch_size=args.batch_size, epochs=args.epochs, subset=args.subset, val_fraction=VAL_FRACTION,
                       max_minutes=args.max_minutes, seed=args.seed, learning_rate=args.learning_rate,
                       lr_schedule=args.lr_schedule, resume=args.resume, verbose=verbose, model_options=options)[1]
            for base, base_path in store.required_paths(name, args.models_dir, dataset.name).items():
                if not base_path.exists() and base not in args.model[:i]:  # nor trained before it in this command
                    raise FileNotFoundError(f"{name} builds on a trained {base}, and {base_path} does not exist: "
                                            f"train it first (name {base} before {name})")
        except (ValueError, OSError) as e:  # OSError: a data folder missing or unreadable
            p.error(str(e))
    for name in args.model:
        try:
            train(name, epochs=args.epochs, batch_size=args.batch_size, max_minutes=args.max_minutes,
                  data=args.data, image_size=args.image_size, data_dir=args.data_dir, subset=args.subset,
                  models_dir=args.models_dir, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
                  learning_rate=args.learning_rate, precision=args.precision, jit_compile=args.jit_compile,
                  verbose=verbose, lr_schedule=args.lr_schedule, strategy=args.strategy, model_options=options,
                  calibrate=args.calibrate)
        except RunExists as e:
            p.exit(1, f"{p.prog}: {e}\n")


if __name__ == "__main__":
    main()
