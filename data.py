"""Data: CIFAR-10, image folders, grayscale and Lab conversion, `tf.data` pipelines.

Value ranges used everywhere in the project:

- stored images: uint8 RGB `(N, H, W, 3)` in [0, 255];
- `rgb`  (autoencoder input/output, colorizer_1/2 output): float32 in [0, 1];
- `gray` (colorizer_1/2 input): float32 `(..., H, W, 1)` in [0, 1], ITU-R BT.601 luma;
- `L`    (Lab models' input): float32 `(..., H, W, 1)`, CIE L* / 50 - 1, in [-1, 1];
- `ab`   (Lab models' output): float32 `(..., H, W, 2)`, CIE a*, b* / 110, about [-1, 1].

Lab is CIE L*a*b* under D65 as computed by `skimage.color.rgb2lab`.
"""

import concurrent.futures
import hashlib
import os
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
L_SCALE, AB_SCALE = 50.0, 110.0

# -----------------------------------------------------------------------------
# Reading images

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


def _read_many(files, image_size):
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


def _visible(entries):
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
    groups = _class_files(path)
    if not groups:
        raise ValueError(f"Image folder '{path}' contains no files.")
    files = [f for _, fs in groups for f in fs]
    labels = np.concatenate([np.full(len(fs), i, np.int64) for i, (_, fs) in enumerate(groups)])
    images, keep = _read_many(files, image_size)
    if not images:
        raise ValueError(f"Image folder '{path}' contains no readable images ({len(files)} files tried).")
    return np.stack(images), labels[keep], [name for name, _ in groups]

# -----------------------------------------------------------------------------
# CIFAR-10

def _default_cache_dir():
    return pathlib.Path(os.environ.get("COLORIZE_CACHE", pathlib.Path.home() / ".cache" / "grayscale-colorizers"))


def _folder_key(root):
    """Cache key: the folder's absolute path and the modification times of its class folders
    (adding, removing or renaming a file changes its folder's mtime)."""
    parts = [str(root.resolve())]
    for split in ("train", "test"):
        for d in _visible((root / split).iterdir()):
            parts.append(f"{split}/{d.name}:{d.stat().st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def _load_split(root, split):
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder '{root}' has no '{split}/' sub-folder; "
                                f"expected {split}/<class>/*.jpg")
    x, y, classes = load_image_folder(split_dir, image_size=(32, 32))
    if list(classes) != list(CIFAR10_CLASSES):
        raise ValueError(f"CIFAR-10 folder '{split_dir}' has classes {classes}; expected {list(CIFAR10_CLASSES)}")
    return x, y


def _count_files(root, split):
    """Visible files in the class folders of `root/split`, counted from directory listings alone
    (no stat per file: 60,000 stat calls cost a second on every load)."""
    return sum(1 for d in _visible((root / split).iterdir()) if d.is_dir()
               for e in os.scandir(d) if not e.name.startswith(".") and e.is_file())


def _check_cifar_cache(arrays, counts, root):
    """A cache must hold uint8 (N, 32, 32, 3) images with N labels, at most as many as the files
    counted when it was written, and those counts must still be the folder's."""
    for (x, y), n_files, split in zip(arrays, counts, ("train", "test")):
        if x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or len(y) != len(x) or not 0 < len(x) <= n_files:
            raise ValueError(f"{split}: images {x.shape} {x.dtype}, {len(y)} labels, {n_files} files counted")
        now = _count_files(root, split)
        if now != n_files:
            raise ValueError(f"{split}: the cache was written from {n_files} files, the folder now has {now}")


