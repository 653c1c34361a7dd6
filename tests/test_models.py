"""Tests for models.py, sweeping the registry."""
import numpy as np
import pytest
import keras

import colorizer
import colour
import contracts
import data
import heads
import models
from conftest import assert_images_match, synthetic_images

ALL = models.list_models()
COLORIZERS = models.list_models("colorizer")


def _input(model, n=2, seed=0):
    inputs, _ = models.contract(model)
    shape = (n,) + tuple(model.input_shape[1:])
    x = np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)
    return x * 2 - 1 if inputs == "L" else x


def test_registry_lists_and_families():
    assert models.list_models("autoencoder") == ["autoencoder_1", "autoencoder_2", "autoencoder_3"]
    assert COLORIZERS == [f"colorizer_{i}" for i in range(1, 8)]
    assert set(ALL) == set(models.MODELS)
    with pytest.raises(ValueError, match="'painter'.*autoencoder, colorizer"):
        models.list_models("painter")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        models.get_model("colorizer_9")
    assert "'colorizer_9'" in str(e.value)
    for name in ALL:
        assert name in str(e.value)


@pytest.mark.parametrize("name", ALL)
def test_builds_runs_and_has_contract(name):
    model = models.get_model(name)
    assert model.name == name and model.compiled
    inputs, outputs = models.contract(model)
    assert models.contract(name) == (inputs, outputs)
    assert model.input_shape[-1] == {"rgb": 3, "gray": 1, "L": 1, "L+hints": 4}[inputs]
    y = np.asarray(model(_input(model), training=False))
    expected_channels = {"rgb": 3, "ab": 2, "ab_bins": None, "ab_mix": None}[outputs]
    assert y.shape[:3] == (2, 32, 32)
    if outputs == "rgb":
        assert y.shape[-1] == 3 and 0 <= y.min() and y.max() <= 1
    elif outputs == "ab":
        assert y.shape[-1] == expected_channels and -1 <= y.min() and y.max() <= 1
    elif outputs == "ab_mix":  # regression ab, then probabilities over the ab bins
        assert y.shape[-1] == 2 + len(colorizer.codec(model).centers)
        assert -1 <= y[..., :2].min() and y[..., :2].max() <= 1
        np.testing.assert_allclose(y[..., 2:].sum(-1), 1.0, atol=1e-4)
    else:  # probabilities over the ab bins
        assert y.shape[-1] == len(colorizer.codec(model).centers)
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_layer_names_unique_and_prefixed(name):
    model = models.MODELS[name].builder()
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    sub = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    for m in sub:  # nested encoder/decoder/generator layers are unique too
        inner = [layer.name for layer in m.layers]
        assert len(inner) == len(set(inner))


def test_colorizer_1_is_the_keras_book_model():
    model = models.get_model("colorizer_1")
    assert model.count_params() == 3_431_811
    assert model.get_layer("latent").units == 256
    assert model.loss == "mse"


@pytest.mark.parametrize("name", models.list_models("autoencoder"))
def test_autoencoders_expose_encoder_and_decoder(name):
    model = models.get_model(name)
    enc, dec = model.get_layer("encoder"), model.get_layer("decoder")
    x = _input(model)
    z = enc(x)
    np.testing.assert_allclose(np.asarray(dec(z)), np.asarray(model(x)), atol=1e-6)
    ratio = np.prod(x.shape[1:]) / np.prod(z.shape[1:])
    assert ratio > 1, f"{name} does not compress: {ratio}"
    assert f"{ratio:g}x" in models.MODELS[name].builder.__doc__  # the docstring states the ratio


@pytest.mark.parametrize("name,shape", [("colorizer_3", (48, 64, 1)), ("colorizer_4", (24, 40, 1)),
                                        ("colorizer_5", (16, 16, 1)), ("autoencoder_1", (20, 36, 3)),
                                        ("colorizer_2", (12, 8, 1))])
def test_fully_convolutional_models_take_other_sizes(name, shape):
    model = models.get_model(name, input_shape=shape)
    y = model(np.zeros((1,) + shape, np.float32))
    assert tuple(y.shape[1:3]) == shape[:2]


@pytest.mark.parametrize("name", ALL)
def test_save_load_identical_predictions(name, tmp_path):
    model = models.get_model(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode, no custom_objects
    assert loaded.name == name and type(loaded) is type(model)
    x = _input(model, n=3, seed=1)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)), atol=1e-6)


