"""Tests for colorize.py: any photo in, a colour photo of the same size out, nothing overwritten."""
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import colorize
import colorizer
import colour
import models
import store
import photos
from colorizer import Colorizer

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Untrained colorizers saved like trained ones: the pipeline's guarantees hold for any weights."""
    d = tmp_path_factory.mktemp("models")
    for name in ("colorizer_1", "colorizer_3", "colorizer_4"):
        models.get_model(name).save(d / f"{name}.keras")
    models.get_model("autoencoder_1").save(d / "autoencoder_1.keras")
    return d


def _photo(h, w, seed=0):
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w, 1), yy / max(h, 1), 0.5 + 0 * xx], -1) * 255
    return np.clip(base + r.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def _inputs(folder):
    """Every kind of file the issue names; returns {file name: expected (width, height)}."""
    folder.mkdir()
    Image.fromarray(_photo(1, 1)).save(folder / "one.png")
    Image.fromarray(_photo(17, 33)).save(folder / "odd.png")
    Image.fromarray(_photo(700, 1000)).convert("L").save(folder / "big_gray.jpg")
    rgba = np.dstack([_photo(40, 30), np.tile(np.arange(30, dtype=np.uint8) * 8, (40, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    Image.fromarray(_photo(24, 36)).convert("P").save(folder / "palette.gif")
    Image.fromarray((np.tile(np.linspace(0, 65535, 50), (20, 1))).astype(np.uint16)).save(folder / "gray16.png")
    Image.fromarray(_photo(30, 20)).convert("CMYK").save(folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x20, shown rotated: 20 wide, 40 high
    Image.fromarray(_photo(20, 40)).save(folder / "rotated.jpg", exif=exif.tobytes())
    return {"one": (1, 1), "odd": (33, 17), "big_gray": (1000, 700), "alpha": (30, 40), "palette": (36, 24),
            "gray16": (50, 20), "cmyk": (20, 30), "rotated": (20, 40)}


def _input_L(path):
    with Image.open(path) as img:
        return colour.photo_L(np.asarray(photos.pil_to_rgb(img)))


@pytest.mark.parametrize("model_name", ["colorizer_3", "colorizer_1", "colorizer_4"])
def test_cli_every_format_same_size_and_L(tmp_path, models_dir, model_name):
    expected = _inputs(tmp_path / "in")
    code = colorize.main([str(tmp_path / "in"), "-m", model_name, "--models-dir", str(models_dir),
                          "-o", str(tmp_path / "out")])
    assert code == 0
    for stem, size in expected.items():
        src = next((tmp_path / "in").glob(stem + ".*"))
        out = tmp_path / "out" / f"{stem}_color.png"
        with Image.open(out) as img:
            assert img.size == size, stem
            rgb = np.asarray(img.convert("RGB"))
            assert img.mode == ("RGBA" if stem == "alpha" else "RGB"), stem
            if stem == "alpha":
                with Image.open(src) as s:
                    np.testing.assert_array_equal(np.asarray(img.getchannel("A")), np.asarray(s.getchannel("A")))
        assert np.abs(colour.photo_L(rgb) - _input_L(src)).mean() < 1.0, stem


def test_output_is_coloured_by_the_model(tmp_path, models_dir):
    """A model that always predicts a strong red chroma paints a gray photo red, at full size."""
    model = models.get_model("colorizer_3")
    bias = model.get_layer("ab").bias
    model.get_layer("ab").kernel.assign(np.zeros(model.get_layer("ab").kernel.shape, np.float32))
    bias.assign(np.array([0.5, 0.3], np.float32))  # tanh(0.5)·110 = 50.8 a*, tanh(0.3)·110 = 32.1 b*
    gray = Image.fromarray(np.full((90, 130), 140, np.uint8))
    out = colorize.colorize_image(gray, model, working_size=48)
    lab = colour.rgb_to_lab(np.asarray(out))
    assert out.size == (130, 90)
    np.testing.assert_allclose(lab[..., 1].mean(), 110 * np.tanh(0.5), atol=2)
    np.testing.assert_allclose(lab[..., 2].mean(), 110 * np.tanh(0.3), atol=2)


def test_working_size_keeps_aspect_and_stride(models_dir):
    model = colorize.load_colorizer("colorizer_3", models_dir)
    assert Colorizer(model).working_shape(3000, 4000, None) == (32, 40)
    assert Colorizer(model).working_shape(3000, 4000, 128) == (128, 168)
    c1 = colorize.load_colorizer("colorizer_1", models_dir)
    assert Colorizer(c1).working_shape(3000, 4000, None) == (32, 32)
    with pytest.raises(ValueError, match="fixed input size 32x32"):
        Colorizer(c1).working_shape(3000, 4000, 64)


def test_corrupt_and_missing_reported_exit_1(tmp_path, models_dir, capsys):
    (tmp_path / "in").mkdir()
    Image.fromarray(_photo(20, 20)).save(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code = colorize.main([str(tmp_path / "in"), str(tmp_path / "nowhere.png"), "--models-dir", str(models_dir),
                          "-m", "colorizer_3", "-o", str(tmp_path / "out")])
    err = capsys.readouterr()
    assert code == 1
    assert "broken.jpg" in err.err and "nowhere.png" in err.err
    assert (tmp_path / "out" / "good_color.png").exists()
    assert "1 colorized, 0 skipped, 2 failed" in err.out


def test_a_folders_non_image_files_are_left_alone_but_a_named_one_is_tried(tmp_path, models_dir, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(_photo(20, 20)).save(tmp_path / "in" / "good.JPG")  # suffixes in any case
    (tmp_path / "in" / "notes.txt").write_text("taken in 1962")
    (tmp_path / "in" / "sub" / "Thumbs.db").write_bytes(b"\0" * 64)
    args = ["--models-dir", str(models_dir), "-m", "colorizer_3", "-o", str(tmp_path / "out")]
    assert colorize.main([str(tmp_path / "in")] + args) == 0  # company of photos, not failed photos
    out = capsys.readouterr().out
    assert "2 left alone in the folders, not images Pillow reads by their names (.db x1, .txt x1)" in out
    assert "1 colorized, 0 skipped, 0 failed" in out and f"-> {tmp_path / 'out'}/" in out
    assert sorted(f.name for f in (tmp_path / "out").rglob("*")) == ["good_color.png"]
    assert colorize.main([str(tmp_path / "in" / "notes.txt")] + args) == 1  # named: tried, and it is no image
    err = capsys.readouterr()
    assert "notes.txt: not a readable image" in err.err
    assert "0 colorized, 0 skipped, 1 failed" in err.out and "->" not in err.out  # nothing written there
    (tmp_path / "phone").mkdir()  # formats Pillow does not read (HEIC), or names without decoding (MPEG video)
    for name in ("IMG_0001.HEIC", "IMG_0002.heic", "clip.mpg", "scan"):
        (tmp_path / "phone" / name).write_bytes(b"\0" * 64)
    assert colorize.main([str(tmp_path / "phone")] + args) == 1  # nothing there to colorize: not a success
    err = capsys.readouterr()
    assert "4 left alone in the folders, not images Pillow reads by their names (.heic x2, .mpg x1, no suffix x1)" in err.out
    assert "error: the folders hold no photo to colorize" in err.err and "0 colorized, 0 skipped, 0 failed" in err.out
    (tmp_path / "empty").mkdir()
    assert colorize.main([str(tmp_path / "empty")] + args) == 1  # an empty folder: the same mistake
    assert "error: the folders hold no photo" in capsys.readouterr().err


def test_never_overwrites(tmp_path, models_dir, capsys):
    (tmp_path / "in").mkdir()
    Image.fromarray(_photo(20, 20)).save(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_color.png").write_bytes(b"precious")
    args = [str(tmp_path / "in"), "--models-dir", str(models_dir), "-m", "colorizer_3", "-o", str(out)]
    assert colorize.main(args) == 0  # an existing output is skipped, not a failure (a re-run of a batch)
    assert (out / "a_color.png").read_bytes() == b"precious"
    assert "skipped" in capsys.readouterr().out
    assert colorize.main(args + ["--overwrite", "--compare"]) == 0
    with Image.open(out / "a_color.png") as img, Image.open(out / "a_compare.png") as cmp_:
        assert img.size == (20, 20) and cmp_.size == (40, 20)
    # the output folder is the input folder: an input named like an output is never replaced
    (tmp_path / "same").mkdir()
    Image.fromarray(_photo(20, 20)).save(tmp_path / "same" / "b_color.png")
    Image.fromarray(_photo(20, 20)).save(tmp_path / "same" / "b.png")
    before = (tmp_path / "same" / "b_color.png").read_bytes()
    assert colorize.main([str(tmp_path / "same" / "b.png"), str(tmp_path / "same" / "b_color.png"), "--overwrite",
                          "--models-dir", str(models_dir), "-m", "colorizer_3", "-o", str(tmp_path / "same")]) == 1
    assert (tmp_path / "same" / "b_color.png").read_bytes() == before


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "colorize.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
                                         "HOME": str(pathlib.Path.home())})


def test_unknown_model_exit_2_with_names(tmp_path):
    r = _cli("x.png", "-m", "colorizer_9", "--models-dir", str(tmp_path))
    assert r.returncode == 2
    assert "colorizer_9" in r.stderr and all(n in r.stderr for n in models.list_models("colorizer"))


def test_untrained_model_says_how_to_train(tmp_path):
    r = _cli("x.png", "-m", "colorizer_5", "--models-dir", str(tmp_path))
    assert r.returncode == 2
    assert f"python training.py colorizer_5 --models-dir {tmp_path}" in r.stderr


def test_autoencoder_is_not_a_colorizer(models_dir, tmp_path):
    with pytest.raises(ValueError, match="'autoencoder_1' is an autoencoder, not a colorizer; choose one of: colorizer_1"):
        colorize.load_colorizer("autoencoder_1", models_dir)
    with pytest.raises(ValueError, match="autoencoder_2"):  # refused by its name, whether trained or not
        colorize.load_colorizer("autoencoder_2", tmp_path)
    with pytest.raises(ValueError, match=r"Unknown colorizer 'bogus'; choose one of: colorizer_1, colorizer_2, ") as e:
        colorize.load_colorizer("bogus", models_dir)
    assert "autoencoder" not in str(e.value).split("(")[0]  # only what colorize.py can use is offered
    with pytest.raises(ValueError, match="autoencoder, not a colorizer; choose one of: colorizer_1, colorizer_2"):
        colorize.load_colorizer(str(models_dir / "autoencoder_1.keras"))


def test_a_working_size_a_fixed_size_model_cannot_take_is_one_usage_error(models_dir, tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(_photo(40, 50, seed=i)).save(photos / f"p{i}.png")
    r = _cli(str(photos), "-m", "colorizer_1", "--models-dir", str(models_dir), "--working-size", "64",
             "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.count("--working-size: colorizer_1 has a fixed input size 32x32; --working-size 64 is not possible") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _red_model():
    """colorizer_3 whose output is a constant chroma (a*, b*) = 110·tanh(0.3), 110·tanh(0.2)."""
    model = models.get_model("colorizer_3")
    model.get_layer("ab").kernel.assign(np.zeros(model.get_layer("ab").kernel.shape, np.float32))
    model.get_layer("ab").bias.assign(np.array([0.3, 0.2], np.float32))
    return model


@pytest.mark.parametrize("s", [0.0, 0.5, 2.0])
def test_saturation_scales_chroma_keeps_L(s):
    model = _red_model()
    gray = Image.fromarray(np.full((40, 56), 120, np.uint8))
    lab = colour.rgb_to_lab(np.asarray(colorize.colorize_image(gray, model, saturation=s)))
    np.testing.assert_allclose(lab[..., 1].mean(), s * 110 * np.tanh(0.3), atol=1.5)
    np.testing.assert_allclose(lab[..., 2].mean(), s * 110 * np.tanh(0.2), atol=1.5)
    np.testing.assert_allclose(lab[..., 0].mean(), colour.photo_L(np.full((1, 1, 3), 120, np.uint8)).mean(), atol=1.0)


def test_cli_rejects_bad_saturation(tmp_path, models_dir, capsys):
    for bad in ("-1", "nan", "9"):
        with pytest.raises(SystemExit) as e:
            colorize.main(["x.png", "--models-dir", str(models_dir), "--saturation", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--saturation: saturation must be a number from 0 to 5" in err and bad in err.lower()


def test_run_files_and_required_models_come_from_the_store(tmp_path):
    import store
    p = store.run_paths("colorizer_6", tmp_path, "landscapes")
    assert p["final"] == tmp_path / "landscapes" / "colorizer_6.keras"
    assert p["best"] == tmp_path / "landscapes" / "colorizer_6.run" / "best.keras"
    assert p["lock"].name == "colorizer_6.lock" and p["record"].suffix == ".json"
    assert store.required_models("colorizer_3", tmp_path) == {}
    with pytest.raises(FileNotFoundError, match="colorizer_2 builds on a trained autoencoder_1"):
        store.required_models("colorizer_2", tmp_path)


def test_colorizer_keeps_one_model_per_size_and_predicts_at_the_images_size():
    from conftest import assert_images_match, synthetic_images
    model = models.get_model("colorizer_3")
    c = Colorizer(model)
    assert c.at(32, 32) is model and c.at(48, 64) is c.at(48, 64) and c.at(48, 64) is not model
    imgs = synthetic_images(3, 48)
    # two paths to one prediction: compared with the cross-CPU tolerance (see conftest)
    assert_images_match(c.predict_rgb(imgs), colorizer.predict_rgb(colorizer.at_size(model, 48, 48), imgs))
    with pytest.raises(ValueError, match="autoencoder_1' is an autoencoder, not a colorizer"):
        Colorizer(models.get_model("autoencoder_1"))


def test_a_loaded_colorizer_runs_at_any_size_without_a_rebuild(models_dir, tmp_path):
    """store.load(any_size=True): one copy with the input's height and width left open, and its
    compiled forward pass, serve every photo size and predict what the model rebuilt for that size
    predicts."""
    from conftest import assert_images_match, synthetic_images
    model, runner, forward = store.load("colorizer_3", models_dir, any_size=True)
    assert model.input_shape == (None, 32, 32, 1) and runner.input_shape == (None, None, None, 1)
    assert [w.shape for w in runner.weights] == [w.shape for w in model.weights]
    imgs = synthetic_images(2, 48)[:, :, :40]
    rebuilt = colorizer.predict_rgb(colorizer.at_size(model, 48, 40), imgs)
    assert_images_match(colorizer.predict_rgb(runner, imgs), rebuilt)
    assert_images_match(colorizer.predict_rgb(model, imgs, forward=forward), rebuilt)
    assert forward(np.zeros((1, 24, 56, 1), np.float32)).shape == (1, 24, 56, 2)  # any size, no rebuild
    c = Colorizer.load("colorizer_3", models_dir)
    assert c.trained_size == (32, 32) and c.at(48, 40) is c.runner and c.at(96, 64) is c.runner
    assert c.forward is not None and c.runs_at(48, 40) == (c.model, c.forward)
    assert Colorizer(model).runs_at(48, 40)[1] is None  # a model given alone: rebuilt for the size
    assert c.working_shape(300, 200) == (48, 32)  # the trained size still sets the working size
    with pytest.raises(ValueError, match="divisible by 8, got 30x64"):
        c.at(30, 64)
    bins, bins_runner, bins_forward = store.load("colorizer_4", models_dir, any_size=True)  # probabilities repeated 2x2
    imgs = synthetic_images(1, 48)[:, :, :40]
    rebuilt = colorizer.predict_rgb(colorizer.at_size(bins, 48, 40), imgs)
    assert_images_match(colorizer.predict_rgb(bins_runner, imgs), rebuilt)
    assert_images_match(colorizer.predict_rgb(bins, imgs, forward=bins_forward), rebuilt)
    models.get_model("colorizer_5").save(tmp_path / "colorizer_5.keras")
    gan, gan_runner, gan_forward = store.load(tmp_path / "colorizer_5.keras", any_size=True)
    assert gan_runner is None and gan_forward is None and Colorizer(gan).at(48, 40) is not gan  # Pix2Pix: rebuilt per size
    nested = models.get_model("colorizer_2")  # its decoder is an inner model with its own fixed input
    nested.save(tmp_path / "colorizer_2.keras")
    assert store.load(tmp_path / "colorizer_2.keras", any_size=True)[1:] == (None, None)


@pytest.mark.parametrize("name", ["colorizer_3", "colorizer_4", "colorizer_6", "colorizer_7"])
def test_every_shipped_landscape_model_runs_compiled_at_any_size(name):
    """The shipped landscape colorizers load with their compiled any-size forward pass (a silent
    fallback would rebuild per size), and it predicts what the model itself predicts."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = Colorizer.load(f"landscapes/{name}")
    assert not [w for w in caught if "forward pass could not be built" in str(w.message)]
    assert c.forward is not None and c.runner.input_shape[1:3] == (None, None)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, c.model.input_shape[-1])).astype(np.float32)
    np.testing.assert_allclose(np.asarray(c.forward(x)), np.asarray(c.model(x, training=False)), atol=1e-4)


def test_shipped_models_are_found_from_any_working_directory(tmp_path, monkeypatch):
    """`cd elsewhere && python <repo>/colorize.py photo.jpg` finds the shipped default (issue 25, case 3);
    a models_dir given explicitly is not replaced."""
    import store
    monkeypatch.chdir(tmp_path)
    p = store.resolve("landscapes/colorizer_6")
    assert p.exists() and p == store.SHIPPED_DIR / "landscapes" / "colorizer_6.keras"
    with pytest.raises(store.ModelNotTrained, match="not trained yet"):
        store.resolve("landscapes/colorizer_6", models_dir=tmp_path / "mine")
    # a model that is not published: train your own into runs/models, never into saved_models
    with pytest.raises(store.ModelNotTrained, match=r"(?s)landscapes/colorizer_5 is not among the published models .*"
                                                    r"python training.py colorizer_5 --data landscapes\n.*"
                                                    r"--models-dir runs/models") as e:
        store.resolve("landscapes/colorizer_5")
    assert "--models-dir saved_models" not in str(e.value)
    for published in ("saved_models/", store.SHIPPED_DIR, str(store.SHIPPED_DIR) + "/"):  # however it is written
        with pytest.raises(store.ModelNotTrained, match="is not among the published models"):
            store.resolve("landscapes/colorizer_5", models_dir=published)


def test_tta_averages_the_photo_and_its_mirror_before_decoding(models_dir, tmp_path):
    """--tta: the raw outputs of a photo and of its mirror image (mirrored back), averaged, then decoded:
    a class head's probabilities stay a distribution; the command line gives what Python gives."""
    bins = store.load(str(models_dir / "colorizer_4.keras"))
    x = _photo(32, 32, seed=3)[None]
    np.testing.assert_allclose(colorizer.predict(bins, x, decode=None, flip=True).sum(-1), 1.0, atol=1e-4)
    keras.utils.set_random_seed(0)  # the trunk's random weights too: the margins below hold for this model
    model = models.get_model("colorizer_3")  # strong random chroma weights: far from mirror-symmetric
    kernel = model.get_layer("ab").kernel
    kernel.assign(np.random.default_rng(0).normal(0, 0.5, kernel.shape).astype(np.float32))
    model.save(tmp_path / "colorizer_3.keras")
    raw = colorizer.predict(model, x, decode=None)
    mirrored = colorizer.predict(model, x[:, :, ::-1], decode=None)[:, :, ::-1]
    np.testing.assert_allclose(colorizer.predict(model, x, decode=None, flip=True), (raw + mirrored) / 2, atol=1e-5)
    assert np.abs(raw - mirrored).max() > 0.05  # the flip matters for this model
    photo = _photo(40, 56, seed=4)
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert colorize.main([str(tmp_path / "p.png"), "-m", "colorizer_3", "--models-dir", str(tmp_path),
                          "-o", str(tmp_path / "out"), "--tta"]) == 0
    tta = Colorizer.load("colorizer_3", tmp_path, tta=True).colorize_array(photo)
    plain = Colorizer.load("colorizer_3", tmp_path).colorize_array(photo)
    written = np.asarray(Image.open(tmp_path / "out" / "p_color.png"))
    assert written.shape == photo.shape and np.abs(written.astype(int) - tta).max() <= 1
    assert np.abs(tta.astype(int) - plain).max() > 2
    with pytest.raises(ValueError, match="tta must be True or False, got 'yes'"):
        Colorizer.load("colorizer_3", tmp_path, tta="yes")
