"""Training options for colour (issue 23): colorizer_6's near-neutral class weighting and the
colourfulness loss term, on tiny arrays, and a one-epoch run with each that saves and loads."""
import keras
import numpy as np
import pytest

import colorizer
import colour
import contracts
import heads
import metrics
import models
import store
import training
from conftest import synthetic_images


def test_lab_to_rgb_tensor_is_skimages_conversion():
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, 500), rng.uniform(-90, 90, 500), rng.uniform(-90, 90, 500)], -1)
    lab = lab.astype(np.float32)
    got = np.asarray(heads.lab_to_rgb_tensor(lab[:, 0], lab[:, 1], lab[:, 2]))
    np.testing.assert_allclose(got, colour.lab_to_rgb(lab), atol=2e-3)


def test_colourfulness_loss_is_lower_for_a_more_colourful_batch_and_follows_the_metric():
    rng = np.random.default_rng(1)
    vivid = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    muted = (0.5 + 0.2 * (vivid - 0.5)).astype(np.float32)  # the same images, chroma shrunk
    gray = np.repeat(vivid.mean(-1, keepdims=True), 3, -1)
    lv, lm, lg = (np.asarray(heads.colourfulness_loss(x)) for x in (vivid, muted, gray))
    assert lv.shape == (2,) and np.all(lv < lm) and np.all(lm < lg)
    np.testing.assert_allclose(lg, 1.0, atol=1e-4)  # no colour at all: the loss's top
    for i in range(2):  # 1 - colourfulness / 100, the metric the tables report (0-255 RGB)
        np.testing.assert_allclose(lv[i], 1 - metrics.colorfulness(vivid[i:i + 1] * 255) / 100, atol=1e-4)


def test_neutral_weight_raises_the_near_neutral_bins_only():
    centers = contracts.gamut_bins()
    prior = np.random.default_rng(2).uniform(0.1, 1, len(centers))
    prior /= prior.sum()
    plain = heads.rebalance_weights(centers, prior)
    heavy = heads.rebalance_weights(centers, prior, neutral_weight=3.0)
    near = np.hypot(centers[:, 0], centers[:, 1]) <= heads.NEUTRAL_CHROMA
    assert 1 <= near.sum() < len(centers) // 4
    ratio = heavy / plain  # one normalisation for all bins: the near-neutral ones move 3x more
    np.testing.assert_allclose(ratio[near] / ratio[~near].mean(), 3.0, rtol=1e-4)
    np.testing.assert_allclose(ratio[~near], ratio[~near][0], rtol=1e-4)


