"""Does a faster setting cost quality? Train one model for a fixed number of epochs under each
setting, from the same seed on the same data, and compare test PSNR with the first (reference).

    python benchmarks/speed_quality.py [--epochs 2] [--model colorizer_3] \
        [--settings float32:64 bfloat16:64 bfloat16:128 float32:64:xla]

A setting is PRECISION:BATCH[:xla]. A setting may become a training default (training.DEFAULTS)
only if it is faster (benchmarks/throughput.py) and its PSNR is at most 0.1 dB below the
reference's. Trains into runs/speed_quality/ (scratch, ignored by git).
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

import data  # noqa: E402
import evaluation  # noqa: E402
import metrics  # noqa: E402
import training  # noqa: E402

TOLERANCE_DB = 0.1


def parse_setting(text):
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in training.PRECISIONS or not parts[1].isdigit() \
            or (len(parts) == 3 and parts[2] != "xla"):
        raise argparse.ArgumentTypeError(
            f"bad setting {text!r}: expected PRECISION:BATCH[:xla] with PRECISION one of "
            f"{', '.join(training.PRECISIONS)}, e.g. bfloat16:128 or float32:64:xla")
    return dict(precision=parts[0], batch_size=int(parts[1]), jit_compile=len(parts) == 3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="colorizer_3")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--settings", nargs="+", type=parse_setting,
                   default=[parse_setting(s) for s in ("float32:64", "bfloat16:64", "bfloat16:128")])
    p.add_argument("--n-eval", type=int, default=10000)
    p.add_argument("--subset", type=int, default=None, help="train on a sample of the training set")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "runs" / "speed_quality"))
    args = p.parse_args()
    (_, _), (x_test, _) = data.load_cifar10(args.data_dir)
    x = x_test[np.sort(np.random.default_rng(0).choice(len(x_test), min(args.n_eval, len(x_test)), replace=False))]
    rows = []
    for s in args.settings:
        label = f"{s['precision']}:{s['batch_size']}" + (":xla" if s["jit_compile"] else "")
        out = pathlib.Path(args.out) / label.replace(":", "_")
        record = training.train(args.model, epochs=args.epochs, data_dir=args.data_dir, subset=args.subset,
                                models_dir=out, overwrite=True, verbose=2, **s)
        model = evaluation.load_trained(out, [args.model])
        pred = evaluation.predictions(model, x)[args.model]
        row = dict(setting=label, psnr=round(metrics.psnr(pred, x), 3), mae=round(metrics.mae(pred, x), 3),
                   minutes=round(record["train_minutes"], 2), images_per_s=round(record["images_per_s"], 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    ref = rows[0]
    print(f"\n{args.model}, {args.epochs} epochs each, PSNR on {len(x)} test images; reference {ref['setting']}")
    print(f"{'setting':20s} {'PSNR':>7s} {'vs ref':>7s} {'MAE':>6s} {'img/s':>6s}  within {TOLERANCE_DB} dB")
    for r in rows:
        d = r["psnr"] - ref["psnr"]
        print(f"{r['setting']:20s} {r['psnr']:7.3f} {d:+7.3f} {r['mae']:6.2f} {r['images_per_s']:6.0f}  "
              f"{'yes' if d >= -TOLERANCE_DB else 'NO'}")


if __name__ == "__main__":
    main()
