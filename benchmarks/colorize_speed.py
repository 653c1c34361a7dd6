"""Seconds to colorize a 12-megapixel photo and a folder of 100 photos with the Colorizer API,
and the peak memory of the process; then, each in a fresh process so that the peaks are its own,
the peak memory of `colorize.py` (the command line, reading the file and writing the PNG) on a
10000x1 strip, a 12-megapixel and a 100-megapixel photo.

    python benchmarks/colorize_speed.py [-m landscapes/colorizer_6] [--models-dir saved_models]

Uses the trained model when it exists, else an untrained one of the same architecture (the time
does not depend on the weights).
"""
import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import colorize  # noqa: E402
import colorizer  # noqa: E402
import models  # noqa: E402


def photo(h, w, seed=0):
    """A smooth synthetic 'landscape' with some texture, as a grayscale Pillow image."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v = 120 + 60 * np.sin(xx / 400) * np.cos(yy / 300) + r.normal(0, 12, (h, w))
    return Image.fromarray(np.clip(v, 0, 255).astype(np.uint8))


def peak_mb():
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss does not:
    a child process would report its parent's peak at the fork when that was higher)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


CASES = {"64x64 (the base)": (64, 64), "10000x1 strip": (1, 10000), "50Mx1 strip": (1, 50_000_000), "12-megapixel": (3000, 4000),
         "100-megapixel": (8660, 11547)}


def load(args):
    try:
        return colorizer.Colorizer.load(args.model, args.models_dir), "trained"
    except colorize.ModelNotTrained:
        return colorizer.Colorizer(models.get_model(args.model.split("/")[-1])), "untrained"


def one_case(args):
    """Run in a child process: colorize.py's main() on one photo file, as the command line runs it
    (the model loaded once); print its time and the process's peak (the 64x64 case is the base:
    TensorFlow, the model and a tiny photo)."""
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        argv = [args.case_file, "-o", out, "-m", args.model, "--models-dir", args.models_dir]
        status = colorize.main(argv + (["--working-size", str(args.working_size)] if args.working_size else []))
        dt = time.perf_counter() - t
    h, w = CASES[args.case]
    print(f"{args.case:16s} ({w}x{h}): {dt:6.2f} s, exit {status}, peak memory {peak_mb():6.0f} MB "
          f"(the photo alone is {h * w * 3 / 2**20:.0f} MB as RGB)")


def write_case(case, folder):
    """The case's synthetic photo as a file (JPEG, PNG for the strip), written band by band."""
    h, w = CASES[case]
    img = Image.new("L", (w, h))
    if h < 8:  # a wide strip, band by band of columns
        for c in range(0, w, 1 << 22):
            img.paste(photo(h, min(1 << 22, w - c), seed=c), (c, 0))
    else:
        for r in range(0, h, 1024):
            img.paste(photo(min(1024, h - r), w, seed=r), (0, r))
    path = pathlib.Path(folder) / (f"{case.replace(' ', '_')}" + (".png" if min(h, w) < 8 else ".jpg"))
    img.save(path, quality=90)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", default=colorizer.DEFAULT_MODEL)
    p.add_argument("--models-dir", default="saved_models")
    p.add_argument("--working-size", type=int, default=None)
    p.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    p.add_argument("--case-file", help=argparse.SUPPRESS)
    p.add_argument("--peaks-only", action="store_true", help="only the per-size peak memory")
    args = p.parse_args()
    if args.case:
        return one_case(args)
    if not args.peaks_only:
        speed(args)
    print(f"peak memory of colorize.py per photo size (model pixels capped at {colorizer.MAX_MODEL_PIXELS:,}, "
          f"and at {colorizer.STRIP_FACTOR} x the working size squared):")
    with tempfile.TemporaryDirectory() as d:
        for case in CASES:
            cmd = [sys.executable, __file__, "-m", args.model, "--models-dir", args.models_dir, "--case", case,
                   "--case-file", str(write_case(case, d))]
            if args.working_size:
                cmd += ["--working-size", str(args.working_size)]
            subprocess.run(cmd, check=True)


def speed(args):
    model, source = load(args)
    big = photo(3000, 4000)
    model.colorize_image(photo(64, 64), args.working_size)  # warm-up: trace the model
    print(f"model {args.model} ({source}); peak memory before: {peak_mb():.0f} MB")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = model.colorize_image(big, args.working_size)
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
                model.colorize_image(img, args.working_size).save(pathlib.Path(d) / f"{f.stem}.png",
                                                                  compress_level=1)
        dt = time.perf_counter() - t
    print(f"folder of 100 photos (640x480 JPEG, read + colorize + write PNG): {dt:.2f} s ({100 / dt:.1f} photos/s); "
          f"peak memory {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
