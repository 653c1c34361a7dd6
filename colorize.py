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
import collections
import errno
import functools
import json
import pathlib
import sys
import time

from PIL import Image, ImageFile

import machine
import store
from colorizer import (DEFAULT_MODEL, MAX_SATURATION, Colorizer, HintError, WorkingSizeError, check_saturation,
                       check_takes_hints, check_working_size, COLORIZERS)
from colour import hint_ab
from photos import PhotoTooLarge, open_photo, to_pil

OUTPUT_SUFFIX = "_color.png"
ModelNotTrained = store.ModelNotTrained


def load_colorizer(name_or_path=DEFAULT_MODEL, models_dir=store.MODELS_DIR):
    """The Keras model of a trained colorizer (Colorizer.load wraps it for photos of any size)."""
    return store.load(name_or_path, models_dir, family="colorizer")


def colorize_array(images, model, working_size=None, saturation=1.0):
    """Colorizer.colorize_array for a model or a Colorizer."""
    return Colorizer.of(model).colorize_array(images, working_size, saturation)


def colorize_image(pil_image, model, working_size=None, saturation=1.0):
    """Colorizer.colorize_image for a model or a Colorizer."""
    return Colorizer.of(model).colorize_image(pil_image, working_size, saturation)


def compare(rgb, colorizer, alpha=None, working_size=None, saturation=1.0, hints=None):
    """A photo (read_photo's uint8 RGB array, and alpha) -> (its colorization, gray | colour side by
    side), as Pillow images: what `--compare` writes. `hints`: [(x, y, colour)] for a hint model."""
    color = Colorizer.of(colorizer).colorize_photo(rgb, alpha, working_size, saturation, hints)
    return color, side_by_side(rgb, color)


def side_by_side(photo, color):
    """gray | colour, one image: `photo` is the input (a Pillow image, or read_photo's array), shown gray."""
    gray = (photo if isinstance(photo, Image.Image) else to_pil(photo)).convert("L")
    canvas = Image.new("RGB", (gray.width + color.width, max(gray.height, color.height)), "white")
    canvas.paste(gray.convert("RGB"), (0, 0))
    canvas.paste(color.convert("RGB"), (gray.width, 0))
    return canvas

# ----------------------------------------------------------------------------- command line


def parse_hints(hint_args, hints_file=None):
    """--hint X,Y,COLOUR values and a --hints JSON file -> [(x, y, colour)] (None without any); a
    ValueError naming a malformed one. Whether each is inside a photo is checked per photo."""
    hints = []
    for text in hint_args:
        parts = [v.strip() for v in text.split(",")]
        if len(parts) not in (3, 5) or not all(v.lstrip("-").isdigit() for v in parts[:2]):
            raise ValueError(f"--hint {text!r} is not X,Y,COLOUR (e.g. 120,45,#3fa7b5, 30,200,purple or "
                             f"30,200,0.5,0.2,0.8: an RGB triple in [0, 1])")
        try:  # X,Y,R,G,B: the colour as three numbers
            colour_ = tuple(float(v) for v in parts[2:]) if len(parts) == 5 else parts[2]
        except ValueError:
            raise ValueError(f"--hint {text!r}: an RGB colour is three numbers in [0, 1], got {','.join(parts[2:])!r}") \
                from None
        hints.append((int(parts[0]), int(parts[1]), colour_))
    if hints_file:
        try:
            text = pathlib.Path(hints_file).read_bytes()  # json reads bytes: a binary file is "not JSON" below
        except OSError as e:
            raise ValueError(f"--hints {hints_file}: cannot read it ({e.strerror})") from None
        try:
            items = json.loads(text)
            hints += [(item["x"], item["y"], item["color"]) for item in items]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"--hints {hints_file}: not a JSON list of {{\"x\", \"y\", \"color\"}} ({e})") from None
    for x, y, colour_ in hints:
        if not (isinstance(x, int) and isinstance(y, int)):
            raise ValueError(f"hint x and y must be whole pixels, got x={x!r}, y={y!r}")
        hint_ab(colour_)  # a ValueError naming a colour that is not one
    return hints or None


OWN_OUTPUTS = (OUTPUT_SUFFIX, "_compare.png")
# the suffixes of the formats Pillow reads: not those it only writes, nor those it names but cannot
# decode (stubs needing a handler, MPEG whose header alone it reads): a folder's video stays out
Image.init()  # every plugin registered: Image.OPEN is filled lazily
_STUBS = {fmt for fmt, (factory, _) in Image.OPEN.items()
          if isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)} | {"MPEG"}
IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items()
                           if fmt in Image.OPEN and fmt not in _STUBS)


