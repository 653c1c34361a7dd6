"""Seconds to colorize a 12-megapixel photo and a folder of 100 photos with colorize.py's API,
and the peak memory of the process.

    python benchmarks/colorize_speed.py [-m colorizer_3] [--models-dir saved_models]

Uses the trained model when it exists, else an untrained one of the same architecture (the time
does not depend on the weights).
"""
import argparse
import os
import pathlib
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import colorize  # noqa: E402
import models  # noqa: E402


def photo(h, w, seed=0):
    """A smooth synthetic 'landscape' with some texture, as a grayscale Pillow image."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v = 120 + 60 * np.sin(xx / 400) * np.cos(yy / 300) + r.normal(0, 12, (h, w))
    return Image.fromarray(np.clip(v, 0, 255).astype(np.uint8))


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", default=colorize.DEFAULT_MODEL)
    p.add_argument("--models-dir", default="saved_models")
    p.add_argument("--working-size", type=int, default=None)
    args = p.parse_args()
    try:
        model = colorize.load_colorizer(args.model, args.models_dir)
        source = "trained"
    except colorize.ModelNotTrained:
        model, source = models.get_model(args.model), "untrained"
    big = photo(3000, 4000)
    colorize.colorize_image(photo(64, 64), model, args.working_size)  # warm-up: trace the model
    print(f"model {args.model} ({source}); peak memory before: {peak_mb():.0f} MB")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = colorize.colorize_image(big, model, args.working_size)
        times.append(time.perf_counter() - t)
    print(f"12-megapixel photo (4000x3000), colorize_image: best {min(times):.2f} s, median {np.median(times):.2f} s "
          f"-> {out.size[0]}x{out.size[1]} {out.mode}; peak memory {peak_mb():.0f} MB")
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        out.save(pathlib.Path(d) / "big.png", compress_level=1)
        print(f"  + writing it as PNG (as the command line does): {time.perf_counter() - t:.2f} s")
        src = pathlib.Path(d) / "in"
        src.mkdir()
        for i in range(100):
            photo(480, 640, seed=i).save(src / f"{i:03d}.jpg", quality=90)
        t = time.perf_counter()
        for f in sorted(src.iterdir()):
            with Image.open(f) as img:
                colorize.colorize_image(img, model, args.working_size).save(pathlib.Path(d) / f"{f.stem}.png",
                                                                            compress_level=1)
        dt = time.perf_counter() - t
    print(f"folder of 100 photos (640x480 JPEG, read + colorize + write PNG): {dt:.2f} s ({100 / dt:.1f} photos/s); "
          f"peak memory {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
