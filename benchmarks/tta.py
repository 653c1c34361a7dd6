"""Flip test-time augmentation (`colorize.py --tta`, `Colorizer.load(..., tta=True)`): each photo's
prediction averaged with its mirror image's, against the plain prediction, on the *validation*
photos (training's own split, at 150x150, colorized as colorize.py does; the test split is not
looked at). Prints both rows, the paired 95 % bootstrap interval of each metric's difference, and
the milliseconds per photo of each (the host named).

    python benchmarks/tta.py [--model landscapes/colorizer_6] [--data landscapes]
"""
import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from colorizer import Colorizer  # noqa: E402
import machine  # noqa: E402
import metrics  # noqa: E402


def compare(name, photos, models_dir, warm=8):
    """{False: plain, True: flip-averaged} -> (per-image scores, mean scores, ms per photo)."""
    truth, out = metrics.Reference(photos), {}
    c = Colorizer.load(name, models_dir)  # loaded once; the flip is a setting of the prediction
    for tta in (False, True):
        c.tta = tta
        c.colorize_array(photos[:warm])  # tracing and first calls, not counted
        t0 = time.perf_counter()
        pred = c.colorize_array(photos)
        ms = 1000 * (time.perf_counter() - t0) / len(photos)
        scores = metrics.per_image_scores(pred, truth)
        out[tta] = (scores, metrics.mean_scores(scores, pred), ms)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="landscapes/colorizer_6")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--data", default="landscapes")
    args = p.parse_args()
    from landscape_resolution import validation_photos  # beside this script
    photos = validation_photos(args.data, 64)
    host = machine.describe(peak=False)
    print(f"{args.model} on {len(photos)} validation photos of {args.data} at 150x150; host {host['cpu']!r}, "
          f"{host['cores']} cores")
    rows = compare(args.model, photos, args.models_dir)
    keys = tuple(metrics.ACCURACY_METRICS) + ("colorfulness",)
    print(f"{'':6s} " + " ".join(f"{k:>12s}" for k in keys) + "   ms/photo")
    for tta, (_, s, ms) in rows.items():
        print(f"{'tta' if tta else 'plain':6s} " + " ".join(f"{s[k]:12.4f}" for k in keys) + f" {ms:10.1f}")
    diff = metrics.difference_intervals(rows[True][0], rows[False][0])
    print("tta - plain, mean [95 % paired bootstrap]: " + json.dumps(
        {k: [round(float(v), 4) for v in d] for k, d in diff.items()}))


if __name__ == "__main__":
    main()
