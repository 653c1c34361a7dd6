"""The model store: where trained models live, and the one way to save and load them.

    saved_models/<name>.keras               trained on CIFAR-10 (the project's first dataset)
    saved_models/<dataset>/<name>.keras     trained on a photo folder, e.g. saved_models/landscapes/
    runs/models/...                         the same layout for your own trainings (the default of
                                            training.py and model_train.ipynb; git ignores runs/)
    ... beside each: <name>.json (the record), <name>.log.csv (per-epoch history)

A model is named `colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or by a path to
a `.keras` file. Training, colorize.py, evaluation and the notebooks all go through here; where a
training run's files are (run_paths) is decided here too, and what is done with them in runfiles.py.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import csv
import functools
import json
import pathlib
import warnings
import zipfile

import data
import machine
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
    # inside the backup (keras.callbacks.BackupAndRestore's names; with double_checkpoint, each
    # also as "<name>.bkp", the epoch before)
    p.update(latest=p["backup"] / "latest.weights.h5", meta=p["backup"] / "training_metadata.json")
    return p


def required_paths(name, models_dir=MODELS_DIR, dataset=data.DEFAULT):
    """{name: saved-model path} of the models `name` is built on, trained on the same data."""
    return {base: path(base, models_dir, dataset) for base in models.MODELS[name].requires}


def required_models(name, models_dir=MODELS_DIR, dataset=data.DEFAULT):
    """{name: trained model} of the models `name` is built on (colorizer_2 -> autoencoder_1),
    trained on the same data, as keyword arguments for its builder."""
    out = {}
    for base, p in required_paths(name, models_dir, dataset).items():
        if not p.exists():
            raise FileNotFoundError(f"{name} builds on a trained {base}, and {p} does not exist. "
                                    f"Train it first: python training.py {base} (with the same --data and --image-size)")
        out[base] = load(p)
    return out


def resolve(name_or_path, models_dir=MODELS_DIR, family=None):
    """A saved model's path from `colorizer_3`, `landscapes/colorizer_6` or a `.keras` path (an unknown
    name is refused listing the names, of `family` when given)."""
    p = pathlib.Path(str(name_or_path))
    if p.suffix == ".keras":
        if not p.exists():
            raise FileNotFoundError(f"Model file '{p}' does not exist.")
        return p
    dataset, _, name = str(name_or_path).rpartition("/")
    if name in models.MODELS:
        check_family(name_or_path, name, family)
    if name not in models.MODELS:
        names = models.list_models(family) if family else list(models.MODELS)
        raise ValueError(f"Unknown {family or 'model'} '{name_or_path}'; choose one of: {', '.join(names)} "
                         f"(optionally as <dataset>/<name>, e.g. landscapes/colorizer_6), or a .keras path")
    p = path(name, models_dir, dataset or data.DEFAULT)
    if not p.exists() and str(models_dir) == MODELS_DIR:  # the default, run from another directory
        shipped = path(name, SHIPPED_DIR, dataset or data.DEFAULT)
        p = shipped if shipped.exists() else p
    if not p.exists():
        data_arg = f" --data {dataset}" if dataset else ""
        if is_published(models_dir):  # not published: train your own where yours go, never into saved_models
            raise ModelNotTrained(f"{name_or_path} is not among the published models ({p} does not exist). Train your "
                                  f"own with:\n    python training.py {name}{data_arg}\nand load it from {TRAIN_DIR} "
                                  f"(colorize.py --models-dir {TRAIN_DIR}; models_dir=\"{TRAIN_DIR}\" in Python)")
        raise ModelNotTrained(f"{name_or_path} is not trained yet ({p} does not exist). Train it with:\n"
                              f"    python training.py {name}{data_arg} --models-dir {models_dir}")
    return p


def load(name_or_path, models_dir=MODELS_DIR, family=None, any_size=False):
    """A trained model by name or path, checked: a registered model, of `family` if given. With
    `any_size`, for inference: (the model, `runner`, `forward`): `runner` is the model rebuilt from
    its saved config with the input's height and width left open and given its weights, `forward`
    its forward pass compiled once (a tf.function whose input signature leaves height and width
    open, so no photo size retraces it; it runs without Keras's per-layer Python); both None when
    the model cannot be opened: not fully convolutional, not functional (colorizer_5's Pix2Pix), or
    holding an inner model with its own fixed input (colorizer_2)."""
    import keras
    import tensorflow as tf
    p = resolve(name_or_path, models_dir, family)
    if not zipfile.is_zipfile(p):
        raise ValueError(f"'{p}' exists but is not a .keras model file (not a zip archive)")
    # read before Keras builds the model, so that nothing here runs between its layers' code and the
    # caller: loading goes down through the modules once (../shared/tools/trace_path.py)
    open_config = _open_archive_config(p) if any_size else None
    try:
        model = keras.models.load_model(p)  # safe mode: a config naming arbitrary code is refused
    except Exception as e:  # noqa: BLE001 - any failure here means "not a model this project can load"
        raise ValueError(f"Could not load '{p}' as a Keras model ({type(e).__name__}: {e})") from e
    if model.name not in models.MODELS:
        raise ValueError(f"'{p}' holds a model named '{model.name}', which is not a registered model "
                         f"({', '.join(models.MODELS)})")
    if family is not None and models.MODELS[model.name].family != family:  # only then a call: the photo's path
        check_family(name_or_path, model.name, family)
    if not any_size:
        return model
    runner = forward = None
    if open_config is not None and models.MODELS[model.name].stride:
        try:
            runner = model.__class__.from_config(open_config)
            runner.set_weights(model.get_weights())
            spec = tf.TensorSpec((None, None, None, runner.input_shape[-1]), "float32")
            forward = tf.function(functools.partial(runner, training=False), input_signature=[spec])
            forward.get_concrete_function()  # traced here, once
        except Exception as e:  # noqa: BLE001 - such a model runs rebuilt per size (colorizer.at_size)
            warnings.warn(f"{p}: its any-size forward pass could not be built ({type(e).__name__}: {e}); "
                          f"it runs rebuilt for each photo size instead")
            runner = forward = None
    return model, runner, forward


def open_input(config, height=None, width=None):
    """A functional model's config (Model.get_config()) with its input's height and width set to
    `height` x `width` (None: any); None when there is not exactly one input, or when an inner model
    keeps its own fixed input (colorizer_2)."""
    inputs, nested = [], False
    for layer in config.get("layers", ()):
        if layer["class_name"] == "InputLayer":
            inputs.append(layer)
        nested = nested or "layers" in layer.get("config", {})
    if len(inputs) != 1 or nested:
        return None
    shape = inputs[0]["config"]["batch_shape"]
    inputs[0]["config"]["batch_shape"] = [shape[0], height, width, *shape[3:]]
    return config


def _open_archive_config(p):
    """open_input of the model config saved in a .keras archive (its config.json), or None."""
    try:
        with zipfile.ZipFile(p) as archive:
            return open_input(json.loads(archive.read("config.json"))["config"])
    except Exception:  # noqa: BLE001 - not this project's to report: load_model says what is wrong with the file
        return None


def resized(model, height=None, width=None):
    """The same trained model taking inputs of `height` x `width` (None: any), rebuilt from its own
    config with the input's size changed and given its weights, so a model saved under an older
    architecture of its builder keeps its own; None when it cannot be (see load), or on any failure
    to rebuild (it then runs rebuilt by its builder, colorizer.at_size)."""
    config = open_input(model.get_config(), height, width) if models.MODELS[model.name].stride else None
    if config is None:
        return None
    try:
        copy = model.__class__.from_config(config)
        copy.set_weights(model.get_weights())
    except Exception:  # noqa: BLE001 - a model that cannot be rebuilt this way is rebuilt by its builder
        return None
    return copy


def published(name):
    """The names under which -m finds the published models of builder `name` (colorizer_7: landscapes/colorizer_7)."""
    return [p.relative_to(SHIPPED_DIR).with_suffix("").as_posix() for p in sorted(SHIPPED_DIR.rglob(f"{name}.keras"))]


def is_published(models_dir):
    """Whether `models_dir` names the published models' folder (saved_models, however written)."""
    return pathlib.Path(models_dir) == pathlib.Path(MODELS_DIR) or pathlib.Path(models_dir).resolve() == SHIPPED_DIR.resolve()


def check_family(name_or_path, name, family):
    """Refuse registered model `name` (what `name_or_path` holds) unless it is of `family` (None: any)."""
    if family is not None and models.MODELS[name].family != family:
        raise ValueError(f"'{name_or_path}' is {_article(models.MODELS[name].family)}, not {_article(family)}; "
                         f"choose one of: {', '.join(models.list_models(family))}")


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
    one printed line says which were found in which folder and which are not trained there."""
    found, missing = {}, []
    for name in names or models.MODELS:
        p = path(name, models_dir, dataset)
        if p.exists():
            found[name] = (load(p), record(p))
        else:
            missing.append(name)
    where = folder(models_dir, dataset)
    print(f"{len(found)} trained in {where}: {', '.join(found) or 'none'}"
          + (f" (not trained there: {', '.join(missing)})" if missing else ""))
    return found


def read_json(p):
    p = pathlib.Path(p)
    return json.loads(p.read_text()) if p.exists() else None


def write_json(p, obj):
    """Write to a temporary name and rename (machine.write_atomic): an interrupted write never leaves half a file."""
    text = json.dumps(obj, indent=1, default=float)
    machine.write_atomic(p, lambda tmp: tmp.write_text(text))


def save_model(model, p):
    """Save a `.keras` file atomically (temporary name, then rename), its archive deflated:
    Keras stores it uncompressed, and a fresh optimizer's all-zero moments then cost twice the
    weights' size on disk."""
    p = pathlib.Path(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}{machine.temp_tag()}.keras")  # Keras saves only to a name ending in .keras

    def deflate(packed):
        with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                dst.writestr(item.filename, src.read(item.filename))
    try:
        model.save(tmp)
        machine.write_atomic(p, deflate)
    finally:
        tmp.unlink(missing_ok=True)


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
