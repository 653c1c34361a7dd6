"""The model store: where trained models live, and the one way to save and load them.

    saved_models/<name>.keras               trained on CIFAR-10 (the project's first dataset)
    saved_models/<dataset>/<name>.keras     trained on a photo folder, e.g. saved_models/landscapes/
    runs/models/...                         the same layout for your own trainings (the default of
                                            training.py and model_train.ipynb; git ignores runs/)
    ... beside each: <name>.json (the record), <name>.log.csv (per-epoch history)

A model is named `colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or by a path to
a `.keras` file. Training, colorize.py, evaluation and the notebooks all go through here; a
training run's files (its lock, the recovery of half-written work files) are kept here too.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import csv
import json
import os
import pathlib
import shutil
import zipfile

import data
import models

MODELS_DIR = "saved_models"  # the published, pretrained models (tracked by git)
TRAIN_DIR = "runs/models"    # where training writes by default (ignored by git): yours never replace the published ones
# the published models beside the code: found from any working directory when MODELS_DIR is not there
SHIPPED_DIR = pathlib.Path(__file__).resolve().parent / MODELS_DIR


class ModelNotTrained(FileNotFoundError):
    pass


def folder(models_dir=MODELS_DIR, dataset=data.DEFAULT):
    """The folder of the models trained on `dataset` (a dataset's name): the sub-folder its class
    names (data.Dataset.subfolder; "" for the top), else one named after it (a photo folder)."""
    registered = data.DATASETS.get(dataset or data.DEFAULT)
    sub = dataset if registered is None or registered.subfolder is None else registered.subfolder
    return pathlib.Path(models_dir) / sub if sub else pathlib.Path(models_dir)


def path(name, models_dir=MODELS_DIR, dataset=data.DEFAULT, suffix=".keras"):
    """`<folder>/<name><suffix>` for a registered model name."""
    models.MODELS[name]  # an unknown name raises the error that lists the names
    return folder(models_dir, dataset) / f"{name}{suffix}"


def run_paths(name, models_dir=MODELS_DIR, dataset=data.DEFAULT):
    """The files of one training run of `name`: the final model, its record and per-epoch log, the
    lock, and the work folder of an unfinished run (config, state, backup, best checkpoint)."""
    p = {k: path(name, models_dir, dataset, suffix) for k, suffix in
         (("final", ".keras"), ("record", ".json"), ("csv", ".log.csv"), ("lock", ".lock"), ("run", ".run"))}
    p.update(config=p["run"] / "config.json", state=p["run"] / "state.json", backup=p["run"] / "backup",
             best=p["run"] / "best.keras")
    return p


def required_models(name, models_dir=MODELS_DIR, dataset=data.DEFAULT):
    """{name: trained model} of the models `name` is built on (colorizer_2 -> autoencoder_1),
    trained on the same data, as keyword arguments for its builder."""
    out = {}
    for base in models.MODELS[name].requires:
        p = path(base, models_dir, dataset)
        if not p.exists():
            raise FileNotFoundError(f"{name} builds on a trained {base}, and {p} does not exist. "
                                    f"Train it first: python training.py {base} (with the same --data and --image-size)")
        out[base] = load(p)
    return out


def resolve(name_or_path, models_dir=MODELS_DIR):
    """A saved model's path from `colorizer_3`, `landscapes/colorizer_6` or a `.keras` path."""
    p = pathlib.Path(str(name_or_path))
    if p.suffix == ".keras":
        if not p.exists():
            raise FileNotFoundError(f"Model file '{p}' does not exist.")
        return p
    dataset, _, name = str(name_or_path).rpartition("/")
    if name not in models.MODELS:
        raise ValueError(f"Unknown model '{name_or_path}'; choose one of: {', '.join(models.MODELS)} "
                         f"(optionally as <dataset>/<name>, e.g. landscapes/colorizer_6), or a .keras path")
    p = path(name, models_dir, dataset or data.DEFAULT)
    if not p.exists() and str(models_dir) == MODELS_DIR:  # the default, run from another directory
        shipped = path(name, SHIPPED_DIR, dataset or data.DEFAULT)
        p = shipped if shipped.exists() else p
    if not p.exists():
        data_arg = f" --data {dataset}" if dataset else ""
        raise ModelNotTrained(f"{name_or_path} is not trained yet ({p} does not exist). Train it with:\n"
                              f"    python training.py {name}{data_arg} --models-dir {models_dir}")
    return p


def load(name_or_path, models_dir=MODELS_DIR, family=None):
    """A trained model by name or path, checked: a registered model, of `family` if given."""
    import keras
    p = resolve(name_or_path, models_dir)
    if not zipfile.is_zipfile(p):
        raise ValueError(f"'{p}' exists but is not a .keras model file (not a zip archive)")
    try:
        model = keras.models.load_model(p)  # safe mode: a config naming arbitrary code is refused
    except Exception as e:  # noqa: BLE001 - any failure here means "not a model this project can load"
        raise ValueError(f"Could not load '{p}' as a Keras model ({type(e).__name__}: {e})") from e
    if model.name not in models.MODELS:
        raise ValueError(f"'{p}' holds a model named '{model.name}', which is not a registered model "
                         f"({', '.join(models.MODELS)})")
    if family is not None and models.MODELS[model.name].family != family:
        raise ValueError(f"'{name_or_path}' is {_article(models.MODELS[model.name].family)}, not {_article(family)}")
    return model


def _article(family):
    return f"an {family}" if family[0] in "aeiou" else f"a {family}"


def record(model_path):
    """The JSON record saved beside a `.keras` file ({} when there is none)."""
    return read_json(pathlib.Path(model_path).with_suffix(".json")) or {}


def save_record(model_path, rec):
    """Write the JSON record beside a `.keras` file (atomically)."""
    write_json(pathlib.Path(model_path).with_suffix(".json"), rec)


def trained(models_dir=MODELS_DIR, dataset=data.DEFAULT, names=None):
    """{name: (model, record)} of the registered models trained on `dataset`, in registry order;
    the missing ones are skipped with a printed note."""
    found = {}
    for name in names or models.MODELS:
        p = path(name, models_dir, dataset)
        if not p.exists():
            print(f"note: {name} is not trained ({p} missing); skipped")
            continue
        found[name] = (load(p), record(p))
    return found


def read_json(p):
    p = pathlib.Path(p)
    return json.loads(p.read_text()) if p.exists() else None


def write_json(p, obj):
    """Write to a temporary name and rename: an interrupted write never leaves half a file."""
    p = pathlib.Path(p)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, p)


