"""Colorize your own photos with a trained colorizer, at any size.

    python colorize.py old_landscape.jpg scans/ -o colorized/ --compare     # the landscape colorizer
    python colorize.py photo.jpg -m colorizer_3                               # a CIFAR-10 model by name

The photo's own full-resolution luminance (CIE L*) is kept; the model predicts the chroma (a*, b*)
at a small working resolution, which is upsampled to the full size and recombined with that L.
So the output has exactly the input's size and detail, and memory stays bounded however large
the photo. Alpha is carried over. From Python:

    model = load_colorizer()            # the default, landscapes/colorizer_6
    colorize_image(PIL.Image.open("photo.jpg"), model).save("photo_color.png")
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import argparse
import os
import pathlib
import sys
import time

import numpy as np
from PIL import Image, ImageOps

import data
import models
import store

DEFAULT_MODEL = "landscapes/colorizer_6"  # the best landscape colorizer (README, Landscapes)
OUTPUT_SUFFIX = "_color.png"
ModelNotTrained = store.ModelNotTrained


def load_colorizer(name_or_path=DEFAULT_MODEL, models_dir=store.MODELS_DIR):
    """A trained colorizer: `colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or a
    `.keras` path; checked to be a registered colorizer (see store.load)."""
    return store.load(name_or_path, models_dir, kind="colorizer")


MAX_WORKING_SIZE = 1024          # --working-size above this is refused
MAX_MODEL_PIXELS = 512 * 512     # the model never runs on more pixels than this, whatever the photo's shape


def check_working_size(working_size):
    """None, or a whole number of pixels from 1 to MAX_WORKING_SIZE; else a ValueError naming it."""
    if working_size is None:
        return None
    if not isinstance(working_size, (int, np.integer)) or not 1 <= working_size <= MAX_WORKING_SIZE:
        raise ValueError(f"working size must be a whole number of pixels from 1 to {MAX_WORKING_SIZE}, "
                         f"got {working_size!r}")
    return int(working_size)


def _working_shape(height, width, model, working_size):
    """(h, w) the model runs at: the short side is `working_size` (default: the trained size), the
    aspect ratio kept and rounded to the model's stride, and at most MAX_MODEL_PIXELS in all (a
    very long strip is shrunk further, so memory stays bounded); a fixed-size model runs at its size."""
    trained = tuple(model.input_shape[1:3])
    stride = models.spec(model.name).stride
    working_size = check_working_size(working_size)
    if stride is None:
        if working_size not in (None, min(trained)):
            raise ValueError(f"{model.name} has a fixed input size {trained[0]}x{trained[1]}; "
                             f"--working-size {working_size} is not possible")
        return trained
    short = working_size or min(trained)
    scale = short / min(height, width)
    if height * width * scale ** 2 > MAX_MODEL_PIXELS:
        scale = (MAX_MODEL_PIXELS / (height * width)) ** 0.5
    h, w = (max(stride, int(round(v * scale / stride)) * stride) for v in (height, width))
    if h * w > MAX_MODEL_PIXELS:  # a strip a few pixels wide: rounding up its short side to the stride
        if h >= w:
            h = max(stride, MAX_MODEL_PIXELS // w // stride * stride)
        else:
            w = max(stride, MAX_MODEL_PIXELS // h // stride * stride)
    return h, w


_SIZED = {}  # (id(model), h, w) -> the model rebuilt at that size: a folder of same-sized photos builds it once


def _model_at(model, h, w):
    key = (id(model), h, w)
    if key not in _SIZED:
        if len(_SIZED) >= 8:
            _SIZED.pop(next(iter(_SIZED)))
        _SIZED[key] = (model, models.at_size(model, h, w))  # holding `model` keeps its id unique
    return _SIZED[key][1]


def colorize_array(images, model, working_size=None, saturation=1.0):
    """Colorize uint8 RGB (or gray) photos `(N, H, W, 3)` of one size -> uint8 RGB of the same
    shape: each photo's own full-resolution L* is kept; the model predicts a*, b* at its working
    size (`_working_shape`), which are upsampled bilinearly and recombined with that L*."""
    saturation = models.check_saturation(saturation)
    images = np.asarray(images)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    n, H, W = images.shape[:3]
    h, w = _working_shape(H, W, model, working_size)
    ab = models.predict_ab(_model_at(model, h, w), data.resize_batch(images, h, w)) * saturation   # (n, h, w, 2)
    return data.recombine_full(images, ab)


def colorize_image(pil_image, model, working_size=None, saturation=1.0):
    """Colorize one Pillow image (any mode, any size) -> RGB (or RGBA when it had alpha) image of
    the same width and height. `saturation` multiplies the predicted chroma (1: as trained)."""
    img = ImageOps.exif_transpose(pil_image)
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
    full = np.asarray(data.pil_to_rgb(img))
    out = Image.fromarray(colorize_array(full[None], model, working_size, saturation)[0])
    if alpha is not None:
        out.putalpha(alpha)
    return out


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


def _colorize_one(f, rel, model, args, outdir, input_paths, claimed):
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
        with Image.open(f) as img:
            img.load()
            color = colorize_image(img, model, args.working_size, args.saturation)
            gray = data.pil_to_rgb(img).convert("L") if args.compare else None
    except Exception as e:  # noqa: BLE001 - anything Pillow raises on a malformed file means "unreadable"
        return f"not a readable image ({type(e).__name__}: {e})"
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
                        f"a CIFAR-10 name ({', '.join(models.list_models('colorizer'))}), or a .keras file")
    p.add_argument("--models-dir", default=store.MODELS_DIR)
    p.add_argument("-o", "--outdir", default="colorized")
    p.add_argument("--working-size", type=int, default=None,
                   help="short side, in pixels, at which the model predicts chroma (default: its training size)")
    p.add_argument("--saturation", type=float, default=1.0,
                   help="multiply the predicted chroma: 1 = as trained (default), 2 = twice as vivid, "
                        f"0 = gray; from 0 to {models.MAX_SATURATION:g}")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: gray | colour")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = p.parse_args(argv)
    try:
        check_working_size(args.working_size)
    except ValueError as e:
        p.error(f"--{e}")
    try:
        models.check_saturation(args.saturation)
    except ValueError as e:
        p.error(f"--{e}")
    try:
        model = load_colorizer(args.model, args.models_dir)
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))

    files, missing = _expand(args.inputs)
    failed = [f"{m}: no such file or folder" for m in missing]
    outdir = pathlib.Path(args.outdir)
    input_paths = {f.resolve() for f, _ in files}
    claimed = {}  # output path -> the input that writes it: two inputs never share an output
    done, t0 = 0, time.perf_counter()
    for f, rel in _progress(files):
        error = _colorize_one(f, rel, model, args, outdir, input_paths, claimed)
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
