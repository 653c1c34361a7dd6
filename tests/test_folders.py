"""Photo folders as datasets (the landscapes issue): splits, cache, black-and-white photos,
training at 64 px with resume, colorizer_6's calibration, and colorize.py's landscape default."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import calibration
import colorize
import colorizer
import colour
import contracts
import data
import models
import store
import training
from colorizer import Colorizer


def _scene(h, w, seed):
    """A 'landscape': blue sky above green ground, the horizon at a random height."""
    r = np.random.default_rng(seed)
    horizon = int(h * r.uniform(0.3, 0.7))
    img = np.zeros((h, w, 3), np.float32)
    img[:horizon] = (90, 140, 220)
    img[horizon:] = (50, 120, 40)
    img += r.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_folder(root, n_per_class=(30, 30), with_splits=True, bw=3):
    """Two classes; odd sizes and modes; `bw` black-and-white photos in each class's train part."""
    classes = ("forest", "sea")
    made = {"bw": 0}
    for split, n in (("train", n_per_class[0]), ("test", n_per_class[1] // 3)) if with_splits else (("", sum(n_per_class)),):
        for k, c in enumerate(classes):
            d = root / split / c if split else root / c
            d.mkdir(parents=True)
            for i in range(n):
                img = Image.fromarray(_scene(60 + (i % 3) * 17, 80 - (i % 2) * 9, seed=1000 * k + i + len(split)))
                if split != "test" and i < bw:  # black-and-white: stored as colour JPEG, as scans often are
                    img.convert("L").convert("RGB").save(d / f"{i:03d}.jpg", quality=95)
                    made["bw"] += 1
                elif i % 5 == 1:
                    img.convert("RGBA").save(d / f"{i:03d}.png")
                elif i % 5 == 2:
                    img.convert("P").save(d / f"{i:03d}.gif")
                else:
                    img.save(d / f"{i:03d}.jpg", quality=95)
    hidden = root / ("train" if with_splits else "") / ".ipynb_checkpoints"
    hidden.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_scene(60, 60, 99)).save(hidden / "000-checkpoint.jpg")  # never a class, never a photo
    return made


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "myscenes"
    made = _write_folder(root)
    return root, made


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))


def test_folder_without_splits_is_split_deterministically(tmp_path):
    root = tmp_path / "flat"
    _write_folder(root, n_per_class=(60, 0), with_splits=False, bw=0)
    a, names = data.folder_splits(root)
    b, _ = data.folder_splits(root)
    assert names == ["forest", "sea"]
    assert [f for f, _ in a["train"]] == [f for f, _ in b["train"]] and a["test"] == b["test"]
    train, test = {f for f, _ in a["train"]}, {f for f, _ in a["test"]}
    assert not train & test and len(train | test) == 120
    assert 3 <= len(test) <= 30  # about 10 %
    assert not any(".ipynb_checkpoints" in str(f) for f in train | test)


def test_folder_with_splits_used_as_laid_out(photo_folder):
    root, _ = photo_folder
    splits, names = data.folder_splits(root)
    assert names == ["forest", "sea"]
    assert len(splits["train"]) == 60 and len(splits["test"]) == 20
    assert all("/train/" in str(f) for f, _ in splits["train"]) and all("/test/" in str(f) for f, _ in splits["test"])


def test_load_folder_split_cache_and_black_and_white(photo_folder, tmp_path):
    root, made = photo_folder
    fd = data.load_folder_split(str(root), "train", 40)
    assert fd.images.shape == (60, 40, 40, 3) and fd.images.dtype == np.uint8
    assert isinstance(fd.images, np.memmap)  # read from the cache on disk, never all in memory
    assert int(fd.gray.sum()) == made["bw"] == 6
    assert sorted(np.unique(fd.labels)) == [0, 1] and fd.class_names == ["forest", "sea"]
    assert len(fd.colour_index()) == 54
    cached = sorted((tmp_path / "cache").glob("*.npy"))
    again = data.load_folder_split(str(root), "train", 40)
    assert sorted((tmp_path / "cache").glob("*.npy")) == cached and len(cached) == 1
    np.testing.assert_array_equal(again.images, fd.images)


def test_random_and_centre_crops():
    imgs = np.arange(2 * 9 * 9 * 3, dtype=np.uint8).reshape(2, 9, 9, 3)
    c = data.centre_crops(imgs, 8)
    np.testing.assert_array_equal(c, imgs[:, :8, :8])
    r = data.random_crops(imgs, 8, np.random.default_rng(0))
    assert r.shape == (2, 8, 8, 3)
    for i in range(2):  # each crop is some 8x8 window of its image, maybe flipped
        windows = [imgs[i, y:y + 8, x:x + 8] for y in (0, 1) for x in (0, 1)]
        assert any(np.array_equal(r[i], w) or np.array_equal(r[i], w[:, ::-1]) for w in windows)


