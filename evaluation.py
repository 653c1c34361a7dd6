"""Evaluate trained models: the CIFAR-10 metrics table, per-class results, the photo-folder
(landscapes) report, and the figures of experiments.ipynb (which only calls these functions)."""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import pathlib

import numpy as np
from PIL import Image

import colorizer
import colour
import data
import metrics
import models
import photos as photos_io  # `photos` names dicts of photos here
import plots
import store
from colorizer import Colorizer

# the columns of a metrics table beside the metrics (metrics.METRICS): name -> (heading, format)
RECORD_COLUMNS = {"params": ("params", "{:,}"), "epochs": ("epochs", "{}"), "minutes": ("minutes", "{:.1f}"),
                  "training": ("training", "{}")}


def columns():
    """The columns of the metrics tables (CSV): model, kind (the row type), every registered metric,
    then the record's columns."""
    return ["model", "kind", *metrics.METRICS, *RECORD_COLUMNS]


def load_trained(models_dir, names=None, dataset=data.DEFAULT):
    """{name: (model, record)} of the registered models found in `models_dir` (see store.trained)."""
    return store.trained(models_dir, dataset, names)


def colorized(model, images):
    """uint8 RGB output of any trained model for uint8 RGB images: a colorizer colorizes their
    gray as colorize.py does (at its own working size, the images' full-resolution L kept), an
    autoencoder reconstructs them."""
    if models.MODELS[model.name].family == "colorizer":
        return Colorizer(model).colorize_array(images)
    return colorizer.predict_rgb(model, images)


def predictions(trained, images):
    """{name: uint8 RGB predictions} for every trained model (autoencoders reconstruct `images`,
    colorizers colorize their grayscale)."""
    return {name: colorizer.predict_rgb(model, images) for name, (model, _) in trained.items()}


ROWS = {}  # table row name -> (row type, model) of the rows that are not a model's own: set where they are named


def variant_name(name, saturation):
    """Table row of a model decoded with another chroma multiplier, e.g. 'colorizer_3 ×2 chroma'."""
    row = f"{name} ×{saturation:g} chroma"
    ROWS[row] = ("variant", name)
    return row


def before_name(name, trained_on="CIFAR-10"):
    """Table row of a model trained on other data, e.g. 'colorizer_3 (CIFAR-10)' in the landscapes table."""
    row = f"{name} ({trained_on})"
    ROWS[row] = ("before", name)
    return row


def base_model(row_name):
    """The registered model behind a table row ('colorizer_3 ×2 chroma' -> 'colorizer_3')."""
    return ROWS.get(row_name, (None, row_name))[1]


def row_type(row_name):
    """The type of a table row (the published column `kind`): 'variant' (a decoding variant),
    'before' (a model trained on other data), the model's family
    ('autoencoder', 'colorizer') for a model's own row, else 'baseline' (gray, mean_chroma)."""
    if row_name in ROWS:
        return ROWS[row_name][0]
    return models.MODELS[row_name].family if row_name in models.MODELS else "baseline"


def saturated_predictions(trained, images, saturation):
    """{variant name: uint8 RGB} for each `{model name: chroma multiplier}` in `saturation` whose
    model is trained (decoding variants: the same weights, chroma scaled by colorizer.predict_rgb)."""
    return {variant_name(name, s): colorizer.predict_rgb(trained[name][0], images, saturation=s)
            for name, s in (saturation or {}).items() if name in trained}


def baselines(images, train_images):
    """The do-nothing colorizations: `gray` and `mean_chroma` (training set's mean ab)."""
    return {"gray": metrics.baseline(images, "gray"),
            "mean_chroma": metrics.baseline(images, "mean_chroma", ab=metrics.mean_ab(train_images))}


