"""Evaluate trained models on the CIFAR-10 test set: the metrics table, per-class results, and
the figures of experiments.ipynb (which only calls these functions)."""

import json
import pathlib

import numpy as np

import data
import metrics
import models
import plots

COLUMNS = ["model", "kind", "psnr", "ssim", "mae", "acc2", "auc", "colorfulness", "gt_colorfulness",
           "psnr_colour", "params", "epochs", "minutes", "training"]


def load_trained(models_dir, names=None):
    """{name: (model, record)} of the registered models found in `models_dir`, in registry order;
    the missing ones are skipped with a printed note."""
    import keras
    found = {}
    for name in names or models.MODELS:
        path, record = pathlib.Path(models_dir) / f"{name}.keras", pathlib.Path(models_dir) / f"{name}.json"
        if not path.exists():
            print(f"note: {name} is not trained ({path} missing); skipped")
            continue
        found[name] = (keras.models.load_model(path), json.loads(record.read_text()) if record.exists() else {})
    return found


def predictions(trained, images):
    """{name: uint8 RGB predictions} for every trained model (autoencoders reconstruct `images`,
    colorizers colorize their grayscale)."""
    return {name: models.predict_rgb(model, images) for name, (model, _) in trained.items()}


def variant_name(name, saturation):
    """Table name of a model decoded with another chroma multiplier, e.g. 'colorizer_3 ×2 chroma'."""
    return f"{name} ×{saturation:g} chroma"


def base_model(row_name):
    """The registered model behind a table row name ('colorizer_3 ×2 chroma' -> 'colorizer_3')."""
    return row_name.split(" ×")[0]


def saturated_predictions(trained, images, saturation):
    """{variant name: uint8 RGB} for each `{model name: chroma multiplier}` in `saturation` whose
    model is trained (decoding variants: the same weights, chroma scaled by models.predict_rgb)."""
    return {variant_name(name, s): models.predict_rgb(trained[name][0], images, saturation=s)
            for name, s in (saturation or {}).items() if name in trained}


def baselines(images, train_images):
    """The do-nothing colorizations: `gray` and `mean_chroma` (training set's mean ab)."""
    return {"gray": metrics.baseline(images, "gray"),
            "mean_chroma": metrics.baseline(images, "mean_chroma", ab=metrics.mean_ab(train_images))}


def metrics_table(preds, true, trained):
    """One row per model and baseline: the metrics of `metrics.evaluate`, plus ground-truth
    colorfulness, PSNR over the images that are not gray already (`metrics.psnr_colour_images`),
    parameters, epochs, training minutes and training settings (precision, batch size).
    Decoding variants (`saturated_predictions`) get their model's record and kind 'variant'."""
    gt = metrics.colorfulness(true)
    rows = []
    for name, pred in preds.items():
        base = base_model(name)
        model, record = trained.get(base, (None, {}))
        if base not in models.MODELS:
            kind = "baseline"
        else:
            kind = "variant" if base != name else models.MODELS[name].kind
        training = f"{record.get('precision', 'float32')}, batch {record['batch_size']}" if record else "-"
        rows.append(dict(model=name, kind=kind, **metrics.evaluate(pred, true), gt_colorfulness=gt,
                         psnr_colour=metrics.psnr_colour_images(pred, true),
                         params=record.get("params", model.count_params() if model else 0),
                         epochs=record.get("epochs_run", 0), minutes=record.get("train_minutes", 0.0),
                         training=training))
    return rows


def write_table(rows, figures_dir):
    """figures_dir/metrics.csv and metrics.md; returns the Markdown text."""
    import csv
    figures_dir = pathlib.Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    with open(figures_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows({k: r[k] for k in COLUMNS} for r in rows)
    fmt = dict(psnr="{:.2f}", ssim="{:.3f}", mae="{:.2f}", acc2="{:.3f}", auc="{:.3f}", colorfulness="{:.1f}",
               gt_colorfulness="{:.1f}", psnr_colour="{:.2f}", params="{:,}", epochs="{}", minutes="{:.1f}",
               training="{}")
    head = ["model", "PSNR dB ↑", "SSIM ↑", "MAE ↓", "acc@2 ↑", "AuC ↑", "colorfulness", "GT colorfulness",
            "PSNR, colour images", "params", "epochs", "minutes", "training"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['model']}`"] + [fmt[k].format(r[k]) for k in COLUMNS[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (figures_dir / "metrics.md").write_text(text)
    return text


def best_colorizer(rows):
    """Name of the colorizer with the highest PSNR."""
    colorizers = [r for r in rows if r["kind"] == "colorizer"]
    return max(colorizers, key=lambda r: r["psnr"])["model"] if colorizers else None


def per_class(pred, true, labels, n_classes=10):
    """{'psnr': (n_classes,), 'colorfulness': (n_classes,), 'gt_colorfulness': (n_classes,)}."""
    out = {"psnr": [], "colorfulness": [], "gt_colorfulness": []}
    for c in range(n_classes):
        m = labels == c
        if not m.any():  # a class absent from a small evaluation sample
            for v in out.values():
                v.append(np.nan)
            continue
        out["psnr"].append(metrics.psnr(pred[m], true[m]))
        out["colorfulness"].append(metrics.colorfulness(pred[m]))
        out["gt_colorfulness"].append(metrics.colorfulness(true[m]))
    return {k: np.array(v) for k, v in out.items()}


def save(fig, path, dpi=150):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def sample_photos():
    """A few real colour photos shipped with scikit-image (no download): {name: uint8 RGB}."""
    from skimage import data as skdata
    photos = {}
    for name in ("rocket", "astronaut", "coffee", "chelsea"):
        try:
            img = getattr(skdata, name)()
        except Exception as e:  # a build of scikit-image without that file
            print(f"note: skimage.data.{name} unavailable ({type(e).__name__}); skipped")
            continue
        photos[name] = img[..., :3].astype(np.uint8)
    return photos
