"""Hostile files, full disks and concurrent runs (the reliability issue), each from its reproduction."""
import io
import json
import os
import socket
import zipfile

import numpy as np
import pytest
from PIL import Image

import colorize
import colorizer
import data
import machine
import models
import photos
import runfiles
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
    err = capsys.readouterr().err
    assert "--working-size: working size must be a whole number of pixels" in err and "100000" in err

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
    err = capsys.readouterr().err  # both refused: neither is written as if it were the other
    assert f"{first}: its output" in err and f"would also be that of {second}" in err and f"{second}: its output" in err
    assert not (tmp_path / "out").exists()


def test_photos_of_one_folder_with_one_stem_get_outputs_of_their_own(tmp_path, models_dir, capsys):
    """scan.tif beside scan.jpg: each is colorized into a name with its suffix, and neither is credited
    with an output an earlier run wrote for the other under the plain name."""
    (tmp_path / "in").mkdir()
    _png(tmp_path / "in" / "scan.png")
    assert _cli([tmp_path / "in", "-o", tmp_path / "out"], models_dir) == 0
    earlier = (tmp_path / "out" / "scan_color.png").read_bytes()
    Image.open(tmp_path / "in" / "scan.png").convert("RGB").rotate(90).save(tmp_path / "in" / "scan.jpg")
    assert _cli([tmp_path / "in", "-o", tmp_path / "out"], models_dir) == 0
    captured = capsys.readouterr()
    assert "2 colorized, 0 skipped, 0 failed" in captured.out
    assert "photo/s" not in captured.err and "\r" not in captured.err  # no progress bar into what is not a terminal
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan_color.png", "scan_jpg_color.png", "scan_png_color.png"]
    assert (tmp_path / "out" / "scan_color.png").read_bytes() == earlier  # the earlier output kept, not reused
    rotated = np.asarray(Image.open(tmp_path / "out" / "scan_jpg_color.png"))
    assert rotated.shape[:2] == np.asarray(Image.open(tmp_path / "in" / "scan.jpg")).shape[:2]
    _png(tmp_path / "in" / "scan_jpg.png")  # a photo whose own name is scan.jpg's output name: both refused
    assert _cli([tmp_path / "in", "-o", tmp_path / "out"], models_dir) == 1
    captured = capsys.readouterr()
    assert "scan.jpg: its output" in captured.err and "scan_jpg.png: its output" in captured.err
    assert "0 colorized, 1 skipped, 2 failed" in captured.out  # scan.png: done before

# ----------------------------------------------------------------------------- reading inputs


def test_any_pillow_exception_is_an_unreadable_file(tmp_path, models_dir, monkeypatch, capsys):
    good, bad = _png(tmp_path / "good.png"), _png(tmp_path / "bad.png", seed=1)
    real = photos.read_photo

    def picky(img):  # what Pillow does on a TIFF whose StripOffsets tag is FLOAT
        if img.filename.endswith("bad.png"):
            raise TypeError("'float' object cannot be interpreted as an integer")
        return real(img)

    monkeypatch.setattr(photos, "read_photo", picky)
    assert _cli([bad, good, "-o", tmp_path / "out"], models_dir) == 1
    assert (tmp_path / "out" / "good_color.png").exists()
    assert "bad.png: not a readable image (TypeError" in capsys.readouterr().err


MODEL = models.get_model("colorizer_3")


def test_fuzzed_images_are_read_or_reported_never_raise(tmp_path, models_dir, capsys):
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
    # and colorize.py's read path: each colorized, or reported as unreadable, never a traceback
    capsys.readouterr()
    assert _cli([*files[:60], "-o", tmp_path / "out", "--overwrite"], models_dir) == 1
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors and all("not a readable image" in line for line in errors) and "Traceback" not in err, err
    colorized = int(out.split(" colorized")[0].split()[-1])
    assert colorized > 0 and colorized + len(errors) == 60  # some colorized, some reported


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


def test_killed_after_the_budget_ran_out_before_fit_ended_does_not_train_past_it(cifar_dir, tmp_path, monkeypatch,
                                                                                   capsys):
    real = training.save_model
    monkeypatch.setattr(training, "save_model", lambda *a, **k: (_ for _ in ()).throw(_Killed()))
    with pytest.raises(_Killed):
        training.train("autoencoder_3", epochs=5, max_minutes=1e-4, subset=100, data_dir=cifar_dir,
                       models_dir=tmp_path, verbose=0)
    monkeypatch.setattr(training, "save_model", real)
    (tmp_path / "autoencoder_3.lock").unlink(missing_ok=True)
    state_path = tmp_path / "autoencoder_3.run" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["stopped_by_budget"] and state["epochs_done"] == 1
    del state["fit_done"]  # killed between the budget's last state and the end of fit()
    state_path.write_text(json.dumps(state))
    rec = training.train("autoencoder_3", epochs=5, max_minutes=1e-4, subset=100, data_dir=cifar_dir,
                         models_dir=tmp_path, verbose=0)
    assert "training had finished" in capsys.readouterr().out
    assert rec["epochs_run"] == 1 and rec["stopped_by"] == "time budget"


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