def test_colorizer_2_reuses_frozen_autoencoder_decoder():
    ae = models.get_model("autoencoder_1")
    for w in ae.get_layer("decoder").weights:
        w.assign(np.random.default_rng(0).normal(0, 0.05, w.shape).astype("float32"))
    c2 = models.get_model("colorizer_2", autoencoder_1=ae)
    dec = c2.get_layer("decoder")
    assert not dec.trainable
    for a, b in zip(dec.get_weights(), ae.get_layer("decoder").get_weights()):
        np.testing.assert_array_equal(a, b)
    trainable = {id(v) for v in c2.trainable_weights}
    assert not any(id(v) in trainable for v in dec.weights)


# ----------------------------------------------------------------------------- colorizer_4 maths

def test_rebalance_weights_hand_worked():
    # two far-apart bins: smoothing leaves p = (0.75, 0.25); λ = 0.5, Q = 2
    # mix = (0.5*0.75 + 0.25, 0.5*0.25 + 0.25) = (0.625, 0.375) -> 1/mix = (1.6, 2.667)
    # E_p[1/mix] = 0.75*1.6 + 0.25*2.667 = 1.8667 -> w = (0.857, 1.429)
    w = heads.rebalance_weights([[0, 0], [100, 100]], [0.75, 0.25])
    np.testing.assert_allclose(w, [1.6 / 1.86667, 2.66667 / 1.86667], rtol=1e-4)
    # λ = 1 -> uniform weights; rare colours weigh more for λ < 1
    np.testing.assert_allclose(heads.rebalance_weights([[0, 0], [100, 100]], [0.9, 0.1], lam=1.0), [1, 1])
    # neighbouring bins share mass through the σ=5 Gaussian: exp(-100/50) = 0.1353 at distance 10
    w2 = heads.rebalance_weights([[0, 0], [10, 0]], [1.0, 0.0], lam=0.0)
    smooth = np.array([1.0, 0.1353353]) / 1.1353353
    np.testing.assert_allclose(w2, 1 / smooth / (smooth * (1 / smooth)).sum(), rtol=1e-5)


def test_annealed_mean_hand_worked():
    centers = [[0, 0], [10, 0]]
    p = [0.75, 0.25]
    np.testing.assert_allclose(contracts.annealed_mean(p, centers, T=1.0), [2.5, 0], atol=1e-6)  # the mean
    np.testing.assert_allclose(contracts.annealed_mean(p, centers, T=0.01), [0, 0], atol=1e-6)  # the mode
    # T=0.38: 0.75^(1/0.38) = 0.46905, 0.25^(1/0.38) = 0.026036 -> weight of bin 2 = 0.05259
    np.testing.assert_allclose(contracts.annealed_mean(p, centers, T=0.38), [0.5259, 0], atol=1e-3)


def test_ab_bin_stats_counts_grid_cells():
    ab = np.array([[1, 2], [3, -4], [12, 0], [-58, 61]], np.float32)
    centers, prior = contracts.ab_bin_stats(ab)
    assert centers.tolist() == [[-60, 60], [0, 0], [10, 0]]
    np.testing.assert_allclose(prior, [0.25, 0.5, 0.25])


def test_colorizer_4_uses_data_bins():
    imgs = synthetic_images(8)
    kw = models.MODELS["colorizer_4"].data_kwargs(imgs)
    model = models.get_model("colorizer_4", **kw)
    assert model.output_shape[-1] == len(kw["centers"]) < len(contracts.gamut_bins())
    np.testing.assert_array_equal(colorizer.codec(model).centers, kw["centers"])


def test_rebalanced_loss_prefers_the_true_bin():
    centers = np.array([[0, 0], [50, 0], [0, 50]], np.float32)
    loss = heads.RebalancedBinLoss(centers, [1.0, 1.0, 1.0])
    y_true = np.full((1, 1, 1, 2), [50 / colour.AB_SCALE, 0], np.float32)
    right = np.array([[[[0.05, 0.9, 0.05]]]], np.float32)
    wrong = np.array([[[[0.9, 0.05, 0.05]]]], np.float32)
    assert float(loss(y_true, right)) < float(loss(y_true, wrong))
    np.testing.assert_allclose(float(loss(y_true, right)), -np.log(0.9), rtol=1e-3)