def test_image_size_the_stride_does_not_divide_is_refused(photo_folder, tmp_path):
    with pytest.raises(ValueError, match=r"image_size 60.*multiple of 8.*64"):
        models.input_shape_for("colorizer_3", 60)
    with pytest.raises(ValueError, match="multiple of 8"):
        training.train("colorizer_3", data=str(photo_folder[0]), image_size=60, epochs=1, models_dir=tmp_path)
    assert not list(tmp_path.rglob("*.keras"))
    assert models.input_shape_for("colorizer_1", 64) == (64, 64, 1)  # fixed-size models are built at the size
    with pytest.raises(ValueError, match="image_size must be 32"):
        training.train("colorizer_3", data="cifar10", image_size=64, epochs=1, models_dir=tmp_path)


class _Interrupt(Exception):
    pass


def test_one_epoch_at_64_saves_resumes_and_loads(photo_folder, tmp_path, monkeypatch):
    root, _ = photo_folder
    make = training.make_callbacks

    def interrupting(*args, **kwargs):  # a run killed after its first epoch was backed up
        callbacks, budget = make(*args, **kwargs)

        class Stop(training.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    raise _Interrupt()
        return callbacks + [Stop()], budget

    monkeypatch.setattr(training, "make_callbacks", interrupting)
    with pytest.raises(_Interrupt):
        training.train("colorizer_3", data=str(root), image_size=64, epochs=2, batch_size=16, models_dir=tmp_path,
                       verbose=0)
    monkeypatch.setattr(training, "make_callbacks", make)
    rec = training.train("colorizer_3", data=str(root), image_size=64, epochs=2, batch_size=16,
                         models_dir=tmp_path, verbose=0)
    path = tmp_path / "myscenes" / "colorizer_3.keras"
    assert path.exists() and not (tmp_path / "colorizer_3.keras").exists()
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["epochs_run"] == 2 and len(saved["history"]["loss"]) == 2  # epoch 1 not redone
    assert saved["data"] == "myscenes" and saved["image_size"] == 64 and saved["data_source"] == "folder myscenes"
    assert saved["gray_skipped"] == 6 and saved["train_images"] + saved["val_images"] == 54
    assert rec["best_val_loss"] == saved["best_val_loss"]
    assert str(tmp_path) not in path.with_suffix(".json").read_text()  # no local absolute paths
    model = store.load("myscenes/colorizer_3", tmp_path)
    assert model.input_shape[1:3] == (64, 64)
    out = colorize.colorize_array(np.zeros((2, 150, 150, 3), np.uint8), model)
    assert out.shape == (2, 150, 150, 3)


def test_colorizer_6_calibrated_on_validation(photo_folder, tmp_path, capsys):
    rec = training.train("colorizer_6", data=str(photo_folder[0]), image_size=32, epochs=1, batch_size=16,
                         models_dir=tmp_path, verbose=0)
    cal = rec["calibration"]
    out = capsys.readouterr().out  # the minutes it takes on a large folder are announced, not silent
    assert f"Choosing colorizer_6's decoding settings on its {rec['val_images']} validation images" in out
    assert "... chosen in" in out
    gains = sum(len(calibration.CHROMA_MIN_GRID) if g else 1 for g in calibration.GAIN_GRID)  # chroma_min needs a gain
    assert len(cal["sweep"]) == len(calibration.MIX_GRID) * len(calibration.TEMPERATURE_GRID) * gains
    winners = [s for s in cal["sweep"] if s["beats_gray"]]
    if winners:  # the rule: the most colourful setting that beats gray on all five
        assert cal["chosen"]["colorfulness"] == max(s["colorfulness"] for s in winners)
    else:
        assert cal["chosen"]["psnr"] == max(s["psnr"] for s in cal["sweep"])
    assert cal["images"] == rec["val_images"]  # validation photos, never the test split
    model = store.load(tmp_path / "myscenes" / "colorizer_6.keras")
    layer = model.get_layer("ab_mix")
    keys = ("mix", "temperature", "gain", "chroma_min")
    assert (layer.mix, layer.temperature, layer.gain, layer.chroma_min) == tuple(cal["chosen"][k] for k in keys)
    assert colorizer.predict_rgb(model, np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 32, 32, 3)


def test_calibration_scores_alike_on_one_thread_or_several(monkeypatch):
    """The settings are scored in threads (calibration.SCORING_THREADS): the sweep and the choice are
    the same as on one thread, and each setting's confidence, shared, is decode_mix's own."""
    rng = np.random.default_rng(0)
    model = models.get_model("colorizer_6", input_shape=(16, 16, 1))
    photos = np.clip(np.linspace(0, 255, 24 * 24 * 3).reshape(1, 24, 24, 3) + rng.normal(0, 30, (10, 24, 24, 3)),
                     0, 255).astype(np.uint8)
    sweeps = []
    for threads in (1, 3):
        monkeypatch.setattr(calibration, "SCORING_THREADS", threads)
        sweeps.append(calibration.calibrate_colorizer_6(model, photos))
    assert sweeps[0]["sweep"] == sweeps[1]["sweep"] and sweeps[0]["chosen"] == sweeps[1]["chosen"]
    assert len({s["psnr"] for s in sweeps[0]["sweep"]}) > 1  # the settings differ
    probs = rng.dirichlet(np.full(30, 0.3), (4, 5)).astype(np.float32)
    full_sort = np.sort(probs, axis=-1)[..., -5:].sum(-1, keepdims=True)
    np.testing.assert_array_equal(contracts.mix_confidence(probs), full_sort)  # the partition: the same to the bit
    y = np.concatenate([rng.normal(0, 0.2, (4, 5, 2)).astype(np.float32), probs], -1)
    centers = rng.uniform(-80, 80, (30, 2)).astype(np.float32)
    np.testing.assert_array_equal(contracts.decode_mix(y, centers, 1.25, 0.2, 0.15),
                                  contracts.decode_mix(y, centers, 1.25, 0.2, 0.15,
                                                       confidence=contracts.mix_confidence(probs)))
    # the confidence given is the one used: none keeps the regression head's colour, full takes the classifier's
    np.testing.assert_allclose(contracts.decode_mix(y, centers, 1.0, 0.2, confidence=np.zeros((4, 5, 1))),
                               y[..., :2] * colour.AB_SCALE, rtol=1e-6)
    np.testing.assert_allclose(contracts.decode_mix(y, centers, 1.0, 0.2, confidence=np.ones((4, 5, 1))),
                               contracts.annealed_mean(probs, centers, 0.2), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match=r"confidence must have shape \(4, 5, 1\).*got \(4, 5\)"):
        contracts.decode_mix(y, centers, confidence=np.ones((4, 5)))
    assert contracts.mix_confidence(probs[..., :3]).shape == (4, 5, 1)  # fewer bins than k: all of them
    np.testing.assert_allclose(contracts.mix_confidence(probs[..., :3])[..., 0], probs[..., :3].sum(-1), rtol=1e-6)


def test_no_calibrate_keeps_the_builders_decoding_until_asked_again(photo_folder, tmp_path, capsys):
    training.main(["colorizer_6", "--data", str(photo_folder[0]), "--image-size", "32", "--epochs", "1",
                   "--batch-size", "16", "--models-dir", str(tmp_path), "--verbose", "0", "--no-calibrate"])
    rec = json.loads((tmp_path / "myscenes" / "colorizer_6.json").read_text())
    assert "calibration" not in rec and rec["epochs_run"] == 1
    assert "calibrate" not in rec["config"]  # it changes no weight: not part of what makes a run
    layer = store.load(tmp_path / "myscenes" / "colorizer_6.keras").get_layer("ab_mix")
    built = models.get_model("colorizer_6", input_shape=(32, 32, 1)).get_layer("ab_mix")
    keys = ("mix", "temperature", "gain", "chroma_min")
    assert [getattr(layer, k) for k in keys] == [getattr(built, k) for k in keys]
    weights = store.load(tmp_path / "myscenes" / "colorizer_6.keras").get_weights()
    # asked again with calibration: nothing is retrained, the run is calibrated now, in place, and says so
    again = training.train("colorizer_6", data=str(photo_folder[0]), image_size=32, epochs=1, batch_size=16,
                           models_dir=tmp_path, verbose=0)
    assert "was trained without calibration" in capsys.readouterr().out
    assert {k: v for k, v in again.items() if k != "calibration"} == rec
    assert again["calibration"]["images"] == rec["val_images"]  # its own validation photos
    assert json.loads((tmp_path / "myscenes" / "colorizer_6.json").read_text()) == again
    model = store.load(tmp_path / "myscenes" / "colorizer_6.keras")
    chosen = again["calibration"]["chosen"]
    assert [getattr(model.get_layer("ab_mix"), k) for k in keys] == [chosen[k] for k in keys]
    for w, w0 in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, w0)
    # and a third time: calibrated already, nothing changes
    assert training.train("colorizer_6", data=str(photo_folder[0]), image_size=32, epochs=1, batch_size=16,
                          models_dir=tmp_path, verbose=0) == again
    assert "without calibration" not in capsys.readouterr().out