def load_cifar10(data_dir=None, cache_dir=None):
    """CIFAR-10 as `(x_train, y_train), (x_test, y_test)`: uint8 (N,32,32,3), int64 labels (N,).

    Source: `data_dir`, else `$CIFAR10_DIR`, else `keras.datasets.cifar10.load_data()` (downloads
    once). A folder is laid out as `train/<class>/*`, `test/<class>/*`; its decoded arrays are
    cached in `cache_dir` (default `$COLORIZE_CACHE` or ~/.cache/grayscale-colorizers) under a key
    made of the folder's path and modification times, so later loads take a fraction of a second.
    """
    data_dir = data_dir or os.environ.get("CIFAR10_DIR")
    if not data_dir:
        import keras
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as e:  # no network, blocked download, corrupt archive...
            raise RuntimeError(
                "Could not download CIFAR-10 through Keras "
                f"({type(e).__name__}: {e}). Offline, set the environment variable CIFAR10_DIR "
                "(or pass data_dir=...) to a folder laid out as train/<class>/*.jpg and "
                "test/<class>/*.jpg, e.g. CIFAR10_DIR=../shared/data/cifar10-jpeg") from e
        return (x_train, y_train.reshape(-1).astype(np.int64)), (x_test, y_test.reshape(-1).astype(np.int64))
    root = pathlib.Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder '{root}' does not exist (from data_dir or $CIFAR10_DIR).")
    cache_dir = pathlib.Path(cache_dir) if cache_dir else _default_cache_dir()
    cache = cache_dir / f"cifar10_{_folder_key(root)}.npz"
    if cache.exists():
        try:
            with np.load(cache) as z:
                out = (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])
                counts = z["n_files"]
            _check_cifar_cache(out, counts, root)
            return out
        except Exception as e:  # noqa: BLE001 - corrupt zip, bad CRC, truncated, wrong shape: rebuild it
            warnings.warn(f"CIFAR-10 cache {cache} is unusable ({type(e).__name__}: {e}); rebuilding it", stacklevel=2)
            cache.unlink(missing_ok=True)
    counts = np.array([_count_files(root, "train"), _count_files(root, "test")])  # before decoding
    (x_train, y_train), (x_test, y_test) = _load_split(root, "train"), _load_split(root, "test")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, n_files=counts)
    os.replace(tmp, cache)  # atomic: a killed load never leaves a half-written cache
    return (x_train, y_train), (x_test, y_test)

# -----------------------------------------------------------------------------
# Any image folder as a dataset (landscapes, your own photos)

GRAY_TOLERANCE = 2  # a photo whose R, G, B agree within this many levels everywhere is black-and-white
EVAL_SIZE = 150     # photo folders are evaluated (and colorizer_6 calibrated) at 150x150, the landscapes' size
LANDSCAPES_ENV = "LANDSCAPES_DIR"


def dataset_name(data="cifar10"):
    """Short name of a dataset: 'cifar10', or a folder's own name ('landscapes'); it names the
    sub-folder of saved_models/ that the models trained on it go to."""
    if data in (None, "cifar10"):
        return "cifar10"
    return resolve_folder(data).name


def resolve_folder(data):
    """`data` as an existing folder: a path, or 'landscapes' for $LANDSCAPES_DIR."""
    if data == "landscapes" and os.environ.get(LANDSCAPES_ENV):
        data = os.environ[LANDSCAPES_ENV]
    root = pathlib.Path(data)
    if not root.is_dir():
        hint = f" (set ${LANDSCAPES_ENV} to a folder of landscape photos)" if data == "landscapes" else ""
        raise FileNotFoundError(f"Dataset '{data}' is neither 'cifar10' nor an existing folder{hint}.")
    return root


def describe_source(data="cifar10"):
    """What a record says the data was, without local absolute paths."""
    if data in (None, "cifar10"):
        d = os.environ.get("CIFAR10_DIR")
        return f"CIFAR-10 (folder {pathlib.Path(d).name})" if d else "CIFAR-10 (Keras download)"
    return f"folder {resolve_folder(data).name}"