# ----------------------------------------------------------------------------- round three (issue 25)


def _folder(root, n, colour=True, junk=0, size=40):
    """`root/a/` with n photos (colour or black-and-white JPEGs) and `junk` unreadable .jpg files."""
    d = root / "a"
    d.mkdir(parents=True)
    r = np.random.default_rng(0)
    for i in range(n):
        img = r.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img if colour else img[..., :1].repeat(3, -1)).save(d / f"p{i:02d}.jpg")
    for i in range(junk):
        (d / f"junk{i}.jpg").write_text("junk")
    return root


def test_case1_an_unreadable_photo_is_skipped_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "photos", 24, junk=1)
    with pytest.warns(UserWarning, match="junk0.jpg"):
        fd = data.load_folder_split(folder, "train", 36)
    assert len(fd.images) == len(fd.labels) == len(fd.gray) == 23 and not fd.gray.any()
    again = data.load_folder_split(folder, "train", 36)  # the cache opens: no rebuild, no warning
    np.testing.assert_array_equal(again.images, fd.images)
    rec = training.train("colorizer_3", data=folder, image_size=32, epochs=1, models_dir=tmp_path / "m", verbose=0)
    assert rec["epochs_run"] == 1 and rec["train_images"] + rec["val_images"] == 23


def test_case2_long_strips_run_the_model_on_few_pixels(models_dir):
    c = Colorizer(store.load("colorizer_3", models_dir))
    for h, w in [(10000, 1), (1, 50_000_000), (1, 10000), (7071, 7071)]:
        mh, mw = c.working_shape(h, w)
        assert mh * mw <= colorizer.STRIP_FACTOR * 32 ** 2, (h, w, mh, mw)
    assert c.working_shape(480, 640) == (32, 40)  # an ordinary photo: the working size as before


def test_case4_a_concurrent_writer_wins_and_the_other_reports_exists(tmp_path, models_dir, monkeypatch, capsys):
    src = _png(tmp_path / "photo.png")
    out = tmp_path / "out"
    real = colorize.open_photo

    def other_process_writes_first(path):
        out.mkdir(exist_ok=True)
        (out / "photo_color.png").write_bytes(b"the other process's output")
        return real(path)
    monkeypatch.setattr(colorize, "open_photo", other_process_writes_first)
    assert _cli([src, "-o", out], models_dir) == 0
    assert (out / "photo_color.png").read_bytes() == b"the other process's output"
    assert "0 colorized, 1 skipped" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        machine.write_atomic(out / "photo_color.png", lambda t: Image.new("RGB", (2, 2)).save(t, "PNG"), overwrite=False)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_case5_colorize_array_takes_one_image_or_a_batch_and_refuses_the_rest(models_dir):
    c = Colorizer(store.load("colorizer_3", models_dir))
    rgb = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    one = c.colorize_array(rgb)
    assert one.shape == (24, 40, 3) and one.dtype == np.uint8
    np.testing.assert_array_equal(c.colorize_array(rgb[None])[0], one)
    np.testing.assert_array_equal(c.colorize_array(rgb / 255.0), one)  # float in [0, 1]
    rgba = np.concatenate([rgb, np.full((24, 40, 1), 7, np.uint8)], -1)
    out = c.colorize_array(rgba)
    assert out.shape == (24, 40, 4) and (out[..., 3] == 7).all()
    gray = rgb[..., 0]
    assert c.colorize_array(gray).shape == c.colorize_array(gray[..., None]).shape == (24, 40, 3)
    for bad, match in [(rgb.astype(np.int16), "dtype int16"), (rgb > 9, "dtype bool"),
                       (np.zeros((0, 24, 40, 3), np.uint8), "empty"), (np.zeros((5, 24, 40), np.uint8), r"\(5, 24, 40\)"),
                       (rgb * 2.0, "must lie in"), (np.zeros((2, 3, 4, 5, 3), np.uint8), "are not one image")]:
        with pytest.raises(ValueError, match=match):
            c.colorize_array(bad)


