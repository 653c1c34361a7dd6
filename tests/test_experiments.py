"""experiments.ipynb and evaluation.py on tiny models trained in the test."""
import json
import pathlib

import numpy as np
import pytest

import evaluation
import metrics
import training

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ["figure1_gray_vs_color.png", "losses_autoencoders.png", "losses_colorizers.png", "reconstructions.png",
           "colorizations.png", "metrics.csv", "metrics.md", "metrics_bars.png", "best_worst.png", "per_class.png",
           "photos.png", "own_photo.png", "own_photo_hints.png"] + [f"arch_{n}.png" for n in evaluation.models.MODELS]


@pytest.fixture(scope="module")
def tiny_models(cifar_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("trained")
    for name in ("autoencoder_1", "colorizer_1", "colorizer_3"):
        training.train(name, epochs=1, subset=200, data_dir=cifar_dir, models_dir=d, verbose=0)
    import colorizer
    import store
    dataset, name = colorizer.DEFAULT_MODEL.split("/")  # the default landscape model, untrained: parts 0 and 8 use it
    model = evaluation.models.get_model(name, input_shape=(64, 64, 1))
    model.optimizer.build(model.trainable_variables)  # saved as training saves: loads without a warning
    store.save_model(model, store.path(name, d, dataset))
    hint_model = evaluation.models.get_model("colorizer_7", input_shape=(64, 64, 4))  # part 0b's, untrained
    hint_model.optimizer.build(hint_model.trainable_variables)
    store.save_model(hint_model, store.path("colorizer_7", d, dataset))
    return d


def test_experiments_notebook_writes_every_figure(cifar_dir, tiny_models, tmp_path):
    import papermill as pm
    figs = tmp_path / "figures"
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(ROOT / "experiments.ipynb"), str(out), cwd=str(ROOT), progress_bar=False,
                        parameters=dict(models_dir=str(tiny_models), figures_dir=str(figs), data_dir=cifar_dir,
                                        n_eval=200, n_landscape=50))
    missing = [f for f in FIGURES if not (figs / f).exists()]
    assert not missing, missing
    text = (figs / "metrics.md").read_text()
    for name in ("colorizer_1", "colorizer_3", "colorizer_3 ×2 chroma", "gray", "mean_chroma"):
        assert f"`{name}`" in text
    assert "colorizer_5" not in text  # not trained: skipped, not an error
    nb = json.loads(out.read_text())
    notes = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "not trained there: " in notes and "colorizer_5" in notes.split("not trained there: ")[1]
    assert "is not trained (" not in notes  # one line per folder, not one note per missing model
    assert "colorized by landscapes/colorizer_6" in notes  # part 0: the sample photo, headless
    assert "2 hints, colorized by landscapes/colorizer_7" in notes  # part 0b: the hint cell, headless
    photos_table = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in nb["cells"]
                           for o in c.get("outputs", []))
    assert "landscapes/colorizer_6 (default)" in photos_table and "colorizer_3 (CIFAR-10)" in photos_table
    from test_training import assert_quiet
    assert_quiet(nb)


def test_metrics_table_rows(tiny_models, cifar_dir):
    import data
    trained = evaluation.load_trained(tiny_models, ["colorizer_3", "colorizer_4"])
    assert list(trained) == ["colorizer_3"]
    (x_train, _), (x_test, y_test) = data.load_cifar10(cifar_dir)
    x, y = x_test[::250], y_test[::250]  # 40 images, every class (the folder is ordered by class)
    preds = evaluation.predictions(trained, x) | evaluation.baselines(x, x_train[:200])
    rows = evaluation.metrics_table(preds, x, trained)
    assert [r["model"] for r in rows] == ["colorizer_3", "gray", "mean_chroma"]
    assert rows[0]["epochs"] == 1 and rows[0]["params"] > 0 and rows[1]["kind"] == "baseline"
    assert rows[1]["psnr"] == pytest.approx(metrics.psnr(metrics.baseline(x, "gray"), x))
    assert all(r["gt_colorfulness"] == pytest.approx(metrics.colorfulness(x)) for r in rows)
    rec = json.loads((tiny_models / "colorizer_3.json").read_text())
    assert rows[0]["training"] == f"{rec['precision']}, batch {rec['batch_size']}" and rows[1]["training"] == "-"
    keep = ~metrics.is_gray(x)
    assert rows[1]["psnr_colour"] == pytest.approx(metrics.psnr(preds["gray"][keep], x[keep]))
    stats = evaluation.per_class(preds["gray"], x, y, n_classes=11)
    assert np.all(stats["colorfulness"][:10] < 1) and np.all(stats["gt_colorfulness"][:10] > 1)
    assert np.isnan(stats["psnr"][10])  # a class with no image


def test_saturated_variant_rows(tiny_models, cifar_dir):
    import data
    trained = evaluation.load_trained(tiny_models, ["colorizer_3"])
    (x_train, _), (x_test, _) = data.load_cifar10(cifar_dir)
    x = x_test[::250]
    vivid = evaluation.saturated_predictions(trained, x, {"colorizer_3": 2.0, "colorizer_5": 1.5})
    assert list(vivid) == ["colorizer_3 ×2 chroma"]  # an untrained model's variant is skipped
    rows = evaluation.metrics_table(evaluation.predictions(trained, x) | vivid, x, trained)
    plain, var = rows
    assert var["model"] == "colorizer_3 ×2 chroma" and var["kind"] == "variant" and plain["kind"] == "colorizer"
    assert var["epochs"] == plain["epochs"] and var["params"] == plain["params"]
    assert var["colorfulness"] > plain["colorfulness"]
    assert evaluation.best_colorizer(rows) == "colorizer_3"  # a variant is never "the best colorizer"
    assert evaluation.base_model("colorizer_3 ×2 chroma") == "colorizer_3"