def save_model(model, p):
    """Save a `.keras` file atomically (temporary name, then rename), its archive deflated:
    Keras stores it uncompressed, and a fresh optimizer's all-zero moments then cost twice the
    weights' size on disk."""
    p = pathlib.Path(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp, packed = p.with_name(p.stem + ".tmp.keras"), p.with_name(p.stem + ".tmp2.keras")
    model.save(tmp)
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    tmp.unlink()
    os.replace(packed, p)


def read_history(csv_path):
    """Per-epoch history from a CSVLogger file; a row repeated by a resumed epoch counts once (last)."""
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

# ----------------------------------------------------------------------------- a training run's files


class RunLock:
    """One training run per model and folder: `<name>.lock` holds the running process's id. A
    second run refuses at once, naming it; a lock left by a killed process is cleared with a note."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = self._owner()
                if pid and self._alive(pid):
                    raise RuntimeError(f"Another training run (process {pid}) is using {self.path.with_suffix('')}; "
                                       f"wait for it to finish, or stop it. (Lock file: {self.path})") from None
                print(f"note: clearing the lock {self.path} left by a run that no longer exists (process {pid})")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise RuntimeError(f"Could not take the training lock {self.path}")

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)

    def _owner(self):
        try:
            return int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    @staticmethod
    def _alive(pid):
        try:
            os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists is checked
        except ProcessLookupError:
            return False
        except PermissionError:  # it exists, run by another user
            pass
        return True


def _opens(path, read):
    try:
        read(path)
        return True
    except Exception:  # noqa: BLE001 - truncated, not HDF5/zip, bad CRC, bad JSON: it does not open
        return False


def _read_weights(path):
    import h5py
    with h5py.File(path, "r") as f:  # every array read: a truncated file can open and fail later
        f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)


def _read_keras(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        if z.testzip() is not None:
            raise ValueError("bad CRC")


def recover_run_files(model_name, paths):
    """A run killed while writing its work files can leave one of them half-written. The backup keeps
    the epoch before beside it (BackupAndRestore's double checkpoint): a latest backup that does not
    open is replaced by it; when neither opens, the run restarts from epoch 0. A best checkpoint that
    does not open is dropped (the epochs still to come write a new one; returns True). Each case is said."""
    latest = paths["backup"] / "latest.weights.h5"
    meta = paths["backup"] / "training_metadata.json"
    ok = lambda w, m: _opens(w, _read_weights) and _opens(m, lambda p: json.loads(p.read_text())["epoch"])  # noqa: E731
    prev, prev_meta = latest.with_name(latest.name + ".bkp"), meta.with_name(meta.name + ".bkp")
    if latest.exists() and not ok(latest, meta):
        if prev.exists() and ok(prev, prev_meta):
            print(f"note: the latest backup of {model_name} in {paths['backup']} does not open (written when the run "
                  f"was stopped); resuming from the epoch before it", flush=True)
            shutil.copyfile(prev, latest)
            shutil.copyfile(prev_meta, meta)
        else:
            print(f"note: no backup of {model_name} in {paths['backup']} opens (written when the run was stopped); "
                  f"restarting it from epoch 0", flush=True)
            shutil.rmtree(paths["backup"])
            paths["csv"].unlink(missing_ok=True)
            paths["state"].unlink(missing_ok=True)
    if paths["best"].exists() and not _opens(paths["best"], _read_keras):
        print(f"note: the best checkpoint {paths['best']} does not open (written when the run was stopped); "
              f"dropped, the next epochs write a new one", flush=True)
        paths["best"].unlink()
        return True
    return False