def _mix_batch(seed=3, n=2, size=8):
    """ab targets, L (tied to the predicted ab: dark where a* > 0, so that pairing a pixel's L with
    another pixel's ab changes the colours), predicted ab and half-resolution logits."""
    rng = np.random.default_rng(seed)
    centers = contracts.gamut_bins()
    ab = rng.uniform(-0.5, 0.5, (n, size, size, 2)).astype(np.float32)
    pred_ab = rng.uniform(-0.2, 0.2, (n, size, size, 2)).astype(np.float32)
    luma = np.where(pred_ab[..., :1] > 0, -0.8, 0.6).astype(np.float32)
    logits = rng.normal(0, 1, (n, size // 2, size // 2, len(centers))).astype(np.float32)
    return centers, ab, luma, pred_ab, logits


def test_colourfulness_term_is_added_in_both_layouts_only_with_the_luma():
    centers, ab, luma, pred_ab, logits = _mix_batch()
    weights = np.ones(len(centers), np.float32)
    plain = heads.MixLoss(centers, weights)
    loss = heads.MixLoss(centers, weights, colourfulness_weight=0.5)
    assert loss.takes_luma and not plain.takes_luma
    probs = np.asarray(keras.ops.softmax(logits, -1))
    inference = np.concatenate([pred_ab, probs.repeat(2, 1).repeat(2, 2)], -1)
    train_layout = np.concatenate([np.asarray(heads.space_to_depth(pred_ab, 2)), logits], -1)
    target = np.concatenate([ab, luma], -1)
    rgb = np.asarray(heads.lab_to_rgb_tensor((luma[..., 0] + 1) * colour.L_SCALE, pred_ab[..., 0] * colour.AB_SCALE,
                                             pred_ab[..., 1] * colour.AB_SCALE))
    term = 0.5 * float(np.mean(np.asarray(heads.colourfulness_loss(rgb))))
    assert 0.05 < term < 0.5
    # each pixel's L paired with another pixel's ab would give other colours, and another term
    wrong = np.asarray(heads.lab_to_rgb_tensor((luma[:, ::-1, :, 0] + 1) * colour.L_SCALE,
                                               pred_ab[..., 0] * colour.AB_SCALE, pred_ab[..., 1] * colour.AB_SCALE))
    assert abs(0.5 * float(np.mean(np.asarray(heads.colourfulness_loss(wrong)))) - term) > 1e-3
    for y_pred in (inference, train_layout):
        base = float(plain(ab, y_pred))
        np.testing.assert_allclose(float(loss(ab, y_pred)), base, rtol=1e-6)      # no luma: no term
        np.testing.assert_allclose(float(plain(target, y_pred)), base, rtol=1e-6)  # no weight: no term
        np.testing.assert_allclose(float(loss(target, y_pred)) - base, term, rtol=1e-4)
    # a more colourful prediction lowers the term
    vivid = np.concatenate([np.asarray(heads.space_to_depth(pred_ab * 1.6, 2)), logits], -1)
    assert float(loss(target, vivid)) - float(plain(target, vivid)) < term


def test_unknown_or_out_of_range_options_are_refused_naming_them(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"colorizer_6 has no training option 'neutral'.*neutral_weight"):
        training.train("colorizer_6", epochs=1, models_dir=tmp_path, model_options={"neutral": 2})
    with pytest.raises(ValueError, match=r"neutral_weight=-1.*from 0.1 to 10"):
        training.train("colorizer_6", epochs=1, models_dir=tmp_path, model_options={"neutral_weight": -1})
    with pytest.raises(ValueError, match=r"colourfulness_weight='much'.*from 0 to 10"):
        models.check_options("colorizer_6", {"colourfulness_weight": "much"})
    with pytest.raises(ValueError, match=r"colorizer_3 has no training option 'neutral_weight'; it takes none"):
        models.check_options("colorizer_3", {"neutral_weight": 2})
    with pytest.raises(ValueError, match=r"must be a dict of name -> number, got 'neutral_weight=3'"):
        models.check_options("colorizer_6", "neutral_weight=3")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        training.main(["colorizer_6", "--option", "neutral_weight", "--models-dir", str(tmp_path)])
    assert "--option 'neutral_weight' is not NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        training.main(["colorizer_6", "--option", "neutral_weight=2", "--option", "neutral_weight=4",
                       "--models-dir", str(tmp_path)])
    assert "--option 'neutral_weight' given twice ('2' and '4')" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a value checked for every model named, before the first trains
        training.main(["colorizer_3", "colorizer_6", "--option", "neutral_weight=99", "--models-dir", str(tmp_path)])
    assert e.value.code == 2 and "colorizer_3 has no training option 'neutral_weight'" in capsys.readouterr().err
    parser = training.argparse.ArgumentParser()
    assert training.parse_options(parser, ["neutral_weight=4", "neutral_weight=4"]) == \
        {"neutral_weight": "4"}  # the same value twice is no conflict
    assert not list(tmp_path.iterdir())
    # values as numbers; a default is no option at all (the same run as one given nothing)
    assert models.check_options("colorizer_6", {"neutral_weight": "3", "colourfulness_weight": 0}) == \
        {"neutral_weight": 3.0}
    # keyed by model (several models trained in turn, as model_train.ipynb may): each its own, checked
    per_model = {"colorizer_6": {"neutral_weight": 3}}
    assert models.check_options("colorizer_6", per_model) == {"neutral_weight": 3.0}
    assert models.check_options("colorizer_3", per_model) == {}
    with pytest.raises(ValueError, match=r"colorizer_6 option neutral_weight=99 is out of range"):
        models.check_options("colorizer_3", {"colorizer_6": {"neutral_weight": 99}, "colorizer_3": {}})  # all, up front
    with pytest.raises(ValueError, match=r"colorizer_6 option neutral_weight='abc' is not a number: it must be a number "
                                         r"from 0.1 to 10"):
        models.check_options("colorizer_6", {"neutral_weight": "abc"})
    with pytest.raises(ValueError, match=r"keyed by model: unknown model .colorizr_3.; choose one of: autoencoder_1"):
        models.check_options("colorizer_6", {"colorizer_6": {"neutral_weight": 3}, "colorizr_3": {}})
    for value in (3, 0):
        with pytest.raises(ValueError, match=rf"colorizer_6's training options must be a dict.*got {value}"):
            models.check_options("colorizer_6", {"colorizer_6": value})
    with pytest.raises(ValueError, match=r"unknown model 'neutral_weight'.*not both"):
        models.check_options("colorizer_6", {"neutral_weight": 3, "colorizer_6": {}})


