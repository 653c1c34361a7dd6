"""The model store: where trained models live, and the one way to save and load them.

    saved_models/<name>.keras               trained on CIFAR-10 (the project's first dataset)
    saved_models/<dataset>/<name>.keras     trained on a photo folder, e.g. saved_models/landscapes/
    runs/models/...                         the same layout for your own trainings (the default of
                                            training.py and model_train.ipynb; git ignores runs/)
    ... beside each: <name>.json (the record), <name>.log.csv (per-epoch history)

A model is named `colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or by a path to
a `.keras` file. Training, colorize.py, evaluation and the notebooks all go through here.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import csv
import json
import os
import pathlib
import zipfile

import models

MODELS_DIR = "saved_models"  # the published, pretrained models (tracked by git)
TRAIN_DIR = "runs/models"    # where training writes by default (ignored by git): yours never replace the published ones


class ModelNotTrained(FileNotFoundError):
    pass


def folder(models_dir=MODELS_DIR, dataset="cifar10"):
    """The folder of the models trained on `dataset` (a dataset name, see data.dataset_name)."""
    models_dir = pathlib.Path(models_dir)
    return models_dir if dataset in (None, "cifar10") else models_dir / dataset


def path(name, models_dir=MODELS_DIR, dataset="cifar10", suffix=".keras"):
    """`<folder>/<name><suffix>` for a registered model name."""
    models.spec(name)  # an unknown name raises the error that lists the names
    return folder(models_dir, dataset) / f"{name}{suffix}"


def run_paths(name, models_dir=MODELS_DIR, dataset="cifar10"):
    """The files of one training run of `name`: the final model, its record and per-epoch log, the
    lock, and the work folder of an unfinished run (config, state, backup, best checkpoint)."""
    p = {k: path(name, models_dir, dataset, suffix) for k, suffix in
         (("final", ".keras"), ("record", ".json"), ("csv", ".log.csv"), ("lock", ".lock"), ("run", ".run"))}
    p.update(config=p["run"] / "config.json", state=p["run"] / "state.json", backup=p["run"] / "backup",
             best=p["run"] / "best.keras")
    return p


def required_models(name, models_dir=MODELS_DIR, dataset="cifar10"):
    """{name: trained model} of the models `name` is built on (colorizer_2 -> autoencoder_1),
    trained on the same data, as keyword arguments for its builder."""
    out = {}
    for base in models.spec(name).requires:
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
    p = path(name, models_dir, dataset or "cifar10")
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


def trained(models_dir=MODELS_DIR, dataset="cifar10", names=None):
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