def test_decode_mix_acts_where_the_classifier_is_sure():
    centers = np.zeros((20, 2), np.float32)
    centers[0] = (60.0, 0.0)
    sure, unsure = np.eye(20, dtype=np.float32)[:1], np.full((1, 20), 1 / 20, np.float32)
    reg = np.zeros((1, 2), np.float32)
    y = lambda probs, a=0.0: np.concatenate([reg + [a / colour.AB_SCALE, 0], probs], -1)  # noqa: E731
    assert contracts.mix_confidence(sure)[0, 0] == pytest.approx(1.0)
    assert contracts.mix_confidence(unsure)[0, 0] == pytest.approx(0.25)
    assert contracts.decode_mix(y(sure), centers, mix=1.0)[0, 0] == pytest.approx(60.0, abs=1e-3)
    assert contracts.decode_mix(y(unsure), centers, mix=1.0)[0, 0] == pytest.approx(0.25 * 3.0, abs=1e-3)
    assert contracts.decode_mix(y(sure), centers, mix=0.0)[0, 0] == pytest.approx(0.0)
    assert contracts.decode_mix(y(sure, 10), centers, mix=0.0, gain=1.0)[0, 0] == pytest.approx(20.0, rel=1e-4)
    assert contracts.decode_mix(y(unsure, 10), centers, mix=0.0, gain=1.0)[0, 0] == pytest.approx(12.5, rel=1e-4)
    # the gain only where the chroma is already above chroma_min: near-neutral and gray pixels stay as they are
    assert contracts.decode_mix(y(sure, 10), centers, mix=0.0, gain=1.0, chroma_min=15)[0, 0] == pytest.approx(10.0)
    assert contracts.decode_mix(y(sure, 10), centers, mix=0.0, gain=1.0, chroma_min=5)[0, 0] == pytest.approx(20.0, rel=1e-4)
    assert contracts.decode_mix(y(sure, 0), centers, mix=0.0, gain=3.0, chroma_min=5)[0, 0] == 0.0


