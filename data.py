"""Datasets: CIFAR-10 and photo folders, their splits and caches, and the `tf.data` pipelines.

    dataset = data.get("landscapes")            # a Dataset: Cifar10() or PhotoFolder(path)
    test = dataset.load_test()                  # FolderData: uint8 images, labels, gray mask

Images are uint8 RGB `(N, H, W, 3)`; a model's contract (contracts.py) encodes them.
"""

import dataclasses
import hashlib
import os
import pathlib
import shutil
import warnings

import numpy as np

import machine
import photos
from pipelines import (TrainVal, centre_crops, crop_size, make_dataset, make_folder_train, make_train_val,  # noqa: F401
                       random_crops, sample_rows, shard_rows, split_train_val)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


# -----------------------------------------------------------------------------
# CIFAR-10

def _default_cache_dir():
    return pathlib.Path(os.environ.get("COLORIZE_CACHE", pathlib.Path.home() / ".cache" / "grayscale-colorizers"))


def _folder_key(root):
    """Cache key: the folder's absolute path and the modification times of its class folders
    (adding, removing or renaming a file changes its folder's mtime)."""
    parts = [str(root.resolve())]
    for split in ("train", "test"):
        for d in photos.visible((root / split).iterdir()):
            parts.append(f"{split}/{d.name}:{d.stat().st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def _load_split(root, split):
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder '{root}' has no '{split}/' sub-folder; "
                                f"expected {split}/<class>/*.jpg")
    x, y, classes = photos.load_image_folder(split_dir, image_size=(32, 32))
    if list(classes) != list(CIFAR10_CLASSES):
        raise ValueError(f"CIFAR-10 folder '{split_dir}' has classes {classes}; expected {list(CIFAR10_CLASSES)}")
    return x, y


