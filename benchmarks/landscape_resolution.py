"""Which training resolution is best within a fixed budget? Trains one colorizer on the landscape
photos for the same wall-clock minutes at each size, then scores each on the validation photos at
their own 150x150 resolution, colorized as colorize.py does (the model predicts at its training
size, the photo's L is kept). Validation only: the test split is never looked at here.

    python benchmarks/landscape_resolution.py --minutes 5 --sizes 48 64 96 [--model colorizer_3]
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from colorizer import Colorizer  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402
import store  # noqa: E402
import training  # noqa: E402


def validation_photos(data_name, image_size, seed=0, val_fraction=0.1, size=150):
    """The validation photos of training's split (the same rows at any image_size), at `size`."""
    fd = data.load_folder_split(data_name, "train", size)
    colour = fd.colour_index()
    _, v = data.split_train_val(len(colour), val_fraction, seed)
    return np.asarray(fd.images[colour[v]])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="colorizer_3")
    p.add_argument("--data", default="landscapes")
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--out", default=str(ROOT / "runs" / "landscape_resolution"))
    args = p.parse_args()
    photos = validation_photos(args.data, args.sizes[0])
    print(f"{len(photos)} validation photos at 150x150")
    rows = []
    for size in args.sizes:
        rec = training.train(args.model, data=args.data, image_size=size, epochs=1000, max_minutes=args.minutes,
                             models_dir=f"{args.out}/{size}", verbose="lines")
        model = store.load(store.path(args.model, f"{args.out}/{size}", data.get(args.data).name))
        scores = metrics.evaluate(Colorizer(model).colorize_array(photos), photos)
        rows.append(dict(size=size, epochs=rec["epochs_run"], **scores))
        print(rows[-1], flush=True)
    print(f"\n{args.model}, {args.minutes:g} minutes each, validation photos scored at 150x150")
    print(f"{'size':>5s} {'epochs':>6s} {'PSNR':>6s} {'SSIM':>6s} {'MAE':>6s} {'colorfulness':>12s}")
    for r in rows:
        print(f"{r['size']:5d} {r['epochs']:6d} {r['psnr']:6.2f} {r['ssim']:6.3f} {r['mae']:6.2f} {r['colorfulness']:12.1f}")


if __name__ == "__main__":
    main()