def test_colorize_without_model_uses_the_landscape_model(tmp_path):
    mdir = tmp_path / "models"
    model = models.get_model(colorizer.DEFAULT_MODEL.split("/")[1], input_shape=(64, 64, 1))
    store.save_model(model, store.path(model.name, mdir, colorizer.DEFAULT_MODEL.split("/")[0]))
    src = tmp_path / "in.png"
    rgba = np.dstack([_scene(75, 150, 1), np.full((75, 150), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src)
    assert colorize.main([str(src), "--models-dir", str(mdir), "-o", str(tmp_path / "out")]) == 0
    with Image.open(tmp_path / "out" / "in_color.png") as out:
        assert out.size == (150, 75) and out.mode == "RGBA"
        assert (np.asarray(out.getchannel("A")) == 200).all()
        L_out = colour.photo_L(np.asarray(out.convert("RGB")))
    assert np.abs(L_out - colour.photo_L(rgba[..., :3])).mean() < 1.0
    assert Colorizer(model).working_shape(75, 150, None) == (64, 128)  # its training size, aspect kept


@pytest.mark.skipif(not os.environ.get("LANDSCAPES_DIR"), reason="needs $LANDSCAPES_DIR (the real landscapes)")
def test_real_landscapes_folder():
    train = data.load_folder_split("landscapes", "train", 72)
    test = data.load_folder_split("landscapes", "test", 150)
    assert len(train) == 9483 and len(test) == 1040
    assert int(train.gray.sum()) == 195 and int(test.gray.sum()) == 21  # as shared/data/README.md states
    assert train.class_names == ["forest", "glacier", "mountain", "sea"]


def test_chroma_min_is_saved_with_the_model_and_decodes_after_loading(tmp_path):
    model = models.get_model("colorizer_6", input_shape=(32, 32, 1))
    colorizer.bin_layer(model).gain, colorizer.bin_layer(model).chroma_min = 0.3, 8.0
    store.save_model(model, tmp_path / "colorizer_6.keras")
    loaded = store.load(tmp_path / "colorizer_6.keras")
    assert colorizer.decode_settings(loaded)["chroma_min"] == 8.0
    assert colorizer.codec(loaded).chroma_min == 8.0
    big = colorizer.at_size(loaded, 64, 48)  # rebuilt for another size: the setting comes along
    assert colorizer.bin_layer(big).chroma_min == 8.0