def _expand(inputs, outdir=None):
    """(found, missing, not_images): (file, path relative to the output folder) for every input, the
    inputs that do not exist, and the files of folders left alone because their names are not those
    of images (notes.txt, Thumbs.db: a photo folder's usual company, not failed photos). Folders are
    walked recursively, leaving out hidden entries, the output folder and this tool's own outputs (so
    that colorizing a folder into a sub-folder of itself, again and again, never colorizes its own
    results). A file named on the command line is always tried."""
    out = pathlib.Path(outdir).resolve() if outdir is not None else None
    found, missing, not_images = [], [], []
    for raw in inputs:
        p = pathlib.Path(raw)
        if p.is_dir():
            files = [f for f in sorted(p.rglob("*"))
                     if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
                     and not f.name.endswith(OWN_OUTPUTS) and not (out and f.resolve().is_relative_to(out))]
            found += [(f, f.relative_to(p)) for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
            not_images += [f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES]
        elif p.is_file():
            found.append((p, pathlib.Path(p.name)))
        else:
            missing.append(p)
    return found, missing, not_images


def _left_alone(not_images):
    """The summary's line for a folder's files left alone, counted by suffix (a folder of .heic photos shows)."""
    kinds = collections.Counter(f.suffix.lower() or "no suffix" for f in not_images)
    counts = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kn: (-kn[1], kn[0])))
    return f"{len(not_images)} left alone in the folders, not images Pillow reads by their names ({counts}), e.g. {not_images[0]}"


def _progress(items):
    try:
        from tqdm import tqdm
        # shown from the first photo on: a refused option or model before it prints no empty bar; only
        # in a terminal (redrawn with carriage returns, it would fill a log; the summary says the rest)
        shown = len(items) >= 2 and machine.is_terminal(sys.stderr)
        return tqdm(items, unit="photo", disable=not shown, file=sys.stderr, delay=0.1)
    except ImportError:
        return items


class Skipped(Exception):
    """An output that exists already (not a failure: a re-run skips the photos it has done)."""


def _stems(files):
    """The name each input's outputs start with: its own stem, or, where photos of one folder share a
    stem with different suffixes (scan.tif beside scan.jpg), the stem and the suffix (scan_tif), so
    that each gets its own output and none is credited with another's."""
    suffixes = collections.defaultdict(set)
    for _, rel in files:
        suffixes[rel.parent, rel.stem].add(rel.suffix)
    return [f"{rel.stem}_{rel.suffix[1:]}" if len(suffixes[rel.parent, rel.stem]) > 1 else rel.stem for _, rel in files]


def _outputs(rel, stem, outdir, args, input_paths):
    """The files an input writes (`stem` + this tool's suffixes), checked: inside the output folder,
    not an input (two inputs sharing a name are refused by _plan first); Skipped when all exist and
    --overwrite was not given. Returns [(path, whether to write it)]: one that exists is kept unless
    --overwrite."""
    root = outdir.resolve()
    written = [outdir / rel.parent / (stem + s) for s in OWN_OUTPUTS[:1 + bool(args.compare)]]
    for t in written:
        if t.is_symlink():
            raise ValueError(f"{t} is a symbolic link; not writing through it")
        if not t.resolve().is_relative_to(root):
            raise ValueError(f"{t} leads out of the output folder {outdir} (through a symbolic link); not writing there")
        if t.resolve() in input_paths:
            raise ValueError(f"{t} is one of the inputs; not overwriting it")
    todo = [(t, args.overwrite or not t.exists()) for t in written]
    if not any(write for _, write in todo):
        raise Skipped(f"{written[0]} exists")
    return todo


def _plan(files, outdir, args):
    """Before the model loads: (jobs, failed, skipped). A job is (input, _outputs: [(output path,
    whether to write it)]); failed holds the messages of inputs whose outputs cannot be written,
    skipped those of inputs whose outputs all exist."""
    input_paths = {f.resolve() for f, _ in files}
    jobs, failed, skipped = [], [], []
    stems = _stems(files)
    sharing = collections.defaultdict(list)  # inputs whose outputs would have one name: all refused, so
    for (f, rel), stem in zip(files, stems):  # that none is written, or skipped, as if it were the other's
        sharing[rel.parent, stem].append(f)
    for (f, rel), stem in zip(files, stems):
        if len(sharing[rel.parent, stem]) > 1:
            others = ", ".join(str(o) for o in sharing[rel.parent, stem] if o != f)
            failed.append(f"{f}: its output {outdir / rel.parent / (stem + OUTPUT_SUFFIX)} would also be that of {others} "
                          f"in this run (same name); rename one")
            continue
        try:
            jobs.append((f, _outputs(rel, stem, outdir, args, input_paths)))
        except Skipped as e:
            skipped.append(str(e))
        except ValueError as e:
            failed.append(f"{f}: {e}")
    return jobs, failed, skipped


