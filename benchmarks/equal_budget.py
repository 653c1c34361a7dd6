"""The Keras-book baseline against the best colorizer, trained for the same wall-clock budget on
the same data and evaluated on the same test images.

    python benchmarks/equal_budget.py [--minutes 5] [--model colorizer_3] [--n-eval 10000]

Trains into runs/equal_budget/ (scratch, ignored by git) and prints the metrics side by side.
"""
import argparse
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

BASELINE = "colorizer_1"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="training budget of each model")
    p.add_argument("--model", default="colorizer_3", help="the CIFAR-10 colorizer to compare with colorizer_1")
    p.add_argument("--n-eval", type=int, default=10000)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "runs" / "equal_budget"))
    args = p.parse_args()
    records = {}
    for name in (BASELINE, args.model):
        records[name] = training.train(name, epochs=1000, max_minutes=args.minutes, data_dir=args.data_dir,
                                       models_dir=args.out, overwrite=True, verbose=2)
    (_, _), (x_test, _) = data.load_cifar10(args.data_dir)
    idx = np.sort(np.random.default_rng(0).choice(len(x_test), min(args.n_eval, len(x_test)), replace=False))
    x = x_test[idx]
    trained = evaluation.load_trained(args.out, [BASELINE, args.model])
    preds = evaluation.predictions(trained, x)
    results = {name: metrics.evaluate(pred, x) for name, pred in preds.items()}
    a, b = results[BASELINE], results[args.model]
    print(f"\nSame budget ({args.minutes:g} min each), same data, {len(x)} test images "
          f"(ground-truth colorfulness {metrics.colorfulness(x):.1f})")
    print(f"{'metric':14s} {BASELINE:>12s} {args.model:>12s} {'difference':>11s}")
    for k in a:
        print(f"{k:14s} {a[k]:12.4f} {b[k]:12.4f} {b[k] - a[k]:+11.4f}")
    print(f"{'epochs':14s} {records[BASELINE]['epochs_run']:12d} {records[args.model]['epochs_run']:12d}")


if __name__ == "__main__":
    main()