def test_soft_targets_from_the_table_match_the_exact_encoding():
    """The looked-up soft encoding (training) is Zhang et al.'s Gaussian over every bin at the
    target's own ab (validation), within the half unit a target moves to its cell's centre; the
    weight is the nearest bin's."""
    rng = np.random.default_rng(0)
    centers = contracts.gamut_bins()
    weights = rng.uniform(0.5, 2.0, len(centers)).astype(np.float32)
    loss = heads.RebalancedBinLoss(centers, weights)
    ab = rng.uniform(-80, 80, (2, 5, 7, 2)).astype(np.float32)
    soft, w = (np.asarray(v) for v in loss.table_targets(ab / colour.AB_SCALE))
    exact, exact_w = (np.asarray(v) for v in loss.soft_targets(ab / colour.AB_SCALE))
    assert soft.shape == exact.shape == (2, 5, 7, len(centers)) and np.allclose(soft.sum(-1), 1, atol=1e-5)
    # σ = 5 makes the encoding steep: half a unit moves a bin's share by up to ~0.1
    assert np.abs(soft - exact).max() < 0.15 and np.abs(soft - exact).sum(-1).mean() < 0.1
    # a pixel near a tie may take either bin: half a unit moves |ab - c|² by up to ~15 for bins 10 apart
    d2 = np.sort(((ab[..., None, :] - centers) ** 2).sum(-1), -1)
    clear = d2[..., 1] - d2[..., 0] > 30 * heads.AB_TABLE_STEP
    assert clear.mean() > 0.5 and np.array_equal(w[clear], exact_w[clear])
    edge = loss.table_targets(np.full((1, 1, 1, 2), 1.0, np.float32))[0]  # beyond the grid: its edge
    assert np.allclose(np.asarray(loss.table_targets(np.full((1, 1, 1, 2), 5.0, np.float32))[0]), np.asarray(edge))
    # a NaN target (a corrupt photo) makes the training loss NaN, for TerminateOnNaN, rather than an
    # index outside the table or a finite loss that trains towards gray: colorizer_4's loss has no L1
    bad = np.zeros((1, 4, 4, 2), np.float32)
    bad[0, 2, 2, 1] = np.nan  # a pixel the half-resolution class head reads (every second one)
    soft, w = (np.asarray(v) for v in loss.table_targets(bad))
    assert np.isfinite(soft).all() and np.isnan(w[0, 2, 2]) and np.isfinite(np.delete(w.ravel(), 10)).all()
    logits = np.zeros((1, 4, 4, len(centers)), np.float32)
    assert np.isnan(float(keras.ops.mean(loss.from_logits(bad, logits))))
    assert np.isfinite(float(keras.ops.mean(loss.from_logits(np.zeros_like(bad), logits))))
    mix = heads.MixLoss(centers, weights)
    y_pred = np.zeros((1, 2, 2, 8 + len(centers)), np.float32)  # ABMix's training layout
    assert np.isnan(float(mix(bad, y_pred))) and np.isfinite(float(mix(np.zeros_like(bad), y_pred)))


# ----------------------------------------------------------------------------- learning


def _fit(model, imgs, epochs, batch_size=16):
    inputs, outputs = models.contract(model)
    ds = data.make_dataset(imgs, contracts.get(inputs, outputs), batch_size=batch_size, seed=0)
    return model.fit(ds, epochs=epochs, verbose=0).history["loss"]


@pytest.mark.parametrize("name", COLORIZERS)
def test_colorizers_learn_colour_from_luminance(name):
    keras.utils.set_random_seed(0)
    imgs = synthetic_images(256, seed=1)
    builder, kwargs = models.MODELS[name], {}
    for required in builder.requires:  # colorizer_2 sits on a (briefly) trained autoencoder_1
        kwargs[required] = models.get_model(required)
        _fit(kwargs[required], imgs, 6)
    if builder.data_kwargs:
        kwargs.update(builder.data_kwargs(imgs))
    model = models.get_model(name, **kwargs)
    losses = _fit(model, imgs, 6)
    assert losses[-1] < losses[0], losses
    test = synthetic_images(64, seed=2)
    gray = np.repeat(colour.to_uint8(colour.to_grayscale(test)), 3, -1)
    pred = colorizer.predict_rgb(model, test)
    mse = lambda a: np.mean((a.astype(float) - test.astype(float)) ** 2)  # noqa: E731
    assert pred.shape == test.shape and pred.dtype == np.uint8
    assert mse(pred) < mse(gray), (mse(pred), mse(gray))


def test_predict_rgb_keeps_input_L_for_lab_models():
    model = models.get_model("colorizer_3")
    imgs = synthetic_images(4)
    out = colorizer.predict_rgb(model, imgs)
    L_in, L_out = colour.rgb_to_lab(imgs)[..., 0], colour.rgb_to_lab(out)[..., 0]
    assert np.abs(L_in - L_out).mean() < 1.0