def _count_files(root, split):
    """Visible files in the class folders of `root/split`, counted from directory listings alone
    (no stat per file: 60,000 stat calls cost a second on every load)."""
    return sum(1 for d in photos.visible((root / split).iterdir()) if d.is_dir()
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


def cifar10_folder(data_dir=None):
    """The CIFAR-10 folder to read (`data_dir`, else $CIFAR10_DIR), or None for the Keras download; a
    FileNotFoundError naming a folder that is missing or not laid out as train/ and test/."""
    data_dir = data_dir or os.environ.get("CIFAR10_DIR")
    if not data_dir:
        return None
    root = pathlib.Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder '{root}' does not exist (from data_dir or $CIFAR10_DIR).")
    if not all((root / s).is_dir() for s in ("train", "test")):
        raise FileNotFoundError(f"CIFAR-10 folder '{root}' (from data_dir or $CIFAR10_DIR) has no train/ and "
                                f"test/ folders of <class>/ photos")
    return root


def load_cifar10(data_dir=None, cache_dir=None):
    """CIFAR-10 as `(x_train, y_train), (x_test, y_test)`: uint8 (N,32,32,3), int64 labels (N,).

    Source: `data_dir`, else `$CIFAR10_DIR`, else `keras.datasets.cifar10.load_data()` (downloads
    once). A folder is laid out as `train/<class>/*`, `test/<class>/*`; its decoded arrays are
    cached in `cache_dir` (default `$COLORIZE_CACHE` or ~/.cache/grayscale-colorizers) under a key
    made of the folder's path and modification times, so later loads take a fraction of a second.
    """
    root = cifar10_folder(data_dir)
    if root is None:
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


def resolve_folder(data):
    """`data` as an existing folder: a path, or 'landscapes' for $LANDSCAPES_DIR."""
    folder = os.environ.get(LANDSCAPES_ENV) if data == "landscapes" else None
    root = pathlib.Path(folder or data)
    if not root.is_dir():
        if data == "landscapes":
            why = f"${LANDSCAPES_ENV}={folder} is not a folder" if folder else f"${LANDSCAPES_ENV} is not set"
            raise FileNotFoundError(f"Dataset 'landscapes' is read from ${LANDSCAPES_ENV}, a folder of landscape "
                                    f"photos: {why}.")
        raise FileNotFoundError(f"Dataset '{data}' is neither one of {', '.join(DATASETS)}, landscapes "
                                f"(${LANDSCAPES_ENV}) nor an existing folder.")
    return root


def folder_splits(root, test_fraction=0.1, seed=0):
    """{'train': [(file, label)], 'test': [...]}, class_names for a photo folder. A folder with
    `train/` and `test/` is used as laid out; otherwise a seeded, deterministic split sends about
    `test_fraction` of each class to test (the same files every time, whatever the machine)."""
    root = pathlib.Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, test = photos.class_files(root / "train"), photos.class_files(root / "test")
        names = sorted({n for n, _ in train} | {n for n, _ in test})
        pick = lambda groups: [(f, names.index(n)) for n, fs in groups for f in fs]  # noqa: E731
        return {"train": pick(train), "test": pick(test)}, names
    groups = photos.class_files(root)
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
        _make_room(cache_dir, len(files) * size * size * 3, f"{len(files)} photos at {size} px")
        tmp = img_path.with_suffix(f"{machine.temp_tag()}.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3))
        n, labels = 0, []
        for i in range(0, len(files), chunk):
            part = files[i:i + chunk]
            imgs, keep = photos.read_many([f for f, _ in part], (size, size))
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
        gray = np.concatenate([_gray_mask(full[j:min(n, j + chunk)]) for j in range(0, n, chunk)])  # readable rows
        meta_tmp = meta_path.with_suffix(f"{machine.temp_tag()}.npz")
        np.savez(meta_tmp, labels=np.asarray(labels, np.int64), gray=gray, n=n, class_names=np.array(names))
        os.replace(meta_tmp, meta_path)  # atomic too: two workers of one host may build one cache at once
        os.replace(tmp, img_path)
    return _open_folder_cache(img_path, meta_path, len(files), size)


def _make_room(cache_dir, nbytes, what):
    """Create the cache folder, remove temporaries that killed cache builds left there, and refuse
    (before writing anything) when the disk has not room for `nbytes` more, saying how much is needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for p in machine.remove_stale_temporaries(cache_dir, "*.tmp*"):
        print(f"note: removed {p.name}, left in the photo cache by a run that no longer exists")
    free = shutil.disk_usage(cache_dir).free
    if nbytes + (256 << 20) > free:  # and a margin for the models and logs
        raise OSError(f"The photo cache for {what} needs {nbytes / 2**30:.2f} GB in {cache_dir}, but only "
                      f"{free / 2**30:.2f} GB are free there: free some space, choose a smaller image size, "
                      f"or set COLORIZE_CACHE to a folder on a larger disk")


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


# -----------------------------------------------------------------------------
# Datasets: one class per kind of source, so that nothing else branches on a dataset's name


@dataclasses.dataclass
class TrainingSets:
    """What a training run takes from a dataset: the training and validation pipelines, the training
    images the data-derived builder arguments come from (`fit_images`), a function giving the
    validation images decoding is calibrated on (`calib_images`) and what the record says (`info`)."""
    train: object
    val: object
    fit_images: np.ndarray
    calib_images: object
    info: dict


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 512  # training sizes a photo folder accepts (its cache grows with size²)


class Dataset:
    """A dataset models are trained and evaluated on. `name` names it in records and configs;
    its models are saved in the sub-folder `subfolder` of a models folder ("" for the top, None for
    the one named after the dataset)."""
    name = "dataset"
    subfolder = None
    default_image_size = 64  # the training size when none is given

    def check_image_size(self, image_size):
        """Refuse a training size the dataset cannot give, naming the range."""
        if not isinstance(image_size, (int, np.integer)) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, "
                             f"got {image_size!r}")

    def check_source(self):
        """Refuse, before anything is written, a source that cannot give a single image (a missing
        or empty folder), naming it; loading the images is left to training."""

    def describe(self):
        """What a record says the data was, without local absolute paths."""
        return self.name

    def load_test(self, size=None):
        """The test split as FolderData (uint8 images, labels, black-and-white mask, class names)."""
        raise NotImplementedError

    def training_sets(self, contract, image_size, subset=None, seed=0, val_fraction=0.1, batch_size=32,
                      drop_remainder=False, shard=None):
        """TrainingSets for a model's `contract` at `image_size` (worker `shard` = (i, n)'s part of the
        training and validation pipelines when given; `batch_size` is then that worker's share)."""
        raise NotImplementedError


class InMemory(Dataset):
    """A dataset small enough to hold in memory: `train_images()` gives its training images, and the
    validation split is carved out of them (CIFAR-10, test datasets)."""

    def train_images(self, subset=None, seed=0):
        raise NotImplementedError

    def training_sets(self, contract, image_size, subset=None, seed=0, val_fraction=0.1, batch_size=32,
                      drop_remainder=False, shard=None):
        x = self.train_images(subset, seed)
        sets = make_train_val(x, contract, batch_size, val_fraction, seed, drop_remainder=drop_remainder, shard=shard)
        return TrainingSets(sets[0], sets[1], x[sets.train_idx], lambda: x[sets.val_idx],
                            dict(data_source=self.describe(), train_images=len(sets.train_idx),
                                 val_images=len(sets.val_idx), gray_skipped=0))


class Cifar10(InMemory):
    """CIFAR-10 (load_cifar10: `data_dir`, $CIFAR10_DIR or the Keras download): 32x32 images; its
    models are saved at the top of a models folder."""
    name, subfolder, default_image_size = "cifar10", "", 32

    def __init__(self, data_dir=None):
        self.data_dir = data_dir

    def check_source(self):
        cifar10_folder(self.data_dir)

    def check_image_size(self, image_size):
        if image_size != 32:
            raise ValueError(f"CIFAR-10 images are 32x32; image_size must be 32 for data='cifar10', got {image_size}")

    def describe(self):
        d = os.environ.get("CIFAR10_DIR")
        return f"CIFAR-10 (folder {pathlib.Path(d).name})" if d else "CIFAR-10 (Keras download)"

    def train_images(self, subset=None, seed=0):
        (x, _), _ = load_cifar10(self.data_dir)
        return x if subset is None else x[sample_rows(len(x), subset, seed)]

    def load_test(self, size=None):
        _, (x, y) = load_cifar10(self.data_dir)
        return FolderData(x, y, _gray_mask(x), list(CIFAR10_CLASSES))


class PhotoFolder(Dataset):
    """A folder of photos (a path, or 'landscapes' for $LANDSCAPES_DIR), named after the folder. It
    streams from its memory-mapped cache: random crops and flips for training, centre crops for
    validation, black-and-white photos left out; evaluated at EVAL_SIZE."""

    def __init__(self, path):
        self.root = resolve_folder(path)
        self.name = self.root.name

    def check_source(self):
        if not folder_splits(self.root)[0]["train"]:
            raise ValueError(f"Image folder '{self.root}' has no files in its training split: "
                             f"put photos in it, or in <class>/ sub-folders")

    def describe(self):
        return f"folder {self.name}"

    def load_test(self, size=EVAL_SIZE):
        return load_folder_split(self.root, "test", size)

    def training_sets(self, contract, image_size, subset=None, seed=0, val_fraction=0.1, batch_size=32,
                      drop_remainder=False, shard=None):
        fd = load_folder_split(self.root, "train", crop_size(image_size))
        colour = fd.colour_index()
        print(f"{len(fd) - len(colour)} black-and-white photos of {len(fd)} left out of training")
        need = int(np.ceil(1 / val_fraction)) + 1  # one validation photo and one to train on, at least
        if len(colour) < need:
            raise ValueError(f"Image folder '{self.root}' has {len(colour)} colour photos in its training split "
                             f"({len(fd)} readable, {len(fd) - len(colour)} black-and-white); at least {need} are "
                             f"needed for a training and a validation part (val_fraction {val_fraction:g}): "
                             f"colorizers learn colour from colour photos")
        if subset is not None:
            colour = colour[sample_rows(len(colour), subset, seed)]
        t, v = split_train_val(len(colour), val_fraction, seed)
        train_rows, val_rows = colour[t], colour[v]
        val_images = centre_crops(fd.images[val_rows], image_size)
        fit_rows = train_rows[sample_rows(len(train_rows), min(2000, len(train_rows)), seed)]
        return TrainingSets(
            make_folder_train(fd, train_rows, image_size, contract, batch_size, seed, drop_remainder, shard),
            make_dataset(val_images, contract, batch_size, shuffle=False, drop_remainder=drop_remainder, shard=shard),
            centre_crops(fd.images[fit_rows], image_size),
            # decoding settings are chosen on the validation photos at the size they are judged at
            lambda: np.asarray(load_folder_split(self.root, "train", EVAL_SIZE).images[val_rows]),
            dict(data_source=self.describe(), train_images=len(train_rows), val_images=len(val_rows),
                 gray_skipped=len(fd) - len(colour) if subset is None else None))


DATASETS = {"cifar10": Cifar10}  # named datasets (class(data_dir=...)); any other name is a photo folder
DEFAULT = "cifar10"


def get(data=DEFAULT, data_dir=None):
    """The Dataset `data` names: a Dataset as it is, a name of DATASETS (built with `data_dir`), or
    a folder of photos (a path, or 'landscapes' for $LANDSCAPES_DIR)."""
    if isinstance(data, Dataset):
        return data
    if data is None or data in DATASETS:
        return DATASETS[data or DEFAULT](data_dir=data_dir)
    return PhotoFolder(data)