@pytest.mark.parametrize("options", [{"neutral_weight": 3.0}, {"colourfulness_weight": 0.2}])
def test_a_run_with_a_colour_option_saves_loads_and_records_it(cifar_dir, tmp_path, options, monkeypatch):
    built = []  # the rebalancing weights the builder computed, with and without the option

    def rebalance(centers, prior, **kw):
        built.append((heads.rebalance_weights(centers, prior, **kw), heads.rebalance_weights(centers, prior)))
        return built[-1][0]
    monkeypatch.setattr(models, "rebalance_weights", rebalance)
    lumas = []  # the datasets given each pixel's L for the colourfulness term
    real_with_luma = training.pipelines.with_luma
    monkeypatch.setattr(training.pipelines, "with_luma", lambda ds: lumas.append(ds) or real_with_luma(ds))
    rec = training.train("colorizer_6", epochs=1, batch_size=32, subset=128, data_dir=cifar_dir,
                         models_dir=tmp_path, verbose=0, model_options=options)
    assert rec["config"]["model_options"] == options and np.isfinite(rec["best_val_loss"])
    model = store.load("colorizer_6", tmp_path, "colorizer")
    loss = model.loss
    np.testing.assert_allclose(loss.cls.weights, built[-1][0])  # saved with the model
    near = np.hypot(*loss.cls.centers.T) <= heads.NEUTRAL_CHROMA
    ratio = built[-1][0] / built[-1][1]
    if "neutral_weight" in options:
        np.testing.assert_allclose(ratio[near] / ratio[~near].mean(), 3.0, rtol=1e-4)
        assert not lumas
    else:
        assert len(lumas) == 2  # training and validation
        np.testing.assert_allclose(ratio, 1.0, rtol=1e-6)
        assert loss.colourfulness_weight == 0.2 and loss.takes_luma
    images = synthetic_images(4)
    assert colorizer.predict_rgb(model, images).shape == images.shape
    # the same arguments again: nothing to do; without the option it is another run (refused)
    again = training.train("colorizer_6", epochs=1, batch_size=32, subset=128, data_dir=cifar_dir,
                           models_dir=tmp_path, verbose=0, model_options=options)
    assert again["date"] == rec["date"]
    with pytest.raises(training.RunExists, match="model_options"):
        training.train("colorizer_6", epochs=1, batch_size=32, subset=128, data_dir=cifar_dir, models_dir=tmp_path,
                       verbose=0)