def test_predict_rgb_accepts_gray_and_rejects_float():
    model = models.get_model("colorizer_1")
    gray = synthetic_images(3)[..., 0]
    assert colorizer.predict_rgb(model, gray).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="float32"):
        colorizer.predict_rgb(model, gray.astype(np.float32))


def test_plot_architecture_writes_png(tmp_path):
    from PIL import Image
    import plots
    path = plots.plot_architecture("colorizer_1", tmp_path / "arch.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 100 and img.height > 50


def test_predict_ab_bins_in_chunks_matches_one_pass():
    """Over 1024 images colorizer_4 is decoded in chunks (a 10,000-image test set would need 10 GB
    of bin probabilities at once); the result is the same as decoding each image alone."""
    model = models.get_model("colorizer_4", centers=contracts.gamut_bins()[:12])
    imgs = np.repeat(synthetic_images(3), 342, axis=0)[:1025]
    ab = colorizer.predict_ab(model, imgs)
    assert ab.shape == (1025, 32, 32, 2)
    np.testing.assert_allclose(ab[-1], colorizer.predict_ab(model, imgs[-1:])[0], atol=1e-4)


def test_at_size_rebuilds_fully_convolutional_models_only():
    model = models.get_model("colorizer_3")
    big = colorizer.at_size(model, 48, 64)
    assert big.input_shape[1:3] == (48, 64) and big.output_shape[1:3] == (48, 64)
    for a, b in zip(big.get_weights(), model.get_weights()):  # the trained weights carried over
        np.testing.assert_array_equal(a, b)
    assert colorizer.at_size(model, 32, 32) is model
    with pytest.raises(ValueError, match="divisible by 8, got 30x64"):
        colorizer.at_size(model, 30, 64)
    with pytest.raises(ValueError, match="fixed input size"):
        colorizer.at_size(models.get_model("colorizer_1"), 64, 64)


@pytest.mark.parametrize("name", ["colorizer_1", "colorizer_3"])
def test_predict_rgb_saturation_scales_chroma(name):
    keras.utils.set_random_seed(0)
    model = models.get_model(name)
    imgs = synthetic_images(4)
    # an untrained model predicts almost no chroma: give its output layer a colour bias
    if name == "colorizer_3":
        model.get_layer("ab").bias.assign(np.array([0.2, -0.15], np.float32))
    else:
        model.get_layer("rgb").bias.assign(np.array([0.6, 0.0, -0.6], np.float32))  # before the sigmoid
    base = colorizer.predict_rgb(model, imgs)
    assert_images_match(colorizer.predict_rgb(model, imgs, saturation=1.0), base)  # a tolerance: see conftest
    chroma = lambda x: np.hypot(*np.moveaxis(colour.rgb_to_lab(x)[..., 1:], -1, 0)).mean()  # noqa: E731
    gray = colorizer.predict_rgb(model, imgs, saturation=0)
    assert chroma(gray) < 0.5 < chroma(base)
    assert 1.6 < chroma(colorizer.predict_rgb(model, imgs, saturation=2)) / chroma(base) < 2.1
    L = lambda x: colour.rgb_to_lab(x)[..., 0]  # noqa: E731
    assert np.abs(L(gray) - L(base)).mean() < 1.0


@pytest.mark.parametrize("bad", [-0.5, 5.5, float("nan"), "vivid", None])
def test_saturation_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="saturation must be a number from 0 to 5"):
        colorizer.predict_rgb(models.get_model("colorizer_1"), synthetic_images(2), saturation=bad)


def test_shipped_models_predict_as_before_the_refactoring():
    """Every shipped CIFAR-10 model's predictions on a fixed sample, and colorize.py's full-resolution
    output, equal those saved before the architecture work (tests/data/predictions_before.npz)."""
    import pathlib
    import colorize
    import store
    from PIL import Image
    root = pathlib.Path(__file__).resolve().parents[1]
    before = np.load(root / "tests" / "data" / "predictions_before.npz")
    for name in ALL[:8]:
        model = store.load(root / "saved_models" / f"{name}.keras")
        assert_images_match(colorizer.predict_rgb(model, before["images"]), before[name], err_msg=name)
    for name in ("colorizer_1", "colorizer_3", "colorizer_4"):
        model = store.load(root / "saved_models" / f"{name}.keras")
        out = np.asarray(colorize.colorize_image(Image.fromarray(before["photo"]), model))
        assert_images_match(out, before[f"photo_{name}"], err_msg=name)


