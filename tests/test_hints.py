"""Colour hints (the L+hints contract, colorizer_7): simulated in training, painted from a user's
points, refused where they cannot apply, on the command line and in Python."""
import json

import numpy as np
import pytest
from PIL import Image

import colorize
import colour
import contracts
import models
import store
import training
from colorizer import Colorizer

HINTS = contracts.get("L+hints", "ab")


def test_hint_contract_has_its_own_codec_and_channels():
    assert (HINTS.input_channels, HINTS.target_channels) == (4, 2)
    assert models.MODELS["colorizer_7"].contract is HINTS
    assert contracts.get("L", "ab").input_channels == 1  # the other contracts are untouched


def test_painted_hints_sit_where_they_were_given():
    out = contracts.paint_hints((2, 16, 16), [[(5, 7, 33.0, -22.0)], []])
    assert out.shape == (2, 16, 16, 3) and out[1].sum() == 0
    assert out[0, ..., 2].sum() == contracts.HINT_PATCH ** 2 and out[0, 5, 7, 2] == 1
    np.testing.assert_allclose(out[0, 5, 7, :2], np.array([33.0, -22.0]) / colour.AB_SCALE)
    corner = contracts.paint_hints((1, 8, 8), [[(0, 0, 10.0, 10.0)]])  # clipped at the border, not wrapped
    assert corner[0, ..., 2].sum() == 4 and corner[0, 7, 7, 2] == 0


