"""Hostile files, full disks and concurrent runs (the reliability issue), each from its reproduction."""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

import colorize
import colorizer
import data
import models
import photos
import store
import training
from colorizer import Colorizer


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    store.save_model(models.get_model("colorizer_3"), d / "colorizer_3.keras")
    return d


def _png(path, h=20, w=30, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _cli(args, models_dir):
    return colorize.main([str(a) for a in args] + ["-m", "colorizer_3", "--models-dir", str(models_dir)])

# ----------------------------------------------------------------------------- memory


def test_model_pixels_bounded_for_any_shape(models_dir):
    model = store.load("colorizer_3", models_dir)
    for h, w in [(10000, 1), (1, 10000), (9500, 9500), (3, 50000)]:
        for ws in (None, colorizer.MAX_WORKING_SIZE):
            mh, mw = Colorizer(model).working_shape(h, w, ws)
            assert mh * mw <= colorizer.MAX_MODEL_PIXELS and mh % 8 == 0 and mw % 8 == 0, (h, w, ws)


def test_strip_colorizes_and_working_size_is_bounded(tmp_path, models_dir, capsys):
    Image.fromarray(np.full((1, 10000, 3), 128, np.uint8)).save(tmp_path / "strip.png")
    assert _cli([tmp_path / "strip.png", "-o", tmp_path / "out"], models_dir) == 0
    with Image.open(tmp_path / "out" / "strip_color.png") as img:
        assert img.size == (10000, 1)
    with pytest.raises(SystemExit):
        _cli([tmp_path / "strip.png", "-o", tmp_path / "o2", "--working-size", "100000"], models_dir)
    assert "100000" in capsys.readouterr().err

# ----------------------------------------------------------------------------- writing outputs


def test_symlinks_in_the_output_folder_are_not_written_through(tmp_path, models_dir):
    src = _png(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "elsewhere.png"
    (out / "photo_color.png").symlink_to(outside)  # dangling
    assert _cli([src, "-o", out], models_dir) == 1
    assert not outside.exists()
    outside.write_bytes(b"precious")
    assert _cli([src, "-o", out, "--overwrite"], models_dir) == 1
    assert outside.read_bytes() == b"precious"


def test_a_failed_write_keeps_the_previous_output_and_the_batch_goes_on(tmp_path, models_dir, monkeypatch):
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", seed=1)
    out = tmp_path / "out"
    assert _cli([a, "-o", out], models_dir) == 0
    good = (out / "a_color.png").read_bytes()
    real_save = Image.Image.save

    def full_disk(self, fp, *args, **kwargs):
        if "a_color" in str(fp):
            with open(fp, "wb") as f:
                f.write(b"\x89PNG trunc")
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert _cli([a, b, "-o", out, "--overwrite"], models_dir) == 1
    assert (out / "a_color.png").read_bytes() == good  # the good one is still there
    assert (out / "b_color.png").exists()  # the rest of the batch was done
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_output_folder_that_is_a_file_is_reported_per_photo(tmp_path, models_dir, capsys):
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", seed=1)
    (tmp_path / "out").write_text("not a folder")
    assert _cli([a, b, "-o", tmp_path / "out"], models_dir) == 1
    err = capsys.readouterr().err
    assert "a.png" in err and "b.png" in err and "Traceback" not in err


def test_clashing_stems_are_not_silently_replaced(tmp_path, models_dir, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _png(tmp_path / "a" / "photo.jpg"), _png(tmp_path / "b" / "photo.jpg", seed=1)
    assert _cli([first, second, "-o", tmp_path / "out", "--overwrite"], models_dir) == 1
    assert "already written by" in capsys.readouterr().err

# ----------------------------------------------------------------------------- reading inputs


def test_any_pillow_exception_is_an_unreadable_file(tmp_path, models_dir, monkeypatch, capsys):
    good, bad = _png(tmp_path / "good.png"), _png(tmp_path / "bad.png", seed=1)
    real = colorize.read_photo

    def picky(img):  # what Pillow does on a TIFF whose StripOffsets tag is FLOAT
        if img.filename.endswith("bad.png"):
            raise TypeError("'float' object cannot be interpreted as an integer")
        return real(img)

    monkeypatch.setattr(colorize, "read_photo", picky)
    assert _cli([bad, good, "-o", tmp_path / "out"], models_dir) == 1
    assert (tmp_path / "out" / "good_color.png").exists()
    assert "bad.png: not a readable image (TypeError" in capsys.readouterr().err


MODEL = models.get_model("colorizer_3")


def test_fuzzed_images_are_read_or_reported_never_raise(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    blobs = []
    for fmt in ("PNG", "JPEG", "TIFF", "GIF"):
        buf = io.BytesIO()
        Image.fromarray(base).save(buf, format=fmt)
        blobs.append((fmt, buf.getvalue()))
    files = []
    for i in range(240):
        fmt, blob = blobs[i % len(blobs)]
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 6))):  # flip, drop or truncate a few bytes
            j = int(rng.integers(0, len(b)))
            op = rng.integers(0, 3)
            if op == 0:
                b[j] = int(rng.integers(0, 256))
            elif op == 1:
                del b[j]
            else:
                del b[j:]
                break
        f = tmp_path / f"{i:03d}.{fmt.lower()}"
        f.write_bytes(bytes(b))
        files.append(f)
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, keep = photos.read_many(files, (8, 8))  # the read path of load_image_folder and the folder cache
    assert len(images) == int(keep.sum()) and all(im.shape == (8, 8, 3) for im in images)
    skipped = [w for w in caught if str(w.message).startswith("Skipping")]
    assert len(skipped) == len(files) - int(keep.sum()) > 0  # each skipped file named in a warning
    errors = []
    for f in files[:60]:  # and colorize.py's read path: colorized, or reported as unreadable
        class Args:
            working_size, saturation, compare, overwrite = None, 1.0, False, True
        errors.append(colorize._colorize_one(f, f.relative_to(tmp_path), Colorizer(MODEL), Args, tmp_path / "out",
                                             set(), {}))
        assert errors[-1] is None or "not a readable image" in errors[-1], errors[-1]
    assert 0 < errors.count(None) < len(errors)  # some colorized, some reported


def test_float_image_with_a_nan_row_keeps_its_other_rows():
    a = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (10, 1))
    a[3] = np.nan
    rgb = np.asarray(photos.pil_to_rgb(Image.fromarray(a, "F")))
    assert rgb[0].max() > 200 and (rgb[3] == 0).all()


