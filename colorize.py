"""Colorize your own photos with a trained colorizer, at any size.

    python colorize.py old_landscape.jpg scans/ -m colorizer_3 -o colorized/ --compare

The photo's own full-resolution luminance (CIE L*) is kept; the model predicts the chroma (a*, b*)
at a small working resolution, which is upsampled to the full size and recombined with that L.
So the output has exactly the input's size and detail, and memory stays bounded however large
the photo. Alpha is carried over. From Python:

    model = load_colorizer("colorizer_3")
    colorize_image(PIL.Image.open("photo.jpg"), model).save("photo_color.png")
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import data
import models

DEFAULT_MODEL = "colorizer_3"  # the best colorizer of the README's results table
OUTPUT_SUFFIX = "_color.png"


class ModelNotTrained(FileNotFoundError):
    pass


def load_colorizer(name_or_path, models_dir="saved_models"):
    """A trained colorizer from a registered name (`models_dir/<name>.keras`) or a `.keras` path."""
    import keras
    path = pathlib.Path(name_or_path)
    if path.suffix == ".keras":
        if not path.exists():
            raise FileNotFoundError(f"Model file '{path}' does not exist.")
    else:
        names = models.list_models("colorizer")
        if name_or_path not in names:
            raise ValueError(f"Unknown colorizer '{name_or_path}'; choose one of: {', '.join(names)} "
                             f"(or give a path to a .keras file)")
        path = pathlib.Path(models_dir) / f"{name_or_path}.keras"
        if not path.exists():
            raise ModelNotTrained(f"{name_or_path} is not trained yet ({path} does not exist). Train it with:\n"
                                  f"    python training.py {name_or_path} --models-dir {models_dir}")
    model = keras.models.load_model(path)
    if model.name not in models.MODELS:
        raise ValueError(f"'{path}' holds a model named '{model.name}', which is not a registered model "
                         f"({', '.join(models.MODELS)})")
    if models.MODELS[model.name].kind != "colorizer":
        raise ValueError(f"'{name_or_path}' is a {models.MODELS[model.name].kind}, not a colorizer")
    return model


def _working_shape(height, width, model, working_size):
    """(h, w) the model runs at: the short side is `working_size` (default: the trained size), the
    aspect ratio kept and rounded to the model's stride; a fixed-size model runs at its size."""
    trained = tuple(model.input_shape[1:3])
    stride = models.MODELS[model.name].stride
    if stride is None:
        if working_size not in (None, min(trained)):
            raise ValueError(f"{model.name} has a fixed input size {trained[0]}x{trained[1]}; "
                             f"--working-size {working_size} is not possible")
        return trained
    short = working_size or min(trained)
    scale = short / min(height, width)
    rnd = lambda v: max(stride, int(round(v * scale / stride)) * stride)  # noqa: E731
    return rnd(height), rnd(width)


_SIZED = {}  # (id(model), h, w) -> the model rebuilt at that size: a folder of same-sized photos builds it once


def _model_at(model, h, w):
    key = (id(model), h, w)
    if key not in _SIZED:
        if len(_SIZED) >= 8:
            _SIZED.pop(next(iter(_SIZED)))
        _SIZED[key] = (model, models.at_size(model, h, w))  # holding `model` keeps its id unique
    return _SIZED[key][1]


def _recombine(full_rgb, ab_full, rows=256):
    """Full-resolution L of the photo + upsampled ab -> uint8 RGB, a stripe of rows at a time
    (bounded temporary memory, cache-friendly)."""
    out = np.empty_like(full_rgb)
    for i in range(0, full_rgb.shape[0], rows):
        out[i:i + rows] = data.photo_lab_to_rgb(data.photo_L(full_rgb[i:i + rows]), ab_full[i:i + rows])
    return out


def colorize_image(pil_image, model, working_size=None, saturation=1.0):
    """Colorize one Pillow image (any mode, any size) -> RGB (or RGBA when it had alpha) image of
    the same width and height. `saturation` multiplies the predicted chroma (1: as trained)."""
    saturation = models.check_saturation(saturation)
    img = ImageOps.exif_transpose(pil_image)
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
    rgb = data.pil_to_rgb(img)
    full = np.asarray(rgb)
    h, w = _working_shape(full.shape[0], full.shape[1], model, working_size)
    small = np.asarray(rgb.resize((w, h), Image.Resampling.BOX if w < full.shape[1] else Image.Resampling.BICUBIC))
    ab = models.predict_ab(_model_at(model, h, w), small[None])[0] * saturation      # (h, w, 2)
    # chroma is smooth: bilinear upsampling of each channel to the full size
    ab_full = np.stack([np.asarray(Image.fromarray(ab[..., i]).resize(rgb.size, Image.Resampling.BILINEAR))
                        for i in range(2)], axis=-1)
    out = Image.fromarray(_recombine(full, ab_full))
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


def main(argv=None):
    p = argparse.ArgumentParser(description="Colorize grayscale (or colour) photos with a trained colorizer.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"a colorizer name ({', '.join(models.list_models('colorizer'))}) or a .keras file "
                        f"(default {DEFAULT_MODEL})")
    p.add_argument("--models-dir", default="saved_models")
    p.add_argument("-o", "--outdir", default="colorized")
    p.add_argument("--working-size", type=int, default=None,
                   help="short side, in pixels, at which the model predicts chroma (default: its training size)")
    p.add_argument("--saturation", type=float, default=1.0,
                   help="multiply the predicted chroma: 1 = as trained (default), 2 = twice as vivid, "
                        f"0 = gray; from 0 to {models.MAX_SATURATION:g}")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: gray | colour")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = p.parse_args(argv)
    if args.working_size is not None and args.working_size < 1:
        p.error(f"--working-size must be a positive number of pixels, got {args.working_size}")
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
    done, t0 = 0, time.perf_counter()
    for f, rel in _progress(files):
        target = outdir / rel.parent / (rel.stem + OUTPUT_SUFFIX)
        compare = outdir / rel.parent / (rel.stem + "_compare.png")
        written = [target] + ([compare] if args.compare else [])
        clash = [t for t in written if t.resolve() in input_paths or (t.exists() and not args.overwrite)]
        if clash:
            failed.append(f"{f}: {clash[0]} exists (an input, or pass --overwrite to replace it)")
            continue
        try:
            with Image.open(f) as img:
                img.load()
                color = colorize_image(img, model, args.working_size, args.saturation)
                gray = data.pil_to_rgb(img).convert("L") if args.compare else None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            failed.append(f"{f}: not a readable image ({type(e).__name__}: {e})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        color.save(target, compress_level=1)  # fast: big PNGs take seconds at the default level
        if args.compare:
            side_by_side(gray, color).save(compare, compress_level=1)
        done += 1
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    print(f"{done} colorized, {len(failed)} failed, {time.perf_counter() - t0:.1f} s -> {outdir}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