def _class_files(root):
    """[(class name, sorted files)] of a folder: sub-folders are classes; loose files one class.
    Hidden entries (.ipynb_checkpoints, .DS_Store) and class folders that are links are ignored."""
    entries = _visible(root.iterdir())
    # a class folder that is a symbolic link (say, to /usr) is not followed
    groups = [(d.name, _visible(p for p in d.rglob("*") if p.is_file() and not
                                any(part.startswith(".") for part in p.relative_to(d).parts)))
              for d in entries if d.is_dir() and not d.is_symlink()]
    top = [p for p in entries if p.is_file()]
    if top:
        groups.append((root.name, top))
    return [(name, files) for name, files in groups if files]


def folder_splits(root, test_fraction=0.1, seed=0):
    """{'train': [(file, label)], 'test': [...]}, class_names for a photo folder. A folder with
    `train/` and `test/` is used as laid out; otherwise a seeded, deterministic split sends about
    `test_fraction` of each class to test (the same files every time, whatever the machine)."""
    root = pathlib.Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, test = _class_files(root / "train"), _class_files(root / "test")
        names = sorted({n for n, _ in train} | {n for n, _ in test})
        pick = lambda groups: [(f, names.index(n)) for n, fs in groups for f in fs]  # noqa: E731
        return {"train": pick(train), "test": pick(test)}, names
    groups = _class_files(root)
    if not groups:
        raise ValueError(f"Image folder '{root}' contains no files.")
    out = {"train": [], "test": []}
    for label, (_, files) in enumerate(groups):
        # by a hash of the relative path: deterministic, and adding a photo never moves another
        for f in files:
            h = int(hashlib.sha1(f"{seed}:{f.relative_to(root).as_posix()}".encode()).hexdigest()[:8], 16)
            out["test" if h / 0xFFFFFFFF < test_fraction else "train"].append((f, label))
    return out, [n for n, _ in groups]


class FolderData:
    """Photos of one split of a folder, decoded once at a square size and cached as memory-mapped
    arrays: `images` uint8 (N, S, S, 3) (never all in memory), `labels` (N,), `gray` (N,) bool
    (already black-and-white photos), `class_names`."""

    def __init__(self, images, labels, gray, class_names):
        self.images, self.labels, self.gray, self.class_names = images, labels, gray, class_names

    def __len__(self):
        return len(self.labels)

    def colour_index(self):
        return np.flatnonzero(~self.gray)


def _cache_files(root, split, size, files, cache_dir):
    key = hashlib.sha1("\n".join([str(root.resolve()), split, str(size)] + [
        f"{f.relative_to(root).as_posix()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f, _ in files
    ]).encode()).hexdigest()[:16]
    stem = cache_dir / f"{root.name}_{split}_{size}_{key}"
    return stem.with_suffix(".images.npy"), stem.with_suffix(".meta.npz")


