"""Colorize your own photos with a trained colorizer, at any size: the command line over
colorizer.Colorizer.

    python colorize.py old_landscape.jpg scans/ -o colorized/ --compare     # the landscape colorizer
    python colorize.py photo.jpg -m colorizer_3                               # a CIFAR-10 model by name

The photo's own full-resolution luminance (CIE L*) is kept; the model predicts the chroma (a*, b*)
at a small working resolution (at most colorizer.MAX_MODEL_PIXELS), which is upsampled to the full
size and recombined with that L. So the output has exactly the input's size and detail. Alpha is
carried over. Every output is written under a temporary name and renamed into place; a photo that
cannot be read or written is reported and the rest of the batch goes on (exit status 1). From Python:

    from colorizer import Colorizer
    Colorizer.load().colorize_image(PIL.Image.open("photo.jpg")).save("photo_color.png")
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import argparse
import os
import pathlib
import sys
import time
import warnings

from PIL import Image

import store
from colorizer import DEFAULT_MODEL, MAX_SATURATION, Colorizer, check_saturation, check_working_size, colorizer_names
from photos import PhotoTooLarge, read_photo

OUTPUT_SUFFIX = "_color.png"
ModelNotTrained = store.ModelNotTrained


def load_colorizer(name_or_path=DEFAULT_MODEL, models_dir=store.MODELS_DIR):
    """The Keras model of a trained colorizer (see Colorizer.load, which wraps it)."""
    return Colorizer.load(name_or_path, models_dir).model


def colorize_array(images, model, working_size=None, saturation=1.0):
    """Colorizer.colorize_array for a model or a Colorizer."""
    return Colorizer.of(model).colorize_array(images, working_size, saturation)


def colorize_image(pil_image, model, working_size=None, saturation=1.0):
    """Colorizer.colorize_image for a model or a Colorizer."""
    return Colorizer.of(model).colorize_image(pil_image, working_size, saturation)


def side_by_side(gray, color):
    """gray | colour, one image."""
    canvas = Image.new("RGB", (gray.width + color.width, max(gray.height, color.height)), "white")
    canvas.paste(gray.convert("RGB"), (0, 0))
    canvas.paste(color.convert("RGB"), (gray.width, 0))
    return canvas

# ----------------------------------------------------------------------------- command line


def _expand(inputs):
    """(file, path relative to the output folder) for every input; folders are walked recursively."""
    found, missing = [], []
    for raw in inputs:
        p = pathlib.Path(raw)
        if p.is_dir():
            found += [(f, f.relative_to(p)) for f in sorted(p.rglob("*"))
                      if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)]
        elif p.is_file():
            found.append((p, pathlib.Path(p.name)))
        else:
            missing.append(p)
    return found, missing


def _progress(items):
    try:
        from tqdm import tqdm
        return tqdm(items, unit="photo", disable=len(items) < 2, file=sys.stderr)
    except ImportError:
        return items


def save_atomic(image, target):
    """Write a PNG under a temporary name in the target's folder, then rename it into place: a failed
    write (full disk) never leaves half a file at `target` nor destroys a previous good one. A
    target that is a symbolic link is refused, never written through."""
    target = pathlib.Path(target)
    if target.is_symlink():
        raise OSError(f"{target} is a symbolic link; not writing through it")
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        image.save(tmp, format="PNG", compress_level=1)  # fast: big PNGs take seconds at the default level
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _colorize_one(f, rel, colorizer, args, outdir, input_paths, claimed):
    """Colorize one input file into `outdir`; returns None, or the reason it was not done."""
    target = outdir / rel.parent / (rel.stem + OUTPUT_SUFFIX)
    compare = outdir / rel.parent / (rel.stem + "_compare.png")
    written = [target] + ([compare] if args.compare else [])
    for t in written:
        if t in claimed:
            return f"its output {t} is already written by {claimed[t]} in this run (same name); rename one"
        if t.is_symlink():
            return f"{t} is a symbolic link; not writing through it"
        if t.resolve() in input_paths or (t.exists() and not args.overwrite):
            return f"{t} exists (an input, or pass --overwrite to replace it)"
    try:
        with warnings.catch_warnings():  # Pillow's decompression-bomb warning: the size is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(f)
        with img:
            img.load()
            rgb, alpha = read_photo(img)
    except PhotoTooLarge as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - anything Pillow raises on a malformed file means "unreadable"
        return f"not a readable image ({type(e).__name__}: {e})"
    try:
        color = colorizer.colorize_photo(rgb, alpha, args.working_size, args.saturation)
    except Exception as e:  # noqa: BLE001 - reported for this photo; the rest of the batch goes on
        return f"could not colorize it ({type(e).__name__}: {e})"
    gray = Image.fromarray(rgb).convert("L") if args.compare else None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(color, target)
        if args.compare:
            save_atomic(side_by_side(gray, color), compare)
    except OSError as e:
        return f"could not write {target} ({type(e).__name__}: {e})"
    claimed.update({t: f for t in written})
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description="Colorize grayscale (or colour) photos with a trained colorizer.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"a colorizer: <dataset>/<name> for one trained on photos (default {DEFAULT_MODEL}), "
                        f"a CIFAR-10 name ({', '.join(colorizer_names())}), or a .keras file")
    p.add_argument("--models-dir", default=store.MODELS_DIR)
    p.add_argument("-o", "--outdir", default="colorized")
    p.add_argument("--working-size", type=int, default=None,
                   help="short side, in pixels, at which the model predicts chroma (default: its training size)")
    p.add_argument("--saturation", type=float, default=1.0,
                   help="multiply the predicted chroma: 1 = as trained (default), 2 = twice as vivid, "
                        f"0 = gray; from 0 to {MAX_SATURATION:g}")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: gray | colour")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = p.parse_args(argv)
    try:
        check_working_size(args.working_size)
    except ValueError as e:
        p.error(f"--{e}")
    try:
        check_saturation(args.saturation)
    except ValueError as e:
        p.error(f"--{e}")
    try:
        colorizer = Colorizer.load(args.model, args.models_dir)
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))

    files, missing = _expand(args.inputs)
    failed = [f"{m}: no such file or folder" for m in missing]
    outdir = pathlib.Path(args.outdir)
    input_paths = {f.resolve() for f, _ in files}
    claimed = {}  # output path -> the input that writes it: two inputs never share an output
    done, t0 = 0, time.perf_counter()
    for f, rel in _progress(files):
        error = _colorize_one(f, rel, colorizer, args, outdir, input_paths, claimed)
        if error:
            failed.append(f"{f}: {error}")
        else:
            done += 1
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    print(f"{done} colorized, {len(failed)} failed, {time.perf_counter() - t0:.1f} s -> {outdir}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