def metrics_table(preds, true, trained, progress=print):
    """One row per model and baseline: every registered metric (`metrics.table_scores`: those of
    `evaluate`, ground-truth colorfulness, PSNR over the images that are not gray already), parameters, epochs, training minutes and training settings (precision, batch size).
    Decoding variants (`saturated_predictions`) get their model's record and row type 'variant'."""
    import time
    rows = []
    for name, pred in preds.items():
        t = time.perf_counter()
        model, record = trained.get(name, trained.get(base_model(name), (None, {})))
        training = f"{record.get('precision', 'float32')}, batch {record['batch_size']}" if record else "-"
        rows.append(dict(model=name, kind=row_type(name), **metrics.table_scores(pred, true),
                         params=record.get("params", model.count_params() if model else 0),
                         epochs=record.get("epochs_run", 0), minutes=record.get("train_minutes", 0.0),
                         training=training))
        if progress:
            progress(f"{name}: metrics on {len(true)} images in {time.perf_counter() - t:.1f} s")
    return rows


def write_table(rows, figures_dir):
    """figures_dir/metrics.csv and metrics.md; returns the Markdown text."""
    import csv
    figures_dir = pathlib.Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    with open(figures_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, columns())
        w.writeheader()
        w.writerows({k: r[k] for k in columns()} for r in rows)
    shown = {m.name: (m.heading, m.fmt) for m in metrics.METRICS.values()} | RECORD_COLUMNS
    head = ["model"] + [heading for heading, _ in shown.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['model']}`"] + [fmt.format(r[k]) for k, (_, fmt) in shown.items()]
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


def own_photo(photo=None):
    """(uint8 RGB, alpha or None, a label) of a user's photo file, read as colorize.py reads it; with
    None, the scikit-image sample "rocket" (an outdoor scene: sky, trees, grass; no download)."""
    if photo:
        return (*photos_io.open_photo(photo), pathlib.Path(photo).name)
    from skimage import data as skdata
    return skdata.rocket()[..., :3].astype(np.uint8), None, "rocket (scikit-image sample)"


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


def photos_report(model, photos):
    """Colorize each photo's gray version as colorize.py does; returns ({name: uint8 RGB}, rows of
    metrics.evaluate with the gray baseline's PSNR beside)."""
    colorizer = Colorizer(model)
    colorized, rows = {}, []
    for name, img in photos.items():
        gray = np.asarray(Image.fromarray(img).convert("L"))  # what a scanned black-and-white photo gives
        colorized[name] = colorizer.colorize_array(gray)
        rows.append(dict(photo=name, **metrics.evaluate(colorized[name][None], img[None]),
                         gray_psnr=metrics.psnr(metrics.baseline(img[None]), img[None])))
    return colorized, rows


def photos_compare(models_by_label, photos):
    """`photos_report` for several models ({label: model}): ({label: {photo: uint8 RGB}}, rows with a
    `model` column)."""
    by_model, rows = {}, []
    for label, model in models_by_label.items():
        by_model[label], part = photos_report(model, photos)
        rows += [dict(model=label, **r) for r in part]
    return by_model, rows


def photos_markdown(rows):
    lines = ["| photo | model | PSNR | SSIM | MAE | colorfulness | gray PSNR |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['photo']} | {r.get('model', '')} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['mae']:.2f} | "
              f"{r['colorfulness']:.1f} | {r['gray_psnr']:.2f} |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- photo folders (landscapes)

EVAL_SIZE = data.EVAL_SIZE  # landscape photos are 150x150: evaluated at that size (centre crop for the few others)


def folder_test_set(data_name="landscapes", size=EVAL_SIZE):
    """The colour test photos of a dataset (a name or a data.Dataset) at `size` (uint8), their labels,
    the class names, and how many black-and-white test photos were left out."""
    test = data.get(data_name).load_test(size)
    colour = test.colour_index()
    return np.asarray(test.images[colour]), test.labels[colour], test.class_names, int(len(test) - len(colour))


def folder_predictions(trained, images, progress=print):
    """{name: uint8 RGB} for each trained colorizer, colorized as colorize.py does (each model at its
    own training size, the photo's full-resolution L kept)."""
    import time
    out = {}
    for name, (model, _) in trained.items():
        t = time.perf_counter()
        out[name] = Colorizer(model).colorize_array(images)
        progress(f"{name}: {len(images)} photos in {time.perf_counter() - t:.1f} s")
    return out


def folder_table(preds, true, trained, train_sample):
    """Metrics rows for a photo-folder evaluation: every model in `preds` (family from the registry,
    record from `trained`, which may hold a 'before' model under another row name) and the gray
    and mean_chroma baselines (mean chroma of `train_sample`)."""
    preds = dict(preds) | baselines(true, train_sample)
    return metrics_table(preds, true, trained)


def gray_differences(preds, true, confidence=0.95):
    """{row: metrics.difference_intervals against `gray`} for every prediction in `preds` (the
    models; the baselines' rows are left out) on the images `true`."""
    truth = metrics.Reference(true)  # scored against once per model
    gray = metrics.per_image_scores(metrics.baseline(true, "gray"), truth)
    return {name: metrics.difference_intervals(metrics.per_image_scores(pred, truth), gray, confidence)
            for name, pred in preds.items()}


def differences_markdown(diffs, confidence=0.95):
    """A Markdown table of `gray_differences`: each metric's mean difference to gray and its interval;
    a ✓ where the whole interval is on the better side (↑ metrics above 0, MAE below)."""
    names = list(metrics.ACCURACY_METRICS)
    head = ["model"] + [metrics.METRICS[k].heading for k in names]
    lines = [f"Difference to `gray` on the same photos, mean [{confidence:.0%} paired bootstrap interval]; "
             f"✓: the whole interval is better than gray.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, d in diffs.items():
        cells = []
        for k in names:
            mean, lo, hi = d[k]
            sure = lo > 0 if metrics.ACCURACY_METRICS[k] > 0 else hi < 0
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" + (" ✓" if sure else ""))
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def folder_available(data_name):
    """True when `data_name` resolves to a folder (e.g. 'landscapes' with $LANDSCAPES_DIR set)."""
    try:
        data.get(data_name)
        return True
    except (FileNotFoundError, TypeError):
        return False


def folder_report(data_name, models_dir, figures_dir, before="colorizer_3", n_show=8, seed=0, progress=print,
                  n_photos=None, default=None):
    """The photo-folder part of experiments.ipynb: every colorizer trained on `data_name`, the
    CIFAR-10 `before` model (as colorize.py used it before), gray and mean_chroma, on the folder's
    colour test photos (all, or a seeded sample of `n_photos`). Writes `figures_dir`/metrics.csv/.md,
    vs_gray.md, colorizations.png (n_show photos at their own resolution), per_class.png (of the
    `default` model's name when trained, else the best PSNR), losses.png. Returns (rows, info dict)."""
    figures_dir = pathlib.Path(figures_dir)
    dataset = data.get(data_name).name
    images, labels, class_names, n_gray = folder_test_set(data_name)
    if n_photos is not None and n_photos < len(images):
        pick = np.sort(np.random.default_rng(seed).choice(len(images), n_photos, replace=False))
        images, labels = images[pick], labels[pick]
    trained = store.trained(models_dir, dataset, models.list_models("colorizer"))
    if before:
        p = store.path(before, models_dir)
        if p.exists():
            trained[before_name(before)] = (store.load(p), store.record(p))
    preds = folder_predictions(trained, images, progress)
    train = data.load_folder_split(data_name, "train", data.crop_size(64))
    sample = np.sort(np.random.default_rng(seed).choice(train.colour_index(), min(2000, len(train)), replace=False))
    rows = folder_table(preds, images, trained, data.centre_crops(train.images[sample], 64))
    table = write_table(rows, figures_dir)
    vs_gray = differences_markdown(gray_differences(preds, images))
    (figures_dir / "vs_gray.md").write_text(vs_gray)
    show = np.sort(np.random.default_rng(seed).choice(len(images), min(n_show, len(images)), replace=False))
    cols = {"gray input": plots.gray_column(images[show])} | {n: p[show] for n, p in preds.items()} | \
           {"original": images[show]}
    plots.save(plots.plot_grid(cols, size=1.6), figures_dir / "colorizations.png")
    best = best_colorizer(rows)
    shown = default if default in preds else best
    if shown:
        stats = per_class(preds[shown], images, labels, len(class_names))
        plots.save(plots.plot_per_class(stats, class_names, shown), figures_dir / "per_class.png")
    calibrated = trained.get(default, (None, {}))[1].get("calibration") if default else None
    if calibrated:  # the default's decoding settings: accuracy against colourfulness, the chosen point
        plots.save(plots.plot_tradeoff(calibrated, metrics.colorfulness(images),
                                       f"{default}: decoding settings on the validation photos"),
                   figures_dir / "tradeoff.png")
    records = [rec for name, (_, rec) in trained.items() if rec and name in models.MODELS]
    if records:
        plots.save(plots.plot_losses(records, title=f"{dataset}: train (solid) and validation (dashed) loss"),
             figures_dir / "losses.png")
    return rows, dict(table=table, vs_gray=vs_gray, best=best, default=default if default in preds else None,
                      per_class=shown, n_colour=len(images), n_gray=n_gray, classes=class_names,
                      found=[n for n in trained if n in models.MODELS])


PUBLISHED = "figures"  # what the README shows; experiments.ipynb writes here only with publish=True


def published_markdown(figures_dir=PUBLISHED):
    """The published results as Markdown (tables from figures/**/metrics.md, key figures): the
    first cell of experiments.ipynb, so a reader sees them before running anything."""
    figures_dir = pathlib.Path(figures_dir)
    parts = ["## Published results (from `figures/`, written by `benchmarks/train_all.py`; nothing below "
             "needs running to see them)"]
    land = figures_dir / "landscapes" / "metrics.md"
    if land.exists():
        parts += ["### Landscapes (colour test photos)", land.read_text().strip(),
                  f"![landscapes]({PUBLISHED}/landscapes/colorizations.png)"]
    cifar = figures_dir / "metrics.md"
    if cifar.exists():
        parts += ["### CIFAR-10 (10,000 test images)", cifar.read_text().strip(),
                  f"![colorizations]({PUBLISHED}/colorizations.png)"]
    return "\n\n".join(parts)


def sync_published_cell(notebook="experiments.ipynb", figures_dir=PUBLISHED):
    """Rewrite the cell tagged `published` of `notebook` from the published tables."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if "published" in cell.get("metadata", {}).get("tags", []):
            cell.source = published_markdown(figures_dir)
    nbformat.write(nb, notebook)


# ----------------------------------------------------------------------------- colour hints (colorizer_7)

HINT_COUNTS = (0, 1, 2, 5, 10, 20)  # hints per photo in the hint benchmark (Zhang et al. 2017's curve)
HINT_PATCH_PIXELS = 7               # a simulated user's hint: the mean colour of this many pixels square


def ground_truth_hints(images, count, seed=0, patch=HINT_PATCH_PIXELS, ids=None):
    """`count` hints per photo as a user gives them, [(x, y, (r, g, b) in [0, 1])], drawn from the
    photos themselves: a random pixel and the mean colour of the `patch`-pixel square around it.
    Seeded per photo (by `seed` and its index in `ids`, default its place in `images`), so a photo's
    first k hints are the same whatever `count` (a curve over counts adds hints; it never redraws
    them) and whatever other photos it is drawn with."""
    out = []
    for i, img in zip(range(len(images)) if ids is None else ids, np.asarray(images)):
        rng, (h, w) = np.random.default_rng([seed, int(i)]), img.shape[:2]
        points = []
        for _ in range(count):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            box = img[max(0, y - patch // 2):y + patch // 2 + 1, max(0, x - patch // 2):x + patch // 2 + 1, :3]
            points.append((x, y, tuple(float(v) for v in box.reshape(-1, 3).mean(0) / 255)))
        out.append(points)
    return out


def hint_errors(pred, hints):
    """How far each hinted pixel of the colorized `pred` (uint8 RGB) lies from its hint's colour: the
    distance in (a*, b*), in ab units, one value per hint."""
    out = []
    for img, points in zip(pred, hints):
        for x, y, c in points:
            lab = colour.rgb_to_lab(np.asarray(img)[None, y:y + 1, x:x + 1, :3])[0, 0, 0]
            out.append(float(np.hypot(*(lab[1:] - np.asarray(colour.hint_ab(c))))))
    return np.asarray(out, np.float64)


def hint_reach(images, hints):
    """The least hint_errors any colorizer could score on `images` (uint8 RGB): each hinted pixel
    given exactly its hint's a*, b* at the photo's own L*, through uint8 RGB. A hint colour that
    does not exist at that lightness (outside sRGB: a vivid colour on a dark pixel) cannot come back."""
    best = []
    for img, points in zip(images, hints):
        for x, y, c in points:
            L = colour.rgb_to_lab(np.asarray(img)[None, y:y + 1, x:x + 1, :3])[..., :1]
            a, b = colour.hint_ab(c)
            lab = np.concatenate([L, np.full(L.shape[:-1] + (2,), (a, b), np.float32)], axis=-1)
            back = colour.rgb_to_lab(colour.to_uint8(colour.lab_to_rgb(lab)))[0, 0, 0]
            best.append(float(np.hypot(back[1] - a, back[2] - b)))
    return np.asarray(best, np.float64)


def hint_curve(colorizer_, images, counts=HINT_COUNTS, seed=0, progress=print):
    """{count: the mean scores (metrics.mean_scores) of `colorizer_` on `images` with that many
    ground_truth_hints per photo, plus `hint_error_median`, `hints_within_3` (the share of hinted
    pixels within 3 ab units of their colour), `reachable_within_3` (the share any colorizer could
    reach: hint_reach) and `model_within_3` (the share the model's own chroma reaches at the hint's
    working-size pixel, before its codec shows the hint's colour there)}."""
    c = Colorizer.of(colorizer_)
    rows, truth = {}, metrics.Reference(images)
    for k in counts:
        hints = ground_truth_hints(images, k, seed)
        pred = c.colorize_array(images, hints=hints if k else None)
        rows[k] = metrics.mean_scores(metrics.per_image_scores(pred, truth), pred)
        if k:
            err = hint_errors(pred, hints)
            rows[k].update(hint_error_median=float(np.median(err)), hints_within_3=float((err <= 3).mean()),
                           reachable_within_3=float((hint_reach(images, hints) <= 3).mean()),
                           model_within_3=float((model_hint_errors(c, images, hints) <= 3).mean()))
        progress(f"{k:2d} hints: PSNR {rows[k]['psnr']:.2f} dB, MAE {rows[k]['mae']:.2f}, acc@2 {rows[k]['acc2']:.3f}"
                 + (f", hinted pixels within 3 ab units: {rows[k]['hints_within_3']:.0%} (reachable "
                    f"{rows[k]['reachable_within_3']:.0%}; the model's own chroma {rows[k]['model_within_3']:.0%})"
                    if k else ""))
    return rows


def model_hint_errors(colorizer_, images, hints):
    """hint_errors of the model's own chroma (codec.ab, before HintCodec.chroma shows the hints'),
    at each hint's pixel of the working size."""
    H, W = images.shape[1:3]
    h, w = colorizer_.working_shape(H, W)
    at = [colorizer.model_hints(p, H, W, h, w) for p in hints]
    y = colorizer.predict(colorizer_.at(h, w), images, decode=None, size=(h, w), hints=at)
    ab = colorizer.codec(colorizer_.model).ab(y)
    return np.asarray([np.hypot(*(ab[i, r, c] - (a, b))) for i, p in enumerate(at) for r, c, a, b in p], np.float64)