def load_folder_split(data, split="train", size=72, cache_dir=None, chunk=512):
    """One split of a photo folder as FolderData at `size` x `size` (centre crop, resized). The
    first call decodes the photos chunk by chunk into a memory-mapped cache; later calls open it
    in a fraction of a second. Unreadable files are skipped with a warning naming them."""
    root = resolve_folder(data)
    splits, names = folder_splits(root)
    files = splits[split]
    if not files:
        raise ValueError(f"Image folder '{root}' has no {split} photos.")
    cache_dir = pathlib.Path(cache_dir) if cache_dir else _default_cache_dir()
    img_path, meta_path = _cache_files(root, split, size, files, cache_dir)
    if img_path.exists() and meta_path.exists():
        try:
            return _open_folder_cache(img_path, meta_path, len(files), size)
        except Exception as e:  # noqa: BLE001 - truncated, corrupt or wrong-shaped: rebuild it
            warnings.warn(f"Photo cache {img_path} is unusable ({type(e).__name__}: {e}); rebuilding it", stacklevel=2)
            img_path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
    if not (img_path.exists() and meta_path.exists()):
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = img_path.with_suffix(f".tmp{os.getpid()}.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3))
        n, labels = 0, []
        for i in range(0, len(files), chunk):
            part = files[i:i + chunk]
            imgs, keep = _read_many([f for f, _ in part], (size, size))
            if imgs:
                out[n:n + len(imgs)] = np.stack(imgs)
            n += len(imgs)
            labels += [lab for (_, lab), k in zip(part, keep) if k]
        out.flush()
        del out
        if n == 0:
            tmp.unlink()
            raise ValueError(f"Image folder '{root}' has no readable {split} photos ({len(files)} files tried).")
        full = np.load(tmp, mmap_mode="r")
        gray = np.concatenate([_gray_mask(full[j:j + chunk]) for j in range(0, n, chunk)])
        np.savez(meta_path, labels=np.asarray(labels, np.int64), gray=gray, n=n, class_names=np.array(names))
        os.replace(tmp, img_path)
    return _open_folder_cache(img_path, meta_path, len(files), size)


def _open_folder_cache(img_path, meta_path, n_files, size):
    with np.load(meta_path) as meta:
        n, labels, gray, names = int(meta["n"]), meta["labels"], meta["gray"], [str(c) for c in meta["class_names"]]
    images = np.load(img_path, mmap_mode="r")
    if images.dtype != np.uint8 or images.shape != (n_files, size, size, 3) or not 0 < n <= n_files \
            or len(labels) != n or len(gray) != n:
        raise ValueError(f"images {images.shape} {images.dtype}, n={n}, {len(labels)} labels, {n_files} files")
    return FolderData(images[:n], labels, gray, names)


def _gray_mask(images):
    """Per image of a uint8 batch: True where R, G, B agree within GRAY_TOLERANCE everywhere."""
    x = np.asarray(images).astype(np.int16)
    return (x.max(-1) - x.min(-1)).reshape(len(x), -1).max(1) <= GRAY_TOLERANCE


def default_image_size(data="cifar10"):
    """Training size when none is given: CIFAR-10's own 32, else 64 (the landscape protocol's)."""
    return 32 if data in (None, "cifar10") else 64


def load_test(data="cifar10", data_dir=None, size=150):
    """The test split of a dataset as FolderData: CIFAR-10's 10,000 images (32x32), or a photo
    folder's test photos at `size` x `size` (centre crop); `gray` marks black-and-white images."""
    if data in (None, "cifar10"):
        _, (x, y) = load_cifar10(data_dir)
        return FolderData(x, y, _gray_mask(x), list(CIFAR10_CLASSES))
    return load_folder_split(data, "test", size)


def crop_size(image_size):
    """Square size at which a folder is cached for training at `image_size`: an eighth larger,
    so random crops move the frame (centre crops for validation and evaluation)."""
    return int(image_size) + int(image_size) // 8


def random_crops(images, size, rng, flip=True):
    """Random `size` x `size` crops (and horizontal flips) of uint8 images (N, S, S, 3)."""
    n, s = len(images), images.shape[1]
    out = np.empty((n, size, size, 3), np.uint8)
    ys, xs = rng.integers(0, s - size + 1, n), rng.integers(0, s - size + 1, n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    for i in range(n):
        crop = images[i, ys[i]:ys[i] + size, xs[i]:xs[i] + size]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out


def centre_crops(images, size):
    s = images.shape[1]
    o = (s - size) // 2
    return np.asarray(images[:, o:o + size, o:o + size])


def make_folder_train(fd, index, image_size, inputs, outputs, batch_size=128, seed=0, drop_remainder=False):
    """Streaming training pipeline over FolderData rows `index`: each epoch a seeded shuffle,
    batches read from the memory-mapped cache in sorted order, random crops and flips, encoded for
    the model's contract; a background thread and prefetch keep it ahead of training."""
    import tensorflow as tf
    index = np.asarray(index)
    state = {"epoch": 0}
    pair = codec(inputs, outputs).pair

    def batches():
        rng = np.random.default_rng([seed, state["epoch"]])
        state["epoch"] += 1
        order = rng.permutation(index)
        stop = len(order) - (len(order) % batch_size if drop_remainder else 0)
        for i in range(0, stop, batch_size):
            rows = np.sort(order[i:i + batch_size])
            yield pair(random_crops(fd.images[rows], image_size, rng))

    x_ch = {"rgb": 3, "gray": 1, "L": 1}[inputs]
    y_ch = 2 if inputs == "L" else 3
    sig = (tf.TensorSpec((None, image_size, image_size, x_ch), tf.float32),
           tf.TensorSpec((None, image_size, image_size, y_ch), tf.float32))
    ds = tf.data.Dataset.from_generator(batches, output_signature=sig)
    n_batches = len(index) // batch_size + (0 if drop_remainder or len(index) % batch_size == 0 else 1)
    # a known length: Keras shows progress and does not warn that the generator "ran out of data"
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(4)


# -----------------------------------------------------------------------------
# Colour conversions

def to_float(images):
    """uint8 [0,255] -> float32 [0,1]; float input is taken to be in [0,1] already."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def to_uint8(images):
    """float [0,1] -> uint8 [0,255], rounded and clipped."""
    return np.clip(np.asarray(images, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_grayscale(images):
    """RGB `(..., H, W, 3)` (uint8 or float in [0,1]) -> float32 `(..., H, W, 1)` in [0,1], BT.601 luma."""
    rgb = to_float(images)
    if rgb.shape[-1] != 3:
        raise ValueError(f"to_grayscale expects RGB images with 3 channels, got shape {rgb.shape}")
    return (rgb @ np.asarray(LUMA_WEIGHTS, np.float32))[..., None].astype(np.float32)


def rgb_to_lab(images):
    """RGB `(..., 3)` (uint8 or float in [0,1]) -> float32 CIE Lab (L in [0,100], a,b about ±110)."""
    from skimage.color import rgb2lab
    return rgb2lab(to_float(images)).astype(np.float32)


def lab_to_rgb(lab):
    """CIE Lab `(..., 3)` -> float32 RGB in [0,1]. Out-of-gamut colours are clipped (never NaN)."""
    from skimage.color import lab2rgb
    lab = np.nan_to_num(np.asarray(lab, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    lab[..., 1:] = np.clip(lab[..., 1:], -128, 127)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z before clipping it
        rgb = lab2rgb(lab)
    return np.clip(np.nan_to_num(rgb), 0, 1).astype(np.float32)


def scale_l(L):
    """CIE L* in [0,100] -> model input in [-1,1]."""
    return np.asarray(L, np.float32) / L_SCALE - 1.0


def unscale_l(x):
    return (np.asarray(x, np.float32) + 1.0) * L_SCALE


def scale_ab(ab):
    """CIE a*, b* -> model target, about [-1,1]."""
    return np.asarray(ab, np.float32) / AB_SCALE


def unscale_ab(x):
    return np.asarray(x, np.float32) * AB_SCALE


def model_inputs(images, inputs):
    """uint8 RGB (or gray `(...,H,W)` / `(...,H,W,1)`) images -> the model input `inputs` ('rgb',
    'gray' or 'L'; see the value ranges above)."""
    images = as_rgb(images)
    if inputs == "rgb":
        return to_float(images)
    if inputs == "gray":
        return to_grayscale(images)
    if inputs == "L":
        return scale_l(rgb_to_lab(images)[..., :1])
    raise ValueError(f"Unknown input kind '{inputs}'; choose one of: rgb, gray, L")


def as_rgb(images):
    """uint8 images `(N,H,W,3)`, gray ones `(N,H,W)` or `(N,H,W,1)` replicated to three channels."""
    images = np.asarray(images)
    if images.ndim == 3 or images.shape[-1] == 1:
        return np.repeat(images.reshape(images.shape[:3] + (1,)) if images.ndim == 3 else images, 3, axis=-1)
    return images

# -----------------------------------------------------------------------------
# I/O contracts: one codec per contract, the only place where images become model inputs and
# training targets, and model outputs become chroma or uint8 RGB.


class Codec:
    """The `rgb -> rgb` contract (autoencoders); the other codecs change what differs.

    encode(images) -> model input; target(images) -> training target; pair(images) -> both, from one
    colour conversion; ab(outputs) -> predicted CIE a*, b* in ab units; decode(outputs, encoded,
    saturation) -> uint8 RGB (Lab contracts keep the encoded input's L, so one RGB -> Lab conversion
    serves a whole predicted batch)."""
    inputs, outputs = "rgb", "rgb"

    def encode(self, images):
        return model_inputs(images, self.inputs)

    def target(self, images):
        return to_float(as_rgb(images))

    def pair(self, images):
        return self.encode(images), self.target(images)

    def ab(self, y):
        return rgb_to_lab(np.clip(y, 0, 1))[..., 1:]

    def decode(self, y, x, saturation=1.0):
        rgb = to_uint8(y)
        return rgb if saturation == 1 else scale_chroma(rgb, saturation)


class GrayCodec(Codec):
    """gray -> rgb (colorizer_1, colorizer_2)."""
    inputs = "gray"


class LabCodec(Codec):
    """L -> ab (colorizer_3, colorizer_5): the model predicts a*, b* for the input's L*."""
    inputs, outputs = "L", "ab"

    def target(self, images):
        return self.pair(images)[1]

    def pair(self, images):
        lab = rgb_to_lab(as_rgb(images))
        return scale_l(lab[..., :1]), scale_ab(lab[..., 1:])

    def ab(self, y):
        return unscale_ab(y)

    def decode(self, y, x, saturation=1.0):
        ab = scale_ab(self.ab(y) * saturation)  # ab units -> model scale -> ab units, as before the codecs
        return to_uint8(lab_to_rgb(np.concatenate([unscale_l(x), unscale_ab(ab)], axis=-1)))


class BinsCodec(LabCodec):
    """L -> ab_bins (colorizer_4): probabilities over ab bins, decoded by their annealed mean."""
    outputs = "ab_bins"

    def __init__(self, centers=None, temperature=0.38):
        self.centers, self.temperature = centers, temperature

    def ab(self, y):
        return per_pixel(lambda p: annealed_mean(p, self.bin_centers(), self.temperature), y)

    def bin_centers(self):
        if self.centers is None:
            raise ValueError(f"Decoding {self.outputs} needs the bin centres: build the codec from a trained "
                             f"model (models.codec(model))")
        return self.centers


class MixCodec(BinsCodec):
    """L -> ab_mix (colorizer_6): regression ab and bin probabilities, decoded by `decode_mix`."""
    outputs = "ab_mix"

    def __init__(self, centers=None, mix=1.0, temperature=0.38, gain=0.0):
        super().__init__(centers, temperature)
        self.mix, self.gain = mix, gain

    def ab(self, y):
        return per_pixel(lambda p: decode_mix(p, self.bin_centers(), self.mix, self.temperature, self.gain), y)


DECODE_PIXELS = 2 ** 15  # bin probabilities are decoded this many pixels at a time: their float64
                         # temporaries stay small, whatever the size the model ran at


def per_pixel(fn, y):
    """`fn` applied to the pixels of `y` (..., C) DECODE_PIXELS at a time -> (..., C')."""
    flat = np.asarray(y).reshape(-1, y.shape[-1])
    out = np.concatenate([fn(flat[i:i + DECODE_PIXELS]) for i in range(0, len(flat), DECODE_PIXELS)])
    return out.reshape(y.shape[:-1] + out.shape[-1:])


CODECS = {(c.inputs, c.outputs): c for c in (Codec, GrayCodec, LabCodec, BinsCodec, MixCodec)}


def codec(inputs, outputs, **params):
    """The codec of an I/O contract; `params` (bin centres, decoding settings) for decoding bins."""
    if (inputs, outputs) not in CODECS:
        raise ValueError(f"Unknown I/O contract ({inputs!r}, {outputs!r}); choose one of: {sorted(CODECS)}")
    return CODECS[inputs, outputs](**params)


def task_arrays(images, inputs, outputs):
    """uint8 RGB images -> `(x, y)` float32 arrays for a model with the given I/O contract."""
    return codec(inputs, outputs).pair(images)


def scale_chroma(rgb, saturation):
    """uint8 RGB with its CIE a*, b* multiplied by `saturation` (L* kept)."""
    lab = rgb_to_lab(rgb)
    lab[..., 1:] *= saturation
    return to_uint8(lab_to_rgb(lab))


def annealed_mean(probs, centers, T=0.38):
    """Zhang et al. 2016 eq. 5: ab = Σ_q f_T(z)_q c_q with f_T(z) = exp(log z / T) / Σ exp(log z / T)."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / T
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(-1, keepdims=True)
    return (p @ np.asarray(centers, np.float64)).astype(np.float32)


def mix_confidence(probs, k=5):
    """How sure the classifier is of a pixel's colour: the probability mass of its k most likely
    bins (neighbouring bins of one colour share the mass), from about k/Q (no idea) to 1."""
    return np.sort(np.asarray(probs, np.float32), axis=-1)[..., -k:].sum(-1, keepdims=True)


def decode_mix(y, centers, mix=1.0, temperature=0.38, gain=0.0, ab_cls=None):
    """colorizer_6 outputs (..., 2 + Q) -> ab (..., 2) in ab units. With c = mix_confidence:
    the regression ab moves towards the classifier's annealed-mean colour by w = clip(mix x c, 0, 1),
    and its chroma is scaled by 1 + gain x c: more vivid exactly where the classifier is sure.
    (`ab_cls`: the annealed mean, when already computed for this temperature.)"""
    y = np.asarray(y, np.float32)
    ab_reg, probs = y[..., :2] * AB_SCALE, y[..., 2:]
    if ab_cls is None:
        ab_cls = annealed_mean(probs, centers, temperature)
    c = mix_confidence(probs)
    w = np.clip(mix * c, 0.0, 1.0)
    return (ab_reg + w * (ab_cls - ab_reg)) * (1.0 + gain * c)

# -----------------------------------------------------------------------------
# Pipelines

def split_train_val(n, val_fraction=0.1, seed=0):
    """Seeded split of `range(n)` into disjoint sorted `(train_idx, val_idx)` index arrays."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _flip(x, y):
    import tensorflow as tf
    flip = tf.random.uniform([]) < 0.5
    return tf.cond(flip, lambda: (tf.reverse(x, [1]), tf.reverse(y, [1])), lambda: (x, y))


def make_dataset(images, inputs="gray", outputs="rgb", batch_size=32, shuffle=True, seed=0,
                 augment=False, drop_remainder=False):
    """uint8 RGB images -> batched, cached, prefetched `tf.data.Dataset` of `(input, target)`.

    `inputs`/`outputs` is a model's I/O contract: ("rgb","rgb") autoencoders, ("gray","rgb"),
    ("L","ab") or ("L","ab_bins") colorizers. `augment` adds random horizontal flips.
    """
    import tensorflow as tf
    x, y = codec(inputs, outputs).pair(images)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        ds = ds.map(_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class TrainVal(tuple):
    """(train dataset, validation dataset), with the split they came from as `.train_idx`, `.val_idx`."""
    train_idx = val_idx = None


def make_train_val(images, inputs="gray", outputs="rgb", batch_size=32, val_fraction=0.1, seed=0,
                   augment=True, drop_remainder=False):
    """Training and validation datasets, the validation split carved out of `images` (a training set);
    unpacks as `train, val`, and hands back its split as `.train_idx` and `.val_idx`."""
    train_idx, val_idx = split_train_val(len(images), val_fraction, seed)
    train = make_dataset(images[train_idx], inputs, outputs, batch_size, shuffle=True, seed=seed,
                         augment=augment, drop_remainder=drop_remainder)
    val = make_dataset(images[val_idx], inputs, outputs, batch_size, shuffle=False, drop_remainder=drop_remainder)
    out = TrainVal((train, val))
    out.train_idx, out.val_idx = train_idx, val_idx
    return out

# -----------------------------------------------------------------------------
# Full-resolution photos: the same CIE Lab (D65, sRGB) as skimage.color, in float32 with lookup
# tables for the sRGB curves (skimage, in float64 without tables, is many times slower on a large photo).

_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]], np.float32)  # skimage's sRGB matrix
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB).astype(np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)
_c = np.arange(256) / 255.0
_LINEAR = np.where(_c > 0.04045, ((_c + 0.055) / 1.055) ** 2.4, _c / 12.92).astype(np.float32)  # uint8 -> linear
_LUT_SIZE = 65536
_l = np.linspace(0, 1, _LUT_SIZE)
_ENCODE = np.clip(255 * np.where(_l > 0.0031308, 1.055 * _l ** (1 / 2.4) - 0.055, 12.92 * _l) + 0.5, 0, 255).astype(np.uint8)


