"""How vivid can a trained colorizer be made at decoding time, and what does it cost?

    python benchmarks/saturation.py [--model colorizer_3] [--factors 1 1.5 2 2.5]

Multiplies the model's predicted chroma (a*, b*) by each factor (`colorizer.predict_rgb(...,
saturation=s)`, `colorize.py --saturation s`) and prints colorfulness, MAE, PSNR, SSIM and acc@2
on the seeded validation split of the training set (the images checkpoint selection uses, never
the test set), next to the `gray` baseline. Then names the smallest factor whose colorfulness
reaches --target (default 22, 70 % of CIFAR-10's) with MAE still below `gray`'s: the factor the
README's results table reports as a decoding variant.
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import colorizer  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402


def scores(pred, images):
    """The metrics this sweep prints, of uint8 RGB `pred` against `images`."""
    return dict(colorfulness=metrics.colorfulness(pred), mae=metrics.mae(pred, images),
                psnr=metrics.psnr(pred, images), ssim=metrics.ssim(pred, images),
                acc2=metrics.lab_accuracy(pred, images))


def sweep(model, images, factors):
    """[(factor, scores)] for each chroma multiplier, on uint8 RGB `images`."""
    return [(s, scores(colorizer.predict_rgb(model, images, saturation=s), images)) for s in factors]


def smallest_reaching(results, gray_mae, target):
    """The smallest factor with colorfulness >= target and MAE < gray_mae, or None."""
    ok = [s for s, r in results if r["colorfulness"] >= target and r["mae"] < gray_mae]
    return min(ok) if ok else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="colorizer_3", help="a trained colorizer name or a .keras path")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5])
    p.add_argument("--target", type=float, default=22.0, help="colorfulness to reach")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for s in args.factors:
        try:
            colorizer.check_saturation(s)
        except ValueError as e:
            p.error(str(e))
    from colorizer import Colorizer
    model = Colorizer.load(args.model, args.models_dir).model
    x = data.Cifar10(args.data_dir).train_images()
    _, val_idx = data.split_train_val(len(x), args.val_fraction, args.seed)
    val = x[val_idx]
    g = scores(metrics.baseline(val, "gray"), val)
    results = sweep(model, val, sorted(args.factors))
    print(f"{model.name} on {len(val)} validation images; ground-truth colorfulness {metrics.colorfulness(val):.1f}\n")
    print("| chroma × | colorfulness | MAE ↓ | PSNR dB ↑ | SSIM ↑ | acc@2 ↑ |\n|---|---|---|---|---|---|")
    for s, r in results:
        print(f"| {s:g} | {r['colorfulness']:.1f} | {r['mae']:.2f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['acc2']:.3f} |")
    print(f"| `gray` | {g['colorfulness']:.1f} | {g['mae']:.2f} | {g['psnr']:.2f} | {g['ssim']:.3f} | {g['acc2']:.3f} |")
    best = smallest_reaching(results, g["mae"], args.target)
    print(f"\nsmallest factor with colorfulness >= {args.target:g} and MAE below gray's: "
          f"{'none of those tried' if best is None else f'{best:g}'}")


if __name__ == "__main__":
    main()