def test_simulated_hints_hold_the_true_mean_chroma_and_none_on_gray_photos():
    rng = np.random.default_rng(0)
    ab = rng.uniform(-0.5, 0.5, (200, 16, 16, 2)).astype(np.float32)
    ab[:20] = 0  # black-and-white photos
    hints = contracts.simulate_hints(ab, np.random.default_rng(1))
    has = hints[..., 2].reshape(200, -1).max(1) > 0
    assert not has[:20].any()
    assert 0.3 < 1 - has[20:].mean() < 0.7  # about half of the colour photos get no hint
    i = int(np.flatnonzero(has)[0])
    r, c = np.argwhere(hints[i, ..., 2] > 0)[0]
    assert np.abs(hints[i, r, c, :2]).max() <= 0.5  # a mean of true chroma values
    x, y = HINTS.codec(seed=3).pair(rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    assert x.shape == (4, 16, 16, 4) and y.shape == (4, 16, 16, 2)


@pytest.fixture(scope="module")
def hint_model(tmp_path_factory, cifar_dir):
    d = tmp_path_factory.mktemp("hints")
    rec = training.train("colorizer_7", epochs=1, subset=200, data_dir=cifar_dir, models_dir=d, verbose=0)
    assert rec["epochs_run"] == 1 and rec["inputs"] == "L+hints"
    return store.load(d / "colorizer_7.keras")


def test_a_trained_hint_model_loads_and_follows_a_hint_where_it_is_given(hint_model):
    c = Colorizer(hint_model)
    photo = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    plain = c.colorize_array(photo)
    hinted = c.colorize_array(photo, hints=[(40, 30, "#3fa7b5")])
    assert plain.shape == hinted.shape == (60, 80, 3)
    assert np.abs(hinted.astype(int) - plain)[25:35, 35:45].max() > 0  # the input changed there
    np.testing.assert_array_equal(c.colorize_array(photo, hints=[]), plain)  # no hint: as without


def test_bad_hints_are_refused_naming_the_value(hint_model):
    c = Colorizer(hint_model)
    photo = np.zeros((60, 80, 3), np.uint8)
    with pytest.raises(ValueError, match=r"x=80, y=10 is outside the 80x60 photo"):
        c.colorize_array(photo, hints=[(80, 10, "red")])
    with pytest.raises(ValueError, match="'blurple' is not a colour"):
        c.colorize_array(photo, hints=[(1, 1, "blurple")])
    with pytest.raises(ValueError, match=r"colorizer_3 does not take colour hints .* colorizer_7 \(published: -m landscapes/colorizer_7\)"):
        Colorizer(models.get_model("colorizer_3")).colorize_array(photo, hints=[(1, 1, "red")])


def test_command_line_hints(tmp_path, hint_model, capsys):
    d = tmp_path / "models"
    store.save_model(hint_model, d / "colorizer_7.keras")
    store.save_model(models.get_model("colorizer_3"), d / "colorizer_3.keras")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    (tmp_path / "h.json").write_text(json.dumps([{"x": 3, "y": 4, "color": "purple"}]))
    base = [str(tmp_path / "p.png"), "--models-dir", str(d), "-m", "colorizer_7"]
    assert colorize.main(base + ["-o", str(tmp_path / "o1"), "--hint", "10,20,#3fa7b5", "--hints",
                                 str(tmp_path / "h.json")]) == 0
    assert Image.open(tmp_path / "o1" / "p_color.png").size == (50, 40)
    assert colorize.main(base + ["-o", str(tmp_path / "o2"), "--hint", "60,5,red"]) == 1  # outside this photo
    assert "x=60, y=5 is outside the 50x40 photo" in capsys.readouterr().err
    # an RGB triple on the command line is the same colour as its #rrggbb
    assert colorize.parse_hints(["10,20,0.25,0.655,0.71"]) == [(10, 20, (0.25, 0.655, 0.71))]
    assert colorize.main(base + ["-o", str(tmp_path / "o4"), "--hint", "10,20,0.2471,0.6549,0.7098"]) == 0
    assert colorize.main(base + ["-o", str(tmp_path / "o5"), "--hint", "10,20,#3fa7b5"]) == 0  # (63, 167, 181)
    as_triple, as_hex = (np.asarray(Image.open(tmp_path / o / "p_color.png"), int) for o in ("o4", "o5"))
    assert np.abs(as_triple - as_hex).max() <= 1
    for bad, match in [(["--hint", "10;20;red"], "is not X,Y,COLOUR"), (["--hint", "1,2,nocolour"], "not a colour"),
                       (["--hint", "1,2,0.5,x,0.1"], "an RGB colour is three numbers in [0, 1], got '0.5,x,0.1'"),
                       (["--hint", "1,2,0.5,0.2"], "is not X,Y,COLOUR"), (["--hint", "1,2,0.5,2,0.1"], "0.5, 2.0, 0.1"),
                       (["--hint", "1,2,nan,0,0"], "(nan, 0.0, 0.0) is not a colour"),
                       (["-m", "colorizer_3", "--hint", "1,2,red"], "does not take colour hints"),
                       (["--hints", str(tmp_path / "missing.json")], "missing.json: cannot read it (No such file or directory)"),
                       (["--hints", str(tmp_path / "p.png")], "p.png: not a JSON list")]:  # a binary file, named as such
        with pytest.raises(SystemExit):
            colorize.main(base + ["-o", str(tmp_path / "o3")] + bad)
        assert match in capsys.readouterr().err


def test_notebook_hint_picker_adds_undoes_and_refuses_hints(hint_model):
    import plots
    c = Colorizer(hint_model)
    photo = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    picker = plots.HintPicker(c, photo, [(10, 10, "red")], interactive=False)
    shown = picker.result.get_array()
    np.testing.assert_array_equal(shown, np.asarray(c.colorize_photo(photo, hints=[(10, 10, "red")])))
    image = picker.add(40, 30, "#3fa7b5")  # a click at (40, 30) with the picker's colour
    assert picker.hints == [(10, 10, "red"), (40, 30, "#3fa7b5")]
    np.testing.assert_array_equal(np.asarray(image), np.asarray(c.colorize_photo(photo, hints=picker.hints)))
    assert picker.marks.get_offsets().tolist() == [[10, 10], [40, 30]]
    with pytest.raises(ValueError, match=r"x=90, y=5 is outside the 80x60 photo"):
        picker.add(90, 5, "red")
    assert len(picker.hints) == 2  # a refused hint is not kept
    picker.undo()
    assert picker.hints == [(10, 10, "red")]
    picker.clear()
    np.testing.assert_array_equal(picker.result.get_array(), np.asarray(c.colorize_photo(photo)))


def test_ground_truth_hints_are_nested_and_hold_the_patch_colour():
    import evaluation
    photos = np.zeros((2, 20, 30, 3), np.uint8)
    photos[:, :, :15] = (200, 40, 10)
    few, more = evaluation.ground_truth_hints(photos, 2, seed=3), evaluation.ground_truth_hints(photos, 5, seed=3)
    assert [len(p) for p in more] == [5, 5] and [p[:2] for p in more] == few  # more hints add, never redraw
    checked = 0
    for x, y, c in more[0] + more[1]:
        assert 0 <= x < 30 and 0 <= y < 20
        if x <= 11:  # the 7x7 square lies in the red half
            np.testing.assert_allclose(c, (200 / 255, 40 / 255, 10 / 255))
            checked += 1
        elif x >= 18:  # ... in the black half
            assert c == (0.0, 0.0, 0.0)
            checked += 1
    assert checked >= 3
    assert evaluation.ground_truth_hints(photos[1:], 2, seed=3, ids=[1]) == few[1:]  # seeded by the photo's index
    pred = photos.copy()
    err = evaluation.hint_errors(pred, [[(3, 3, (200 / 255, 40 / 255, 10 / 255))], [(25, 3, "black")]])
    assert err.shape == (2,) and err[0] < 0.5 and err[1] < 0.5  # each pixel is exactly its hint's colour
    assert evaluation.hint_errors(pred, [[(25, 3, (200 / 255, 40 / 255, 10 / 255))], []])[0] > 40


def test_hinted_pixels_come_back_in_the_hint_colour(hint_model):
    """The hint codec shows a hint's own chroma on its square (whatever the model predicts there), so
    a hinted pixel comes back within 3 ab units of its colour wherever that colour exists at the
    pixel's lightness (hint_reach)."""
    import evaluation
    c = Colorizer(hint_model)
    photo = np.full((1, 60, 80, 3), 118, np.uint8)  # mid gray: L* about 50
    hints = [[(40, 30, "#3fa7b5"), (10, 50, (0.6, 0.45, 0.3))]]
    out = c.colorize_array(photo, hints=hints)
    assert evaluation.hint_reach(photo, hints).max() < 1
    assert evaluation.hint_errors(out, hints).max() < 3
    plain = c.colorize_array(photo)
    assert evaluation.hint_errors(plain, hints).max() > 10  # without the hint: not that colour
    dark = np.full((1, 60, 80, 3), 12, np.uint8)  # a vivid colour on a nearly black pixel: out of gamut
    assert evaluation.hint_reach(dark, [[(40, 30, "#00ff00")]])[0] > 10
