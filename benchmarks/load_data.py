"""Time CIFAR-10 loading from a folder: first load (decode + write cache) and second (cache hit).

    python benchmarks/load_data.py [--data-dir ../shared/data/cifar10-jpeg]
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import data  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR", "../shared/data/cifar10-jpeg"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:  # a fresh cache, so the first load really decodes
        for label in ("first load (decode, write cache)", "second load (cache)"):
            t = time.perf_counter()
            (x, _), (xt, _) = data.load_cifar10(args.data_dir, cache_dir=cache)
            print(f"{label:34s} {time.perf_counter() - t:6.2f} s   train {x.shape} test {xt.shape}")


if __name__ == "__main__":
    main()
