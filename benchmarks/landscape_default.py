"""Which landscape colorizer should be colorize.py's default? Scores every colorizer trained on the
landscapes on the *validation* photos (training's own split, at 150x150, colorized as colorize.py
does) and applies the project's target as the rule: among the models that beat `gray` on PSNR,
SSIM, MAE, acc@2 and AuC at once, the most colourful; if none does, the best PSNR. The test split
is not looked at.

    python benchmarks/landscape_default.py [--models-dir saved_models]
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from colorizer import Colorizer  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402
import models  # noqa: E402
import store  # noqa: E402
from landscape_resolution import validation_photos  # noqa: E402

KEYS = tuple(metrics.ACCURACY_METRICS)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--data", default="landscapes")
    args = p.parse_args()
    photos = validation_photos(args.data, 64)
    gray_pred, truth = metrics.baseline(photos), metrics.Reference(photos)
    per_image = {"gray": metrics.per_image_scores(gray_pred, truth)}
    rows = {"gray": metrics.mean_scores(per_image["gray"], gray_pred)}
    trained = store.trained(args.models_dir, data.get(args.data).name, models.list_models("colorizer"))
    for name, (model, _) in trained.items():
        pred = Colorizer(model).colorize_array(photos)
        per_image[name] = metrics.per_image_scores(pred, truth)
        rows[name] = metrics.mean_scores(per_image[name], pred)
    print(f"{len(photos)} validation photos at 150x150; colourfulness of the originals {metrics.colorfulness(photos):.1f}")
    print(f"{'model':14s} " + " ".join(f"{k:>7s}" for k in KEYS + ("colorfulness",)) +
          "  beats gray on all five (on the means, in 95% of bootstrap resamples)")
    for name, s in rows.items():
        print(f"{name:14s} " + " ".join(f"{s[k]:7.3f}" for k in KEYS) + f" {s['colorfulness']:12.1f}"
              + ("" if name == "gray" else f"  {metrics.beats(s, rows['gray'])}, "
                                           f"{metrics.surely_beats(per_image[name], per_image['gray'])}"))
    pick, surely = metrics.vivid_and_accurate({n: rows[n] for n in trained}, per_image, per_image["gray"])
    print(f"default by the rule: {data.get(args.data).name}/{pick}"
          f" ({'most colourful of those surely beating gray on all five' if surely else 'none surely beats gray on all five: best PSNR'})")


if __name__ == "__main__":
    main()
