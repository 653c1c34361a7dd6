"""Tests for data.py: conversions, image folders, CIFAR-10 loading and tf.data pipelines."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import colour
import contracts
import data
import photos

# ----------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("rgb,expected", [
    ((255, 0, 0), 0.299), ((0, 255, 0), 0.587), ((0, 0, 255), 0.114),
    ((255, 255, 255), 1.0), ((0, 0, 0), 0.0),
])
def test_to_grayscale_known_values(rgb, expected):
    img = np.full((2, 3, 3), rgb, np.uint8)
    g = colour.to_grayscale(img)
    assert g.shape == (2, 3, 1) and g.dtype == np.float32
    np.testing.assert_allclose(g, expected, atol=1e-6)


def test_to_grayscale_rejects_non_rgb():
    with pytest.raises(ValueError, match="3 channels"):
        colour.to_grayscale(np.zeros((4, 4, 2), np.uint8))


def test_lab_round_trip_within_one_level(rng):
    img = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    lab = colour.rgb_to_lab(img)
    assert lab.dtype == np.float32 and lab.shape == img.shape
    assert 0 <= lab[..., 0].min() and lab[..., 0].max() <= 100
    back = colour.to_uint8(colour.lab_to_rgb(lab))
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 1


def test_lab_scaling_round_trip_and_range(rng):
    lab = colour.rgb_to_lab(rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    L, ab = colour.scale_l(lab[..., :1]), colour.scale_ab(lab[..., 1:])
    assert -1 <= L.min() and L.max() <= 1 and np.abs(ab).max() <= 1.2
    np.testing.assert_allclose(colour.unscale_l(L), lab[..., :1], atol=1e-4)
    np.testing.assert_allclose(colour.unscale_ab(ab), lab[..., 1:], atol=1e-4)
    # white is L=100 -> +1, black L=0 -> -1
    np.testing.assert_allclose(colour.scale_l([0.0, 100.0]), [-1.0, 1.0])


def test_lab_to_rgb_out_of_gamut_is_finite_and_clipped():
    lab = np.array([[[50, 500, -500], [150, 0, 0], [-20, 90, 90], [np.nan, 0, 0], [100, -300, 300]]], np.float32)
    rgb = colour.lab_to_rgb(lab)
    assert np.isfinite(rgb).all()
    assert rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0, 1], [1, 1, 1], atol=1e-3)  # L clipped to 100 -> white


def test_model_inputs_kinds_and_gray_replication(rng):
    img = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert contracts.model_inputs(img, "rgb").shape == (2, 8, 8, 3)
    assert contracts.model_inputs(img, "gray").shape == (2, 8, 8, 1)
    L = contracts.model_inputs(img, "L")
    assert L.shape == (2, 8, 8, 1) and -1 <= L.min() <= L.max() <= 1
    gray = img[..., 0]
    np.testing.assert_allclose(contracts.model_inputs(gray, "gray")[..., 0], gray / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="'hsv'.*rgb, gray, L"):
        contracts.model_inputs(img, "hsv")

# ----------------------------------------------------------------------------- image folders


def _write_folder(root):
    """A folder with every kind of file a user might drop in; returns the expected good count."""
    (root / "coast").mkdir(parents=True)
    (root / "forest").mkdir()
    r = np.random.default_rng(1)
    Image.fromarray(r.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "coast" / "a.png")
    Image.fromarray(r.integers(0, 256, (33, 17, 3), dtype=np.uint8)).save(root / "coast" / "odd.jpg")
    Image.fromarray(r.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(root / "coast" / "rgba.png")
    Image.fromarray(r.integers(0, 256, (24, 24, 3), dtype=np.uint8)).convert("P").save(root / "forest" / "pal.gif")
    Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(root / "forest" / "gray16.png")
    Image.new("CMYK", (30, 30), (0, 255, 255, 0)).save(root / "forest" / "cmyk.jpg")
    # EXIF orientation 6: stored 40 wide x 20 high, left half red; displayed rotated 90° clockwise,
    # so upright it is 20 wide x 40 high with red on top.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "forest" / "rotated.jpg", exif=exif.tobytes(), quality=95)
    (root / "forest" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "forest" / "notes.txt").write_text("not an image")
    return 7


def test_load_image_folder_every_format(tmp_path):
    n_good = _write_folder(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y, classes = photos.load_image_folder(tmp_path, image_size=(32, 32))
    messages = [str(w.message) for w in caught]
    assert any("broken.jpg" in m for m in messages), messages
    assert any("notes.txt" in m for m in messages), messages
    assert x.shape == (n_good, 32, 32, 3) and x.dtype == np.uint8
    assert classes == ["coast", "forest"]
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 1]  # coast: a, odd, rgba; forest: cmyk, gray16, pal, rotated
    gray16 = x[4]
    assert np.abs(gray16.astype(int) - 128).max() <= 1  # 32768/65535 of full scale, not clipped to 255
    cmyk = x[3].reshape(-1, 3).mean(0)
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60  # C=0, M=Y=255 is red


def test_load_image_folder_honours_exif_orientation(tmp_path):
    _write_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, _, _ = photos.load_image_folder(tmp_path / "forest", image_size=(40, 20))
    rotated = x[-1].astype(int)  # files sorted: ..., rotated.jpg last among readable ones
    top, bottom = rotated[:15].reshape(-1, 3).mean(0), rotated[25:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_load_image_folder_flat_folder_is_one_class(tmp_path):
    for i in range(3):
        Image.new("RGB", (10, 12), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    x, y, classes = photos.load_image_folder(tmp_path, image_size=(8, 8))
    assert x.shape == (3, 8, 8, 3) and y.tolist() == [0, 0, 0] and classes == [tmp_path.name]


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        photos.load_image_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files"):
        photos.load_image_folder(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no readable images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        photos.load_image_folder(tmp_path / "junk")

# ----------------------------------------------------------------------------- CIFAR-10


def _fake_cifar(root, n_train=3, n_test=2):
    r = np.random.default_rng(2)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in data.CIFAR10_CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(r.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / c / f"{i:04d}.png")


def test_load_cifar10_from_folder_and_cache(tmp_path):
    _fake_cifar(tmp_path / "c10")
    cache = tmp_path / "cache"
    (x, y), (xt, yt) = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    assert x.shape == (30, 32, 32, 3) and xt.shape == (20, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [3] * 10 and np.bincount(yt).tolist() == [2] * 10
    assert len(list(cache.glob("cifar10_*.npz"))) == 1
    (x2, y2), _ = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c10/train/bird/0001.png")), x[2 * 3 + 1])
    # a new file changes the key, so a stale cache is never served
    Image.new("RGB", (32, 32)).save(tmp_path / "c10/train/cat/0099.png")
    (x3, _), _ = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    assert len(x3) == 31


def test_load_cifar10_cache_hit_walks_no_files_and_count_mismatch_rebuilds(tmp_path, monkeypatch):
    """A cache hit compares the file counts stored in the cache with the folder's directory listings
    (no rglob, no stat per file); a file added with the folder's mtime restored (so the key is the
    same) makes the counts disagree, and the cache is rebuilt with a warning."""
    import pathlib
    _fake_cifar(tmp_path / "c10")
    cache = tmp_path / "cache"
    data.load_cifar10(tmp_path / "c10", cache_dir=cache)

    def no_walk(*args, **kwargs):
        raise AssertionError("rglob on a cache hit")
    with monkeypatch.context() as m:
        m.setattr(pathlib.Path, "rglob", no_walk)
        (x, _), _ = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    assert len(x) == 30
    cat = tmp_path / "c10/train/cat"
    st = cat.stat()
    Image.new("RGB", (32, 32)).save(cat / "0099.png")
    os.utime(cat, ns=(st.st_atime_ns, st.st_mtime_ns))  # same key: only the stored counts can tell
    with pytest.warns(UserWarning, match="written from 30 files, the folder now has 31"):
        (x, _), _ = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    assert len(x) == 31
    (cat / "0099.png").unlink()
    os.utime(cat, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.warns(UserWarning, match="written from 31 files, the folder now has 30"):
        (x, _), _ = data.load_cifar10(tmp_path / "c10", cache_dir=cache)
    assert len(x) == 30


def test_load_cifar10_env_var(tmp_path, monkeypatch):
    _fake_cifar(tmp_path / "c10", 1, 1)
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "c10"))
    (x, _), (xt, _) = data.load_cifar10(cache_dir=tmp_path / "cache")
    assert len(x) == 10 and len(xt) == 10


def test_load_cifar10_offline_error(monkeypatch):
    import keras
    monkeypatch.delenv("CIFAR10_DIR", raising=False)

    def no_network():
        raise OSError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", no_network)
    with pytest.raises(RuntimeError, match="CIFAR10_DIR"):
        data.load_cifar10()


def test_load_cifar10_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        data.load_cifar10(tmp_path / "nope")


@pytest.mark.skipif(not os.environ.get("CIFAR10_DIR"), reason="CIFAR10_DIR is not set")
def test_load_cifar10_real_folder():
    (x, y), (xt, yt) = data.load_cifar10()
    assert x.shape == (50000, 32, 32, 3) and xt.shape == (10000, 32, 32, 3)
    assert x.dtype == np.uint8 and y.shape == (50000,) and yt.shape == (10000,)
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert 110 < x.mean() < 130  # real photos, not blank decodes

# ----------------------------------------------------------------------------- pipelines


@pytest.mark.parametrize("inputs,outputs,in_ch,out_ch,in_range,out_range", [
    ("rgb", "rgb", 3, 3, (0, 1), (0, 1)),
    ("gray", "rgb", 1, 3, (0, 1), (0, 1)),
    ("L", "ab", 1, 2, (-1, 1), (-1.2, 1.2)),
    ("L", "ab_bins", 1, 2, (-1, 1), (-1.2, 1.2)),
])
def test_make_dataset_batches(images, inputs, outputs, in_ch, out_ch, in_range, out_range):
    ds = data.make_dataset(images, contracts.get(inputs, outputs), batch_size=16, seed=0)
    x, y = next(iter(ds))
    assert x.shape == (16, 32, 32, in_ch) and y.shape == (16, 32, 32, out_ch)
    assert x.dtype.name == "float32" and y.dtype.name == "float32"
    assert in_range[0] <= float(x.numpy().min()) and float(x.numpy().max()) <= in_range[1]
    assert out_range[0] <= float(y.numpy().min()) and float(y.numpy().max()) <= out_range[1]
    assert sum(int(b[0].shape[0]) for b in ds) == len(images)


def test_make_dataset_unknown_task(images):
    with pytest.raises(ValueError, match="'gray', 'ab'"):
        data.make_dataset(images, contracts.get("gray", "ab"))


def test_validation_split_disjoint_and_seeded():
    tr, va = data.split_train_val(1000, 0.1, seed=3)
    assert len(va) == 100 and len(tr) == 900
    assert not set(tr) & set(va) and set(tr) | set(va) == set(range(1000))
    tr2, va2 = data.split_train_val(1000, 0.1, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, data.split_train_val(1000, 0.1, seed=4)[1])
    with pytest.raises(ValueError, match="1.5"):
        data.split_train_val(10, 1.5)


def test_make_train_val_sizes(images):
    train, val = data.make_train_val(images, contracts.get("gray", "rgb"), batch_size=8, val_fraction=0.25)
    assert sum(int(b[0].shape[0]) for b in train) == 48
    assert sum(int(b[0].shape[0]) for b in val) == 16


def test_show_gray_vs_color(images):
    import plots
    fig = plots.show_gray_vs_color(images, n=5)
    assert len(fig.axes) == 10
    gray_shown = fig.axes[5].images[0].get_array()
    np.testing.assert_allclose(gray_shown, colour.to_grayscale(images[:1])[0, ..., 0], atol=1e-6)


def test_lookup_table_lab_matches_skimage():
    """The full-resolution path (photo_L, photo_lab_to_rgb: float32 and lookup tables) against
    skimage.color, which the models were trained with: L* within 0.001, RGB within one level."""
    from skimage.color import rgb2lab
    r = np.random.default_rng(0)
    rgb = np.concatenate([r.integers(0, 256, (50000, 1, 3), dtype=np.uint8),
                          np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=-1)])  # + every gray
    np.testing.assert_allclose(colour.photo_L(rgb), rgb2lab(rgb / 255.0)[..., 0], atol=1e-3)
    lab = np.stack([r.uniform(0, 100, 50000), r.uniform(-110, 110, 50000), r.uniform(-110, 110, 50000)], -1)
    lab = lab[:, None].astype(np.float32)  # in and out of the sRGB gamut
    ours = colour.photo_lab_to_rgb(lab[..., 0], lab[..., 1:]).astype(int)
    ref = colour.to_uint8(colour.lab_to_rgb(lab)).astype(int)
    assert np.abs(ours - ref).max() <= 1 and (ours != ref).mean() < 0.01
    exact = rgb2lab(rgb / 255.0).astype(np.float32)  # a photo's own Lab comes back unchanged
    np.testing.assert_array_equal(colour.photo_lab_to_rgb(exact[..., 0], exact[..., 1:]), rgb)


@pytest.mark.parametrize("shape,tile", [((300, 411), 7 * 411), ((3, 4000), 500), ((4000, 2), 10)])
def test_recombine_full_in_tiles_matches_one_pass(shape, tile):
    """Upsampling the chroma a tile at a time (stripes of rows, cut into columns for long rows: bounded
    memory for any shape) gives what one pass gives."""
    r = np.random.default_rng(1)
    photos = r.integers(0, 256, (2, *shape, 3), dtype=np.uint8)
    ab = r.uniform(-60, 60, (2, max(1, shape[0] // 8), max(1, shape[1] // 8), 2)).astype(np.float32)
    one = colour.recombine_full(photos, ab, tile=10 ** 9).astype(int)
    tiled = colour.recombine_full(photos, ab, tile=tile).astype(int)
    assert one.shape == tiled.shape == (2, *shape, 3)
    assert np.abs(one - tiled).max() <= 1 and (one != tiled).mean() < 1e-3


def test_make_train_val_hands_back_its_split(images):
    sets = data.make_train_val(images, contracts.get("L", "ab"), batch_size=8, val_fraction=0.25, seed=3)
    train_idx, val_idx = data.split_train_val(len(images), 0.25, 3)
    np.testing.assert_array_equal(sets.train_idx, train_idx)
    np.testing.assert_array_equal(sets.val_idx, val_idx)
    train, val = sets
    assert sum(int(x.shape[0]) for x, _ in val) == len(val_idx)


def test_a_missing_landscapes_folder_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv("LANDSCAPES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no folder named landscapes here either
    with pytest.raises(FileNotFoundError, match=r"read from \$LANDSCAPES_DIR, .*: \$LANDSCAPES_DIR is not set"):
        data.resolve_folder("landscapes")
    monkeypatch.setenv("LANDSCAPES_DIR", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match=rf"\$LANDSCAPES_DIR={tmp_path / 'gone'} is not a folder"):
        data.resolve_folder("landscapes")
    with pytest.raises(FileNotFoundError, match=r"Dataset 'nowhere' is neither one of cifar10, landscapes"):
        data.resolve_folder("nowhere")
    monkeypatch.setenv("LANDSCAPES_DIR", str(tmp_path))
    assert data.resolve_folder("landscapes") == tmp_path