def test_published_colorizers_predict_as_before_the_codecs():
    """colorizer_6 (CIFAR-10) and the landscape colorizers: predictions (also with a chroma
    multiplier) and colorize.py's full-resolution output equal those saved before the codecs and
    the Colorizer replaced the inference code (tests/data/predictions_before.npz). The entries of
    landscapes/colorizer_6, and those of colorizer_6 (CIFAR-10), were saved again when each model was
    retrained and republished, after the refactored code had matched the earlier model's: for them the
    test pins the published model's predictions from then on."""
    import pathlib
    import colorize
    import store
    from PIL import Image
    root = pathlib.Path(__file__).resolve().parents[1]
    before = np.load(root / "tests" / "data" / "predictions_before.npz")
    for key in ("colorizer_1", "colorizer_3", "colorizer_6", "landscapes__colorizer_3", "landscapes__colorizer_4",
                "landscapes__colorizer_6"):
        model = store.load(root / "saved_models" / (key.replace("__", "/") + ".keras"))
        x = before["images64"] if key.startswith("landscapes") else before["images"]
        if f"photo_{key}" in before:
            assert_images_match(colorizer.predict_rgb(model, x), before[key], err_msg=key)
            out = np.asarray(colorize.colorize_image(Image.fromarray(before["photo"]), model))
            assert_images_match(out, before[f"photo_{key}"], err_msg=key)
        assert_images_match(colorizer.predict_rgb(model, x, saturation=1.5), before[f"sat_{key}"], err_msg=key)


@pytest.mark.parametrize("contract", [("rgb", "rgb"), ("gray", "rgb"), ("L", "ab")])
def test_codec_decodes_its_own_target_back_to_the_images(contract):
    imgs = synthetic_images(4, 16)
    codec = contracts.get(*contract).codec()
    x, y = codec.pair(imgs)
    np.testing.assert_array_equal(x, codec.encode(imgs))
    np.testing.assert_array_equal(y, codec.target(imgs))
    assert np.abs(codec.decode(y, x).astype(int) - imgs).max() <= 1
    np.testing.assert_allclose(codec.ab(y), colour.rgb_to_lab(imgs)[..., 1:], atol=0.5)


def test_unknown_contract_and_bins_without_centres_are_named():
    with pytest.raises(ValueError, match=r"Unknown I/O contract \('L', 'hsv'\)"):
        contracts.get("L", "hsv").codec()
    with pytest.raises(ValueError, match="needs the bin centres"):
        contracts.get("L", "ab_bins").codec().ab(np.ones((1, 2, 2, 3), np.float32) / 3)


@pytest.mark.parametrize("name", ["colorizer_3", "colorizer_4", "colorizer_6"])
def test_one_lab_conversion_per_predicted_batch(name, monkeypatch):
    model = models.get_model(name)
    calls = []
    real = colour.rgb_to_lab
    monkeypatch.setattr(contracts, "rgb_to_lab", lambda images: calls.append(np.shape(images)) or real(images))
    colorizer.predict_rgb(model, synthetic_images(8), saturation=1.5)
    assert calls == [(8, 32, 32, 3)]


def test_get_model_with_training_images_builds_what_training_builds():
    imgs = synthetic_images(16)
    model = models.get_model("colorizer_4", train_images=imgs)
    centers, _ = contracts.ab_bin_stats(colour.rgb_to_lab(imgs)[..., 1:])
    np.testing.assert_array_equal(colorizer.codec(model).centers, centers)
    assert models.builder_kwargs("colorizer_3", imgs) == {}  # nothing data-derived
    kw = models.builder_kwargs("colorizer_6", imgs, options={"neutral_weight": "4", "colourfulness_weight": 0})
    assert kw["neutral_weight"] == 4.0 and "colourfulness_weight" not in kw and "centers" in kw  # checked, merged
    with pytest.raises(ValueError, match=r"neutral_weight=20.*from 0.1 to 10"):
        models.builder_kwargs("colorizer_6", imgs, options={"neutral_weight": 20})
    with pytest.raises(ValueError, match="Unknown model 'colorizer_9'"):
        models.builder_kwargs("colorizer_9")