def _png_header(path, width, height):
    """A PNG whose header claims width x height (8-bit gray) with no pixel data: opening it reads the header only."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def test_case6_one_size_limit_the_projects_checked_before_decoding(tmp_path):
    for w, h in [(25_000, 10_000), (25_000, 20_000)]:  # 250 and 500 megapixels: above Pillow's own limits too
        with pytest.raises(photos.PhotoTooLarge, match="200,000,000"):
            photos.open_photo(_png_header(tmp_path / "big.png", w, h))
    with pytest.raises(Exception) as e:  # 190 megapixels: within the limit, so decoding is tried (and the data is missing)
        photos.open_photo(_png_header(tmp_path / "ok.png", 19_000, 10_000))
    assert not isinstance(e.value, photos.PhotoTooLarge) and "decompression bomb" not in str(e.value).lower()


def test_case7_training_sizes_and_cache_room_checked_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "photos", 12)
    for size in (0, 10000, 31.5):
        with pytest.raises(ValueError, match=f"image_size must be a whole number of pixels from 8 to 512, got {size}"):
            training.train("colorizer_3", data=folder, image_size=size, models_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists() and not (tmp_path / "cache").exists()
    monkeypatch.setattr(data.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 << 20})())
    with pytest.raises(OSError, match=r"needs 0\.\d+ GB .* only 0\.01 GB are free"):
        data.load_folder_split(folder, "train", 512)
    assert not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("n,colour,match", [(3, True, "has 3 colour photos"), (12, False, "has 0 colour photos")])
def test_case8_too_few_colour_photos_say_what_is_missing(tmp_path, monkeypatch, n, colour, match):
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "photos", n, colour=colour)
    with pytest.raises(ValueError, match=match + r".*at least 11 are needed"):
        training.train("colorizer_3", data=folder, image_size=32, epochs=1, models_dir=tmp_path / "m", verbose=0)


def test_case9_the_output_folder_inside_the_input_is_not_colorized_again(tmp_path, models_dir):
    scans = tmp_path / "scans"
    scans.mkdir()
    _png(scans / "p1.png"), _png(scans / "p2.png", seed=1)
    for _ in range(3):
        assert _cli([scans, "-o", scans / "colorized"], models_dir) == 0
    made = sorted(p.relative_to(scans).as_posix() for p in scans.rglob("*") if p.is_file())
    assert made == ["colorized/p1_color.png", "colorized/p2_color.png", "p1.png", "p2.png"]


def test_case10_a_symlinked_sub_folder_of_the_output_is_not_written_through(tmp_path, models_dir, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _png(src / "sub" / "x.png")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere)
    assert _cli([src, "-o", out], models_dir) == 1
    assert "leads out of the output folder" in capsys.readouterr().err and not any(elsewhere.iterdir())


def test_case11_stale_temporaries_are_cleaned_and_a_rerun_skips_what_is_done(tmp_path, models_dir, capsys, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "a.png"), _png(src / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    stale, live = out / ".a_color.png.tmp999999999", out / ".b_color.png.tmp1"  # pid 1 lives
    stale.write_bytes(b"half"), live.write_bytes(b"being written")
    assert _cli([src, "-o", out], models_dir) == 0
    assert not stale.exists() and live.exists()
    capsys.readouterr()
    assert _cli([src, "-o", out], models_dir) == 0  # nothing failed: the finished photos are skipped
    assert "0 colorized, 2 skipped, 0 failed" in capsys.readouterr().out
    cache = tmp_path / "cache"
    monkeypatch.setenv("COLORIZE_CACHE", str(cache))
    cache.mkdir()
    left = cache / "photos_train_36_0123.images.tmp999999999.npy"
    left.write_bytes(b"half a cache")
    data.load_folder_split(_folder(tmp_path / "photos", 12), "train", 36)
    assert not left.exists()


def test_case12_a_half_written_history_row_is_dropped(tmp_path, capsys):
    log = tmp_path / "run.log.csv"
    log.write_text("epoch,loss,val_loss\n0,0.5,0.4\n1,0.45,nan\n2,0.4")  # killed while writing epoch 2
    assert runfiles.drop_incomplete_rows(log) == 1
    assert store.read_history(log) == {"epoch": [0, 1], "loss": [0.5, 0.45], "val_loss": [0.4, pytest.approx(float("nan"), nan_ok=True)]}
    assert "dropped 1 incomplete row" in capsys.readouterr().out
    assert runfiles.drop_incomplete_rows(log) == 0  # a complete file is left as it is
    log.write_text("epoch,loss,val_loss\n0,0.5,0.4\n1,0.45,\n")
    assert runfiles.drop_incomplete_rows(log) == 1 and store.read_history(log)["epoch"] == [0]


def test_case13_a_lock_whose_pid_was_reused_is_stale(tmp_path, capsys):
    import machine
    lock = tmp_path / "m.lock"
    started = machine.process_started(1)
    lock.write_text(json.dumps(dict(pid=1, started=(started or 0) + 1, host=socket.gethostname(), command="old")))
    with runfiles.RunLock(lock):  # pid 1 lives, but it is not the process that took the lock
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid() and owner["started"] == machine.process_started(os.getpid())
    assert "clearing the lock" in capsys.readouterr().out and not lock.exists()
    lock.write_text(json.dumps(dict(pid=os.getpid(), started=machine.process_started(os.getpid()),
                                    host=socket.gethostname(), command="pytest")))
    with pytest.raises(RuntimeError, match=f"process {os.getpid()} .*pytest"):
        runfiles.RunLock(lock).__enter__()


def test_case14_seed_and_learning_rate_refused_before_anything_is_written(tmp_path):
    for kwargs, match in [(dict(seed=-1), "seed must be"), (dict(seed=2 ** 32), "seed must be"),
                          (dict(learning_rate=-1), "learning_rate must be"), (dict(learning_rate=0), "learning_rate")]:
        with pytest.raises(ValueError, match=match):
            training.train("colorizer_3", models_dir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_full_disk_and_interrupt_in_a_batch_say_what_happened(tmp_path, models_dir, monkeypatch, capsys):
    import errno
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "a.png"), _png(src / "b.png", seed=1), _png(src / "c.png", seed=2)

    def full(target, write, overwrite=True):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(machine, "write_atomic", full)
    assert _cli([src, "-o", tmp_path / "o1"], models_dir) == 1
    assert "the disk is full" in capsys.readouterr().err
    monkeypatch.undo()
    calls = []
    real = Colorizer.colorize_photo

    def interrupted(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)
    monkeypatch.setattr(Colorizer, "colorize_photo", interrupted)
    assert _cli([src, "-o", tmp_path / "o2"], models_dir) == 130
    err = capsys.readouterr().err
    assert "interrupted: 1 colorized, 0 skipped, 0 failed, 2 left" in err and "Traceback" not in err


def test_cli_refuses_a_bad_option_before_any_photo_and_ctrl_c_while_listing_is_clean(tmp_path, models_dir, capsys,
                                                                                      monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "a.png")
    with pytest.raises(SystemExit) as e:
        _cli([src, "-o", tmp_path / "o", "--saturation", "9"], models_dir)
    assert e.value.code == 2 and "--saturation: saturation must be a number from 0 to 5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any photo was written

    def interrupted(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(colorize, "_expand", interrupted)
    assert _cli([src, "-o", tmp_path / "o"], models_dir) == 130
    err = capsys.readouterr().err
    assert "interrupted while listing the inputs: nothing colorized" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


OLD_DEFAULT = {"batch_size": {128}}  # what train() passes when no batch is given: the default before models had their own


def _run_on_disk(paths, config, finished):
    """A run's files as training leaves them: interrupted (work folder, no model) or finished."""
    paths["run"].mkdir(parents=True)
    store.write_json(paths["config"], config)
    store.write_json(paths["state"], dict(epochs_done=3, **({"finished": True} if finished else {})))
    if finished:
        paths["final"].write_bytes(b"model")
        store.write_json(paths["record"], dict(config=config, epochs_run=3))