def test_image_folder_skips_checkpoints_and_linked_class_folders(tmp_path):
    (tmp_path / "forest").mkdir()
    _png(tmp_path / "forest" / "a.png")
    (tmp_path / "forest" / ".ipynb_checkpoints").mkdir()
    _png(tmp_path / "forest" / ".ipynb_checkpoints" / "a-checkpoint.png")
    (tmp_path / "system").symlink_to(tmp_path / "forest")
    x, y, names = photos.load_image_folder(tmp_path, (8, 8))
    assert names == ["forest"] and len(x) == 1

# ----------------------------------------------------------------------------- model files


def test_model_file_that_is_not_a_zip_is_named(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not a .keras model file"):
        store.load(bad)


def test_model_config_naming_arbitrary_code_is_a_clear_error(tmp_path, models_dir):
    good = models_dir / "colorizer_3.keras"
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(content)
                cfg["config"]["layers"][1]["class_name"] = "system"
                cfg["config"]["layers"][1]["module"] = "os"
                content = json.dumps(cfg).encode()
            dst.writestr(item, content)
    with pytest.raises(ValueError, match="Could not load"):
        store.load(evil)

# ----------------------------------------------------------------------------- training state


def test_bad_training_arguments_are_refused_up_front(tmp_path):
    for kwargs, match in [(dict(epochs=0), "epochs must be"), (dict(subset=1), "subset must be"),
                          (dict(val_fraction=0), "val_fraction must be"), (dict(batch_size=0), "batch_size must be"),
                          (dict(max_minutes=-1), "max_minutes must be")]:
        with pytest.raises(ValueError, match=match):
            training.train("colorizer_3", models_dir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_a_second_run_of_the_same_model_refuses_and_a_stale_lock_is_cleared(cifar_dir, tmp_path, capsys):
    lock = tmp_path / "autoencoder_3.lock"
    lock.write_text(str(os.getpid()))  # a live process holds it
    with pytest.raises(RuntimeError, match=f"process {os.getpid()}"):
        training.train("autoencoder_3", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    lock.write_text("999999999")  # a killed run's lock
    training.train("autoencoder_3", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert "clearing the lock" in capsys.readouterr().out and not lock.exists()


class _Killed(BaseException):
    pass


def test_killed_after_fit_before_save_does_not_retrain(cifar_dir, tmp_path, monkeypatch, capsys):
    real = training.save_model

    def killed(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(training, "save_model", killed)
    with pytest.raises(_Killed):
        training.train("autoencoder_3", epochs=2, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    monkeypatch.setattr(training, "save_model", real)
    (tmp_path / "autoencoder_3.lock").unlink(missing_ok=True)
    rec = training.train("autoencoder_3", epochs=2, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert "training had finished" in capsys.readouterr().out
    assert rec["epochs_run"] == 2 and len(rec["history"]["loss"]) == 2
    lines = (tmp_path / "autoencoder_3.log.csv").read_text().strip().splitlines()
    assert len(lines) == 3  # header + 2 epochs, no duplicated rows


def test_a_model_that_learned_nothing_is_not_saved(cifar_dir, tmp_path):
    with pytest.raises(RuntimeError, match="learning_rate"):
        training.train("colorizer_3", epochs=1, subset=200, data_dir=cifar_dir, models_dir=tmp_path,
                       learning_rate=1e6, verbose=0)
    assert not (tmp_path / "colorizer_3.keras").exists()

# ----------------------------------------------------------------------------- caches


def test_corrupt_or_wrong_cifar_cache_is_rebuilt_with_a_warning(tmp_path):
    root = tmp_path / "cifar"
    for split, n in (("train", 2), ("test", 1)):
        for k, c in enumerate(data.CIFAR10_CLASSES):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                _png(root / split / c / f"{i}.png", 32, 32, seed=10 * k + i)
    (x, _), _ = data.load_cifar10(root, cache_dir=tmp_path / "c")
    cache = next((tmp_path / "c").glob("cifar10_*.npz"))
    cache.write_bytes(cache.read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match=cache.name):
        (x2, _), _ = data.load_cifar10(root, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(x, x2)
    np.savez(cache, x_train=np.zeros((3, 8, 8, 3), np.uint8), y_train=np.zeros(3), x_test=x2[:1], y_test=np.zeros(1))
    with pytest.warns(UserWarning, match="rebuilding"):
        (x3, _), _ = data.load_cifar10(root, cache_dir=tmp_path / "c")
    assert x3.shape == x.shape == (20, 32, 32, 3)


def test_corrupt_photo_cache_is_rebuilt(tmp_path):
    root = tmp_path / "photos" / "forest"
    root.mkdir(parents=True)
    for i in range(5):
        _png(root / f"{i}.png", seed=i)
    first = np.array(data.load_folder_split(tmp_path / "photos", "train", 16, cache_dir=tmp_path / "c").images)
    npy = next((tmp_path / "c").glob("*.images.npy"))  # (copied first: a mapped file must not shrink under it)
    npy.write_bytes(npy.read_bytes()[:200])
    with pytest.warns(UserWarning, match="rebuilding"):
        again = data.load_folder_split(tmp_path / "photos", "train", 16, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(first, np.asarray(again.images))


def test_32_bit_images_keep_their_tones():
    """Mode I: 16-bit data (as 16-bit PNGs open) scaled by 1/257, 8-bit data kept, and values outside
    0-65535 (no white level) stretched to 0-255; never clipped to white."""
    ramp = np.linspace(0, 1, 64)[None].repeat(8, 0)
    for values, expected in ((ramp * 65535, ramp * 255), (ramp * 200, ramp * 200),
                             (ramp * 4e6 - 1e6, ramp * 255)):
        img = Image.fromarray(values.astype(np.int32), mode="I")
        out = np.asarray(photos.pil_to_rgb(img))[..., 0].astype(float)
        np.testing.assert_allclose(out, expected, atol=1.0)


def _interrupted_run(cifar_dir, models_dir, monkeypatch, after_epochs=2):
    """A run of autoencoder_3 killed right after its epoch `after_epochs` was backed up."""
    real = training.TimeBudget.on_epoch_end

    def end(self, epoch, logs=None):
        real(self, epoch, logs)
        if epoch + 1 == after_epochs:
            raise _Killed

    monkeypatch.setattr(training.TimeBudget, "on_epoch_end", end)
    with pytest.raises(_Killed):
        training.train("autoencoder_3", epochs=3, subset=100, data_dir=cifar_dir, models_dir=models_dir, verbose=0)
    monkeypatch.setattr(training.TimeBudget, "on_epoch_end", real)
    (models_dir / "autoencoder_3.lock").unlink(missing_ok=True)
    return models_dir / "autoencoder_3.run"


def _truncate(path):
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("broken", ["latest", "both", "best"])
def test_half_written_checkpoints_fall_back_or_restart_saying_so(broken, cifar_dir, tmp_path, monkeypatch, capsys):
    run = _interrupted_run(cifar_dir, tmp_path, monkeypatch)
    latest = run / "backup" / "latest.weights.h5"
    assert latest.exists() and (run / "backup" / "latest.weights.h5.bkp").exists()
    if broken in ("latest", "both"):
        _truncate(latest)
    if broken == "both":
        _truncate(latest.with_name(latest.name + ".bkp"))
    if broken == "best":
        _truncate(run / "best.keras")
    capsys.readouterr()
    rec = training.train("autoencoder_3", epochs=3, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    out = capsys.readouterr().out
    expected = {"latest": "resuming from the epoch before it", "both": "restarting it from epoch 0",
                "best": "best checkpoint"}[broken]
    assert expected in out
    assert rec["epochs_run"] == 3 and len(rec["history"]["loss"]) == 3 and np.isfinite(rec["best_val_loss"])
    assert store.load(tmp_path / "autoencoder_3.keras").name == "autoencoder_3"
    if broken == "best":  # the saved weights are epoch 3's, the only one checkpointed after the drop
        assert rec["best_epoch"] == 3 and rec["best_val_loss"] == rec["history"]["val_loss"][2]


def test_photo_over_the_pixel_limit_is_refused_by_name_and_the_batch_goes_on(tmp_path, models_dir, monkeypatch, capsys):
    monkeypatch.setattr(photos, "MAX_PHOTO_PIXELS", 1000)
    big, small = _png(tmp_path / "big.png", 50, 40), _png(tmp_path / "small.png", 30, 30, seed=1)
    assert _cli([big, small, "-o", tmp_path / "out"], models_dir) == 1
    assert (tmp_path / "out" / "small_color.png").exists() and not (tmp_path / "out" / "big_color.png").exists()
    assert "big.png: a 40x50 photo (2,000 pixels) is larger than the 1,000 pixels" in capsys.readouterr().err
    with pytest.raises(photos.PhotoTooLarge, match="2,000 pixels"):
        Colorizer(MODEL).colorize_image(Image.open(big))


def test_a_failure_while_colorizing_is_reported_not_called_unreadable(tmp_path, models_dir, monkeypatch, capsys):
    good, bad = _png(tmp_path / "good.png"), _png(tmp_path / "bad.png", 24, 40, seed=1)
    real = Colorizer.colorize_photo

    def flaky(self, rgb, *args):
        if rgb.shape[0] == 24:
            raise RuntimeError("out of memory")
        return real(self, rgb, *args)

    monkeypatch.setattr(Colorizer, "colorize_photo", flaky)
    assert _cli([bad, good, "-o", tmp_path / "out"], models_dir) == 1
    assert (tmp_path / "out" / "good_color.png").exists()
    assert "bad.png: could not colorize it (RuntimeError: out of memory)" in capsys.readouterr().err
