"""Reading image files and folders with Pillow: any mode and bit depth to uint8 RGB, EXIF orientation
honoured, unreadable files skipped with a warning that names them; sub-folders are classes."""

import concurrent.futures
import os
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_PHOTO_PIXELS = 200_000_000  # larger photos are refused: memory grows with the photo (README, Performance)


def upright(img):
    """The Pillow image turned as its EXIF orientation says (a copy), or itself when it is upright."""
    return ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) != 1 else img


def pil_to_rgb(img):
    """Any Pillow image (any mode, EXIF-rotated or not) -> upright RGB Pillow image."""
    img = upright(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16- and 32-bit gray: Pillow's convert("RGB") clips at 255, so rescale by hand
        return Image.fromarray(_integer_gray_to_uint8(np.asarray(img, dtype=np.float64), img.mode)).convert("RGB")
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)  # a NaN row stays one row
        a = a * 255 if a.max() <= 1.0 else a
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _integer_gray_to_uint8(a, mode):
    """16-bit data (mode I;16, or mode I within 0-65535, as 16-bit PNGs open) / 257; mode I within
    0-255 as it is; anything else (negative, above 65535: no known white level) stretched from its
    minimum to its maximum."""
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16") or (lo >= 0 and 255 < hi <= 65535):
        a = a / 257.0
    elif lo < 0 or hi > 65535:
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def read_image(path, image_size=None):
    """Read one file as uint8 RGB `(H, W, 3)`; with `image_size=(H, W)`, centre-crop and resize."""
    with Image.open(path) as img:
        rgb = pil_to_rgb(img)
    if image_size is not None and rgb.size != (image_size[1], image_size[0]):
        rgb = ImageOps.fit(rgb, (image_size[1], image_size[0]), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def read_many(files, image_size):
    """Read files in parallel threads (Pillow decodes outside the GIL); skip unreadable ones."""
    def read(f):
        try:
            return read_image(f, image_size)
        except Exception as e:  # noqa: BLE001 - anything Pillow raises on a malformed file means "unreadable"
            return e
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = list(pool.map(read, files, chunksize=256))
    images, keep = [], []
    for f, r in zip(files, results):
        ok = not isinstance(r, Exception)
        if ok:
            images.append(r)
        else:
            warnings.warn(f"Skipping {f}: not a readable image ({type(r).__name__}: {r})", stacklevel=3)
        keep.append(ok)
    return images, np.array(keep, dtype=bool)


def visible(entries):
    return sorted(p for p in entries if not p.name.startswith("."))


def load_image_folder(path, image_size=(32, 32)):
    """Load a folder of photos as `(images uint8 (N,H,W,3), labels int64 (N,), class_names)`.

    Each sub-folder is a class (sorted by name); files directly in `path` form one class named
    after the folder. Every format and mode Pillow reads is accepted (converted to RGB, EXIF
    orientation honoured); images are centre-cropped and resized to `image_size` = (H, W).
    Unreadable files are skipped with a warning that names them.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image folder '{path}' does not exist.")
    if not path.is_dir():
        raise NotADirectoryError(f"'{path}' is not a folder; pass a folder of images.")
    groups = class_files(path)
    if not groups:
        raise ValueError(f"Image folder '{path}' contains no files.")
    files = [f for _, fs in groups for f in fs]
    labels = np.concatenate([np.full(len(fs), i, np.int64) for i, (_, fs) in enumerate(groups)])
    images, keep = read_many(files, image_size)
    if not images:
        raise ValueError(f"Image folder '{path}' contains no readable images ({len(files)} files tried).")
    return np.stack(images), labels[keep], [name for name, _ in groups]


def class_files(root):
    """[(class name, sorted files)] of a folder: sub-folders are classes; loose files one class.
    Hidden entries (.ipynb_checkpoints, .DS_Store) and class folders that are links are ignored."""
    entries = visible(root.iterdir())
    # a class folder that is a symbolic link (say, to /usr) is not followed
    groups = [(d.name, visible(p for p in d.rglob("*") if p.is_file() and not
                                any(part.startswith(".") for part in p.relative_to(d).parts)))
              for d in entries if d.is_dir() and not d.is_symlink()]
    top = [p for p in entries if p.is_file()]
    if top:
        groups.append((root.name, top))
    return [(name, files) for name, files in groups if files]


class PhotoTooLarge(ValueError):
    pass


def check_photo_size(width, height):
    """A PhotoTooLarge error naming the size when a photo has more than MAX_PHOTO_PIXELS pixels."""
    if width * height > MAX_PHOTO_PIXELS:
        raise PhotoTooLarge(f"a {width}x{height} photo ({width * height:,} pixels) is larger than the "
                            f"{MAX_PHOTO_PIXELS:,} pixels colorized at most (memory grows with the photo)")


IMAGE_FORMS = "one image (H, W) or (H, W, C), or a batch (N, H, W, C), with C = 1 (gray), 3 (RGB) or 4 (RGBA)"


def image_batch(images):
    """The forms Colorizer.colorize_array accepts -> (uint8 batch (N, H, W, 1 or 3), its alpha (N, H, W, 1)
    or None, whether one image was given). Values are uint8, or float in [0, 1]; any other shape,
    type or range is refused with a ValueError naming it (never guessed: an (H, W, 3) photo is not
    a batch of gray strips)."""
    a = np.asarray(images)
    single = a.ndim in (2, 3)
    if a.ndim == 2:
        a = a[None, ..., None]
    elif a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[None]
    elif not (a.ndim == 4 and a.shape[-1] in (1, 3, 4)):
        raise ValueError(f"images of shape {np.shape(images)} ({a.dtype}) are not {IMAGE_FORMS}")
    if a.size == 0:
        raise ValueError(f"images of shape {np.shape(images)} are empty")
    if np.issubdtype(a.dtype, np.floating):
        if not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
            raise ValueError(f"float images must lie in [0, 1]; got values from {np.nanmin(a):g} to {np.nanmax(a):g} "
                             f"(or NaN/inf), shape {np.shape(images)}")
        a = (a * 255 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"images of dtype {a.dtype} (shape {np.shape(images)}) are not accepted; "
                         f"pass uint8 in [0, 255] or float in [0, 1]")
    alpha = a[..., 3:] if a.shape[-1] == 4 else None
    return (a[..., :3] if alpha is not None else a), alpha, single


def open_photo(path):
    """A photo file -> read_photo's (uint8 RGB array, alpha or None). Its size is checked against
    MAX_PHOTO_PIXELS from the header, before anything is decoded (PhotoTooLarge names it)."""
    limit = Image.MAX_IMAGE_PIXELS
    try:  # one limit, the project's: Pillow's own bomb check (at open) must not trip first
        Image.MAX_IMAGE_PIXELS = None
        img = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with img:
        check_photo_size(*img.size)
        img.load()
        return read_photo(img)


GRAY_MODES = ("L", "LA", "1")  # read as one channel: a gray photo's three equal channels would triple its memory


def read_photo(pil_image):
    """A Pillow image (any mode; decoded here, so anything Pillow raises on a malformed file is
    raised here) -> (upright uint8 array, its alpha channel as a Pillow image or None): (H, W, 1)
    for a gray photo of 8 bits, (H, W, 3) RGB for any other (image_batch takes both)."""
    check_photo_size(*pil_image.size)
    img = upright(pil_image)
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
    if img.mode in GRAY_MODES:
        return np.asarray(img.convert("L"))[..., None], alpha
    return np.asarray(pil_to_rgb(img)), alpha


def to_pil(photo):
    """A uint8 photo array (H, W), (H, W, 1) or (H, W, 3) -> a Pillow image (L or RGB)."""
    photo = np.asarray(photo)
    return Image.fromarray(photo[..., 0] if photo.ndim == 3 and photo.shape[-1] == 1 else photo)