@pytest.mark.parametrize("finished", [False, True])
def test_a_run_made_under_an_old_default_batch_is_kept(tmp_path, capsys, finished):
    """colorizer_6 trained at 128 before its own batch (64) became the default: the same command, the
    batch not given, resumes or finds that run; given, the batch is an argument like any other."""
    paths = store.run_paths("colorizer_6", tmp_path, "landscapes")
    old = dict(model_name="colorizer_6", epochs=10, batch_size=128, seed=0)
    _run_on_disk(paths, old, finished)
    config = dict(old, batch_size=64)  # what train() makes of the same command today
    resuming, done = runfiles.prepare_run("colorizer_6", config, paths, True, False, defaulted=OLD_DEFAULT)
    assert config["batch_size"] == 128 and (resuming, done) == ((None, dict(config=old, epochs_run=3)) if finished
                                                                else (True, None))
    assert "Keeping the run's own batch_size 128 (the default is now 64)" in capsys.readouterr().out
    assert paths["final"].exists() == finished and paths["run"].exists()  # nothing discarded
    given = dict(old, batch_size=64)
    if finished:
        with pytest.raises(runfiles.RunExists, match="batch_size: 128 → 64.*pass batch_size=128"):
            runfiles.prepare_run("colorizer_6", given, paths, True, False)
    else:
        assert runfiles.prepare_run("colorizer_6", given, paths, True, False) == (False, None)
        assert "Discarding the interrupted run" in capsys.readouterr().out and given["batch_size"] == 64


