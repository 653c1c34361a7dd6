"""Edge-aware upsampling of the predicted chroma, tried against colorize.py's bilinear, on validation photos.

    python benchmarks/guided_upsampling.py [--model landscapes/colorizer_6] [--radii 2 4] [--eps 0.001]

A colorizer predicts chroma at its working size (64 px for the landscape models); colorize.py
upsamples it bilinearly to the photo and keeps the photo's own L* (colour.recombine_full). Here the
upsampled chroma is also passed through a guided filter (He et al., ECCV 2010) with the photo's L* as
the guide, so that colour edges follow the photo's edges. Scored on the model's validation photos
(the ones its calibration used) at their own size: the five accuracy metrics and colourfulness, and
each accuracy difference to bilinear with its 95 % paired bootstrap interval. Decoding: the model's own.
"""
import argparse
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.ndimage import uniform_filter  # noqa: E402

import colour  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402
import models  # noqa: E402
import store  # noqa: E402
from colorizer import Colorizer  # noqa: E402


def guided_filter(guide, src, radius, eps):
    """He et al.'s guided filter of `src` (N, H, W) by `guide` (N, H, W), box windows of 2 radius + 1
    pixels: in each window `src` is fitted as a linear function of `guide`, the fits averaged."""
    box = lambda x: uniform_filter(x, size=(1, 2 * radius + 1, 2 * radius + 1), mode="reflect")  # noqa: E731
    mean_g, mean_s = box(guide), box(src)
    a = (box(guide * src) - mean_g * mean_s) / (box(guide * guide) - mean_g * mean_g + eps)
    return box(a) * guide + box(mean_s - a * mean_g)


def upsample(ab_small, height, width):
    """(N, h, w, 2) chroma -> (N, height, width, 2), bilinear as colour.recombine_tiles does."""
    return np.stack([np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(im[..., k], np.float32))
                                          .resize((width, height), Image.Resampling.BILINEAR)) for k in range(2)], -1)
                     for im in ab_small])


def compare(photos, ab_small, radii, eps):
    """{label: (per-image scores, means)} for bilinear and each guided radius, on `photos` (uint8 RGB)."""
    lab = colour.rgb_to_lab(photos)
    ab = upsample(ab_small, *photos.shape[1:3])
    truth = metrics.Reference(photos)
    out = {}
    for label, chroma in [("bilinear", ab)] + [(f"guided r{r}", np.stack(
            [guided_filter(lab[..., 0] / 100, ab[..., k], r, eps) for k in range(2)], -1)) for r in radii]:
        pred = colour.to_uint8(colour.lab_to_rgb(np.concatenate([lab[..., :1], chroma], -1)))
        scores = metrics.per_image_scores(pred, truth)
        out[label] = scores, metrics.mean_scores(scores, pred)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="landscapes/colorizer_6")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--radii", type=int, nargs="+", default=[2, 4])
    p.add_argument("--eps", type=float, default=1e-3, help="the guided filter's regulariser, L* scaled to [0, 1]")
    args = p.parse_args()
    if min(args.radii) < 1 or not args.eps > 0:
        p.error(f"--radii must be at least 1 and --eps above 0, got {args.radii} and {args.eps}")
    try:  # the model, its record and its data ('landscapes': $LANDSCAPES_DIR), before anything runs
        path = store.resolve(args.model, args.models_dir, "colorizer")
        cfg = store.record(path).get("config")
        if cfg is None:
            raise ValueError(f"{path} has no training record beside it (its .json): its validation photos are unknown")
        dataset = data.get(cfg["data"])
        c = Colorizer.load(path)
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))
    sets = dataset.training_sets(models.MODELS[c.name].contract, cfg["image_size"], cfg["subset"], cfg["seed"],
                                 cfg["val_fraction"], cfg["batch_size"])
    photos = sets.calib_images()
    ab_small = np.concatenate([c.chroma(photos[i:i + 64]) for i in range(0, len(photos), 64)])  # as colorize.py
    rows = compare(photos, ab_small, args.radii, args.eps)
    base = rows["bilinear"][0]
    print(f"{len(photos)} validation photos of {args.model}, eps {args.eps:g}")
    for label, (scores, means) in rows.items():
        diff = None if label == "bilinear" else {k: [round(x, 4) for x in v]
                                                 for k, v in metrics.difference_intervals(scores, base).items()}
        print(json.dumps({"upsampling": label, **{k: round(v, 4) for k, v in means.items()}, "minus_bilinear": diff}))


if __name__ == "__main__":
    main()
