"""Choose a trained colorizer_6's decoding again (mix, temperature, gain) on its validation split,
with the rule and grid of calibration.calibrate_colorizer_6 — after the grid changed, say. Training does
this itself; the model file and its record are updated in place (the weights are not touched).

    python benchmarks/calibrate.py landscapes/colorizer_6 colorizer_6 [--models-dir saved_models]
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import calibration  # noqa: E402
import data  # noqa: E402
import store  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="colorizer_6 (CIFAR-10) and/or <dataset>/colorizer_6")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    args = p.parse_args()
    for name in args.models:
        path = store.resolve(name, args.models_dir)
        # "cifar10", or a folder dataset by name ("landscapes": $LANDSCAPES_DIR)
        record = calibration.calibrate_saved(path, data.get(store.record(path)["config"]["data"]))
        print(f"{name}: chosen {record.get('calibration', {}).get('chosen')}")


if __name__ == "__main__":
    main()