def test_prediction_tolerance_catches_real_changes():
    """The cross-CPU tolerance of the saved-prediction tests passes a one-level rounding flip but
    fails a chroma x1.02, a channel shifted by one level, or swapped channels."""
    import pathlib
    before = np.load(pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "predictions_before.npz")
    ref = before["landscapes__colorizer_4"]
    flipped = ref.copy()
    flipped.flat[12345] = flipped.flat[12345] + (1 if flipped.flat[12345] < 255 else -1)
    assert_images_match(flipped, ref)
    lab = colour.rgb_to_lab(ref)
    lab[..., 1:] *= 1.02
    vivid = colour.lab_to_rgb(lab)
    shifted = ref.copy()
    shifted[..., 2] = np.clip(shifted[..., 2].astype(int) + 1, 0, 255).astype(np.uint8)
    for changed in (vivid, shifted, ref[..., ::-1]):
        with pytest.raises(AssertionError):
            assert_images_match(changed, ref)
    with pytest.raises(AssertionError, match="shape"):
        assert_images_match(ref[:1], ref)


def test_colorizer_6_training_layout_gives_the_inference_loss():
    """ABMix hands the loss a half-resolution layout in training (ab of each 2x2 block as channels,
    raw logits) instead of Q probabilities repeated to full size; MixLoss gives the same value on
    either layout (its soft targets looked up in training), and the inference output is unchanged (ab, then the probabilities repeated 2x2)."""
    r = np.random.default_rng(0)
    centers = contracts.gamut_bins()[::20]
    layer = heads.ABMix(centers)
    ab = keras.ops.convert_to_tensor(r.uniform(-0.5, 0.5, (2, 8, 8, 2)).astype("float32"))
    logits = keras.ops.convert_to_tensor(r.normal(0, 2, (2, 4, 4, len(centers))).astype("float32"))
    y_true = keras.ops.convert_to_tensor(r.uniform(-0.6, 0.6, (2, 8, 8, 2)).astype("float32"))
    train_out, infer_out = layer([ab, logits], training=True), layer([ab, logits], training=False)
    assert tuple(train_out.shape) == (2, 4, 4, 8 + len(centers))
    assert tuple(infer_out.shape) == (2, 8, 8, 2 + len(centers))
    np.testing.assert_allclose(np.asarray(infer_out)[..., :2], np.asarray(ab))
    np.testing.assert_allclose(np.asarray(infer_out)[:, 1::2, ::2, 2:], np.asarray(keras.ops.softmax(logits)), rtol=1e-6)
    loss = heads.MixLoss(centers, np.ones(len(centers), np.float32))
    assert float(loss(y_true, train_out)) > 0.1
    # the same loss, its soft targets looked up in training (within the table's half unit)
    np.testing.assert_allclose(float(loss(y_true, train_out)), float(loss(y_true, infer_out)), rtol=2e-2)


def test_colorizer_4_class_head_at_half_resolution():
    """colorizer_4 predicts its bin probabilities at half resolution (ABBins(repeat=2)): inference
    repeats each 2x2 block's probabilities, training hands the loss the raw logits, and the loss of
    that layout is the inference loss on the blocks' top-left pixels. A model saved before (repeat 1,
    full-resolution logits) behaves as it did."""
    model = models.get_model("colorizer_4", input_shape=(16, 16, 1))
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    q = model.output_shape[-1]
    assert tuple(model(x, training=True).shape) == (2, 8, 8, q)
    infer = np.asarray(model(x, training=False))
    assert infer.shape == (2, 16, 16, q)
    np.testing.assert_array_equal(infer[:, 0::2, 0::2], infer[:, 1::2, 1::2])  # 2x2 blocks share
    np.testing.assert_allclose(infer.sum(-1), 1.0, rtol=1e-5)
    bins = model.get_layer("ab_bins")
    y_true = keras.ops.convert_to_tensor(r.uniform(-0.6, 0.6, (2, 16, 16, 2)).astype("float32"))
    logits = keras.ops.convert_to_tensor(r.normal(0, 2, (2, 8, 8, q)).astype("float32"))
    train_loss = float(model.loss(y_true, bins(logits, training=True)))
    np.testing.assert_allclose(train_loss, float(model.loss(y_true[:, ::2, ::2], keras.ops.softmax(logits))), rtol=2e-2)
    assert train_loss > 1.0
    full = np.asarray(bins(logits, training=False))
    np.testing.assert_allclose(full[:, ::2, ::2], np.asarray(keras.ops.softmax(logits)), rtol=1e-6)
    old = heads.ABBins.from_config({k: v for k, v in bins.get_config().items() if k != "repeat"})  # saved before
    assert old.repeat == 1
    np.testing.assert_allclose(np.asarray(old(logits, training=True)), np.asarray(keras.ops.softmax(logits)), rtol=1e-6)