def test_a_defaulted_batch_is_not_taken_where_other_arguments_differ(tmp_path, capsys):
    paths = store.run_paths("colorizer_6", tmp_path, "landscapes")
    old = dict(model_name="colorizer_6", epochs=10, batch_size=128, seed=0)
    _run_on_disk(paths, old, finished=True)
    more = dict(old, batch_size=64, epochs=20)
    with pytest.raises(runfiles.RunExists, match="batch_size: 128 → 64.*epochs: 10 → 20|epochs: 10 → 20.*batch_size"):
        runfiles.prepare_run("colorizer_6", dict(more, seed=1), paths, True, False, defaulted=OLD_DEFAULT)
    # without --extend, the refusal names the way that works: extending takes the run's batch
    with pytest.raises(runfiles.RunExists, match=r"\(epochs: 10 → 20\): pass resume='extend'") as e:
        runfiles.prepare_run("colorizer_6", dict(more), paths, True, False, defaulted=OLD_DEFAULT)
    assert "batch_size" not in str(e.value)
    # extending may change epochs: the batch is the run's own, and it continues from its state
    assert runfiles.prepare_run("colorizer_6", more, paths, "extend", False, defaulted=OLD_DEFAULT) == (True, None)
    assert more["batch_size"] == 128 and store.read_json(paths["config"]) == more
    assert "Extending colorizer_6 (epochs: 10 → 20) from its 3 epochs" in capsys.readouterr().out


def test_a_batch_chosen_then_or_an_overwrite_is_not_a_default_kept(tmp_path, capsys):
    """Only a batch that was the default then is taken: a run at a batch someone chose (32) is another
    run, as before; --overwrite trains afresh at today's default."""
    paths = store.run_paths("colorizer_6", tmp_path, "landscapes")
    chosen = dict(model_name="colorizer_6", epochs=10, batch_size=32, seed=0)
    _run_on_disk(paths, chosen, finished=True)
    with pytest.raises(runfiles.RunExists, match="batch_size: 32 → 64.*pass batch_size=32"):
        runfiles.prepare_run("colorizer_6", dict(chosen, batch_size=64), paths, True, False, defaulted=OLD_DEFAULT)
    paths = store.run_paths("colorizer_6", tmp_path / "b", "landscapes")
    _run_on_disk(paths, dict(chosen, batch_size=128), finished=False)
    config = dict(chosen, batch_size=64)
    assert runfiles.prepare_run("colorizer_6", config, paths, True, True, defaulted=OLD_DEFAULT) == (False, None)
    assert config["batch_size"] == 64 and "Keeping" not in capsys.readouterr().out


def test_verbose_and_resume_are_refused_naming_what_is_allowed(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"verbose must be one of 'auto', 0, 1, 2, 'lines', got 'line'"):
        training.train("colorizer_3", models_dir=tmp_path, verbose="line")
    with pytest.raises(ValueError, match=r"verbose must be one of .*, got True"):
        training.train("colorizer_3", models_dir=tmp_path, verbose=True)
    with pytest.raises(ValueError, match=r"resume must be True, False or 'extend' .*got 'extended'"):
        training.train("colorizer_3", models_dir=tmp_path, resume="extended")
    with pytest.raises(SystemExit):
        training.main(["colorizer_3", "--verbose", "3", "--models-dir", str(tmp_path)])
    assert "invalid choice: '3'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_run_made_when_colorizer_6_took_64_at_every_size_is_kept(cifar_dir, tmp_path, capsys):
    """For a while colorizer_6 defaulted to 64 at any size; at 32 px its default is 128 again. A run
    made then, asked for again without a batch, is found at its batch, not refused or discarded."""
    kw = dict(epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0, calibrate=False)
    first = training.train("colorizer_6", batch_size=64, **kw)
    assert training.batch_size_for("colorizer_6", image_size=32) == 128
    rec = training.train("colorizer_6", **kw)  # no batch: the run on disk is the run asked for
    assert rec["batch_size"] == 64 and rec["date"] == first["date"]
    assert "Keeping the run's own batch_size 64 (the default is now 128)" in capsys.readouterr().out