def resize_batch(images, height, width):
    """uint8 RGB images (N, H, W, 3) resized to (N, height, width, 3) as colorize.py does: area
    averaging (BOX) when shrinking, bicubic when enlarging."""
    method = Image.Resampling.BOX if width < images.shape[2] else Image.Resampling.BICUBIC
    return np.stack([np.asarray(Image.fromarray(im).resize((width, height), method)) for im in images])


def recombine_full(images, ab_small, rows=256):
    """Full-resolution uint8 RGB photos (N, H, W, 3) + chroma a*, b* predicted at a small size
    (N, h, w, 2) -> uint8 RGB (N, H, W, 3): the chroma upsampled bilinearly (it is smooth) and
    recombined with each photo's own full-resolution L*, a stripe of `rows` rows at a time, so the
    working memory beyond the input and output photos does not grow with their size."""
    n, H, W = images.shape[:3]
    out = np.empty_like(images)
    for i in range(n):
        planes = [Image.fromarray(np.ascontiguousarray(ab_small[i, ..., k], np.float32)) for k in range(2)]
        h = planes[0].height
        for r in range(0, H, rows):
            r1 = min(H, r + rows)
            box = (0, r * h / H, planes[0].width, r1 * h / H)  # this stripe's rows in the small image
            ab = np.stack([np.asarray(p.resize((W, r1 - r), Image.Resampling.BILINEAR, box=box)) for p in planes], -1)
            out[i, r:r1] = photo_lab_to_rgb(photo_L(images[i, r:r1]), ab)
    return out


def photo_L(rgb):
    """CIE L* (float32, [0,100]) of a uint8 RGB photo `(H, W, 3)` of any size (only luminance is needed)."""
    lin = _LINEAR[np.asarray(rgb)]
    y = lin @ _XYZ_FROM_RGB[1]
    return np.where(y > 0.008856, 116 * np.cbrt(y) - 16, 903.3 * y).astype(np.float32)


def photo_lab_to_rgb(L, ab):
    """float32 L* `(H, W)` and a*, b* `(H, W, 2)` -> uint8 RGB `(H, W, 3)`, out-of-gamut clipped
    (matches skimage.color.lab2rgb within one level)."""
    fy = (np.asarray(L, np.float32) + 16) / 116
    ab = np.asarray(ab, np.float32)
    f = np.stack([fy + ab[..., 0] / 500, fy, np.maximum(fy - ab[..., 1] / 200, 0)], axis=-1)  # skimage clips fz
    xyz = np.where(f > 0.2068966, f ** 3, (f - 16 / 116) / 7.787) * _WHITE_D65
    lin = np.clip(xyz @ _RGB_FROM_XYZ.T, 0, 1)
    return _ENCODE[(lin * (_LUT_SIZE - 1) + 0.5).astype(np.int32)]