def _colorize_all(p, args, jobs, done, failed, skipped):
    """Check the colorizer's options and load it, then for each job open the photo, colorize it and
    write its outputs: one pass down through the modules per photo (checked here, not before the
    inputs are listed, so that the photo's path crosses into colorizer.py once). Each input ends in
    `done`, `failed` or `skipped`."""
    for check, value, flag in ((check_working_size, args.working_size, "--working-size"),
                               (check_saturation, args.saturation, "--saturation")):
        try:
            check(value)
        except ValueError as e:
            p.error(f"{flag}: {e}")
    try:
        colorizer = Colorizer.load(args.model, args.models_dir, tta=args.tta)
        if args.hints:  # refused before any photo
            check_takes_hints(colorizer.model, [args.hints])
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))
    for f, todo in jobs:
        try:
            rgb, alpha = open_photo(f)
        except PhotoTooLarge as e:
            failed.append(f"{f}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - anything Pillow raises on a malformed file means "unreadable"
            failed.append(f"{f}: not a readable image ({type(e).__name__}: {e})")
            continue
        try:
            color = colorizer.colorize_photo(rgb, alpha, args.working_size, args.saturation, args.hints)
        except WorkingSizeError as e:  # the same for every photo: one usage error, at the first
            p.error(f"--working-size: {e}")
        except HintError as e:  # a hint outside this photo
            failed.append(f"{f}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - reported for this photo; the rest of the batch goes on
            failed.append(f"{f}: could not colorize it ({type(e).__name__}: {e})")
            continue
        images = [color] + ([side_by_side(rgb, color)] if args.compare else [])
        try:
            todo[0][0].parent.mkdir(parents=True, exist_ok=True)
            for image, (t, write) in zip(images, todo):
                try:
                    if write:  # PNG at compress level 1: big PNGs take seconds at the default level
                        machine.write_atomic(t, functools.partial(image.save, format="PNG", compress_level=1),
                                             args.overwrite)
                except FileExistsError:
                    raise Skipped(f"{t} exists (written by another process meanwhile)") from None
        except Skipped as e:
            skipped.append(str(e))
            continue
        except OSError as e:
            hint = " (the disk is full: free some space and run again)" if e.errno == errno.ENOSPC else ""
            failed.append(f"{f}: could not write {todo[0][0]} ({type(e).__name__}: {e}){hint}")
            continue
        done.append(f)


def parser():
    p = argparse.ArgumentParser(description="Colorize grayscale (or colour) photos with a trained colorizer.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"a colorizer: <dataset>/<name> for one trained on photos (default {DEFAULT_MODEL}), "
                        f"a CIFAR-10 one by name ({', '.join(COLORIZERS)}: those in --models-dir), or a .keras file")
    p.add_argument("--models-dir", default=store.MODELS_DIR,
                   help=f"where named models are found (default {store.MODELS_DIR}, the published ones; "
                        f"training.py saves yours in {store.TRAIN_DIR})")
    p.add_argument("-o", "--outdir", default="colorized")
    p.add_argument("--working-size", type=int, default=None,
                   help="short side, in pixels, at which the model predicts chroma (default: its training size)")
    p.add_argument("--saturation", type=float, default=1.0,
                   help="multiply the predicted chroma: 1 = as trained (default), 2 = twice as vivid, "
                        f"0 = gray; from 0 to {MAX_SATURATION:g}")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: gray | colour")
    p.add_argument("--tta", action="store_true", help="average each prediction with the mirror image's "
                   "(test-time augmentation): a little more accurate, twice the model's time (README)")
    p.add_argument("--hint", action="append", default=[], metavar="X,Y,COLOUR",
                   help="a colour hint for a hint model (colorizer_7): x, y in the photo's pixels from the top "
                        "left, and #rrggbb, a Matplotlib colour name or R,G,B in [0, 1]; repeat for several")
    p.add_argument("--hints", metavar="FILE", help='colour hints from a JSON list of {"x": .., "y": .., "color": ..}')
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    try:  # everything about the command line first (arguments, hints, inputs, outputs), then down once
        args.hints = parse_hints(args.hint, args.hints)
    except ValueError as e:
        p.error(str(e))
    outdir = pathlib.Path(args.outdir)
    try:
        files, missing, not_images = _expand(args.inputs, outdir)
        jobs, failed, skipped = _plan(files, outdir, args)
    except KeyboardInterrupt:  # walking a large folder: nothing was written yet
        print("\ninterrupted while listing the inputs: nothing colorized", file=sys.stderr)
        return 130
    failed = [f"{m}: no such file or folder" for m in missing] + failed
    done, t0 = [], time.perf_counter()
    try:
        _colorize_all(p, args, _progress(jobs), done, failed, skipped)
    except KeyboardInterrupt:
        left = len(files) - len(done) - len(skipped) - len(failed) + len(missing)
        print(f"\ninterrupted: {len(done)} colorized, {len(skipped)} skipped, {len(failed)} failed, {left} left "
              f"(run the same command again to do the rest)", file=sys.stderr)
        return 130
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} skipped: their outputs exist (use --overwrite to replace them), e.g. {skipped[0]}")
    if not_images:
        print(_left_alone(not_images))
    nothing = not files and not missing  # only folders, and not one photo in them (empty, HEIC or RAW)
    if nothing:
        print("error: the folders hold no photo to colorize (left out: hidden files, the output folder, this tool's "
              "own outputs, and names Pillow does not read as images: convert those photos to .jpg or .png, or "
              "name a file on the command line to try it)", file=sys.stderr)
    print(f"{len(done)} colorized, {len(skipped)} skipped, {len(failed)} failed, {time.perf_counter() - t0:.1f} s"
          + (f" -> {outdir}/" if done else ""))  # the folder is named only when something was written there
    return 1 if failed or nothing else 0


if __name__ == "__main__":
    sys.exit(main())
