"""Issue 21's 'done when': a new I/O contract, a new metric and a new dataset are each defined in
one place (a Codec subclass, a Metric, a Dataset subclass), and training, prediction and
evaluation work through them. Each test registers into a copy of the registry, so the rest of the
suite sees the project's own contracts, metrics and datasets."""
import numpy as np
import pytest
import keras

import colorizer
import colour
import contracts
import data
import evaluation
import metrics
import models
import store
import training
from colorizer import Colorizer
from conftest import synthetic_images


@pytest.fixture
def registries(monkeypatch):
    """Copies of the registries that a test may add to; the originals come back afterwards."""
    monkeypatch.setattr(contracts, "CONTRACTS", dict(contracts.CONTRACTS))
    monkeypatch.setattr(models, "MODELS", models.Registry(models.MODELS))
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    monkeypatch.setattr(metrics, "ACCURACY_METRICS", dict(metrics.ACCURACY_METRICS))
    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))


class ToyImages(data.InMemory):
    """A toy dataset: 96 synthetic 16x16 training images, 8 test images (an in-memory dataset whose
    validation split is carved out of its training images)."""
    name, default_image_size = "toyset", 16

    def __init__(self, data_dir=None):
        self.data_dir = data_dir

    def train_images(self, subset=None, seed=0):
        x = synthetic_images(96, size=16, seed=seed)
        return x if subset is None else x[data.sample_rows(len(x), subset, seed)]

    def load_test(self, size=None):
        x = synthetic_images(8, size=16, seed=5)
        return data.FolderData(x, np.zeros(len(x), np.int64), np.zeros(len(x), bool), ["toy"])


def test_a_toy_dataset_trains_predicts_and_evaluates(registries, tmp_path):
    data.DATASETS["toyset"] = ToyImages  # the one place the dataset is added
    rec = training.train("colorizer_3", data="toyset", epochs=1, batch_size=16, models_dir=tmp_path, verbose=0)
    assert rec["data"] == "toyset" and rec["image_size"] == 16 and rec["train_images"] == 86
    assert (tmp_path / "toyset" / "colorizer_3.keras").exists()  # its own sub-folder, named by the dataset
    model = store.load("toyset/colorizer_3", tmp_path)
    images, labels, classes, n_gray = evaluation.folder_test_set("toyset")
    assert images.shape == (8, 16, 16, 3) and classes == ["toy"] and n_gray == 0
    pred = Colorizer(model).colorize_array(images)
    assert pred.shape == images.shape and pred.dtype == np.uint8
    rows = evaluation.metrics_table({"colorizer_3": pred}, images, {"colorizer_3": (model, rec)}, progress=None)
    assert rows[0]["epochs"] == 1 and np.isfinite(rows[0]["psnr"])


def test_a_toy_contract_trains_predicts_and_evaluates(registries, tmp_path, cifar_dir):
    @contracts.register  # the one place the contract is defined: gray in, CIE a*, b* out
    class GrayToAb(contracts.Codec):
        inputs, outputs = "gray", "ab"
        input_channels, target_channels = 1, 2

        def target(self, images):
            return colour.scale_ab(colour.rgb_to_lab(colour.as_rgb(images))[..., 1:])

        def ab(self, y):
            return colour.unscale_ab(y)

        def decode(self, y, x, saturation=1.0):
            L = colour.rgb_to_lab(np.repeat(x, 3, axis=-1))[..., :1]
            return colour.to_uint8(colour.lab_to_rgb(np.concatenate([L, self.ab(y) * saturation], axis=-1)))

    @models.register("colorizer", "gray", "ab", stride=8)
    def toy_gray_ab(input_shape=(32, 32, 1)):
        """A toy colorizer of the toy contract: colorizer_3's trunk, gray in, ab out."""
        inputs = keras.Input(input_shape, name="toy_gray_ab_input")
        x = models.unet_trunk(inputs, models.UNET_WIDTHS, "unet")
        model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="tanh", name="ab", dtype="float32")(x),
                            name="toy_gray_ab")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
        return model

    assert contracts.get("gray", "ab").input_channels == 1 and contracts.get("gray", "ab").target_channels == 2
    assert models.input_shape_for("toy_gray_ab", 32) == (32, 32, 1)
    rec = training.train("toy_gray_ab", epochs=1, batch_size=32, subset=100, data_dir=cifar_dir,
                         models_dir=tmp_path, verbose=0)
    assert (rec["inputs"], rec["outputs"]) == ("gray", "ab")
    model = store.load("toy_gray_ab", tmp_path)
    x = synthetic_images(4, size=32, seed=2)
    rgb = colorizer.predict_rgb(model, x)
    assert rgb.shape == x.shape and rgb.dtype == np.uint8
    assert colorizer.predict_ab(model, x).shape == (4, 32, 32, 2)
    assert set(metrics.evaluate(rgb, x)) >= {"psnr", "ssim", "mae", "acc2", "auc", "colorfulness"}


def test_a_toy_metric_reaches_evaluate_the_per_image_scores_and_the_tables(registries, tmp_path):
    metrics.register(metrics.Metric(  # the one place the metric is defined
        "red_error", "red MAE ↓", "{:.2f}", -1,
        pooled=lambda pred, true: float(np.abs(pred[..., 0].astype(float) - true[..., 0]).mean()),
        per_image=lambda pair: np.abs(pair.p[..., 0] - pair.t[..., 0]).mean(axis=(1, 2))))
    true = synthetic_images(6, size=16, seed=1)
    pred = metrics.baseline(true)
    scores = metrics.evaluate(pred, true)
    per_image = metrics.per_image_scores(pred, true)
    assert scores["red_error"] == pytest.approx(per_image["red_error"].mean())
    assert metrics.ACCURACY_METRICS["red_error"] == -1
    assert not metrics.beats(scores, dict(scores, red_error=scores["red_error"] - 1))  # it counts in the rule
    rows = evaluation.metrics_table({"gray": pred}, true, {}, progress=None)
    text = evaluation.write_table(rows, tmp_path)
    assert "red MAE ↓" in text.splitlines()[0] and f"{scores['red_error']:.2f}" in text.splitlines()[2]
    assert "red_error" in (tmp_path / "metrics.csv").read_text().splitlines()[0]


def test_a_metric_with_a_direction_needs_per_image_scores(registries):
    with pytest.raises(ValueError, match="'odd' has direction 1 but no per_image"):
        metrics.register(metrics.Metric("odd", "odd", "{}", 1, pooled=lambda p, t: 0.0))
