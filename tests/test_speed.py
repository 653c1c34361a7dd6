"""The training defaults chosen by the speed work: used everywhere, saved as float32, loadable in safe
mode; the fused batch norm trains like Keras's; new options refused clearly. No timing here (numbers
live in benchmarks/ and the README)."""
import dataclasses
import inspect
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import keras

import blocks
import heads
import machine
import models
import training

ROOT = pathlib.Path(__file__).resolve().parents[1]


# the batch is each model's own (training.batch_size_for): train, the command line and the notebook say None
OWN = dict(training.DEFAULTS, batch_size=None)


def test_defaults_are_what_train_the_command_line_and_the_notebook_use():
    sig = inspect.signature(training.train).parameters
    for key, value in OWN.items():
        assert sig[key].default == value, key
    parser_defaults = {}
    real = training.train
    try:
        training.train = lambda name, **kw: parser_defaults.update(kw)
        training.main(["colorizer_3"])
    finally:
        training.train = real
    for key, value in OWN.items():
        assert parser_defaults[key] == value, key
    nb = json.loads((ROOT / "model_train.ipynb").read_text())
    params = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    src = "".join(params["source"])
    for key in ("batch_size", "precision", "jit_compile", "lr_schedule"):
        # the notebook names no training setting of its own, or names the default
        assert f"{key} =" not in src or f"{key} = {OWN[key]!r}" in src.replace('"', "'"), key


def test_a_model_trains_at_its_own_batch_unless_one_is_given():
    # colorizer_6 at 64 px: fewer minutes to the same validation loss; at 32 px 128 did as well (README, Performance)
    assert models.MODELS["colorizer_6"].batch_size == {64: 64}
    for name, spec in models.MODELS.items():
        for size in (32, 64, 96):
            assert training.batch_size_for(name, image_size=size) == spec.batch_size.get(size, 128), (name, size)
            assert training.batch_size_for(name, 32, size) == 32, name
    assert training.batch_size_for("colorizer_6", image_size=64) == 64
    assert training.batch_size_for("colorizer_6", image_size=32) == training.batch_size_for("colorizer_3") == 128
    with pytest.raises(ValueError, match="Unknown model 'colorizer_99'; choose one of: autoencoder_1"):
        training.batch_size_for("colorizer_99")
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        training.train("colorizer_6", batch_size=0)  # given, it is checked, not replaced by the model's own


def test_models_train_with_the_fused_batch_norm_and_save_it_loadable():
    model = models.get_model("colorizer_3")
    assert any(isinstance(layer, heads.FusedBatchNorm) for layer in model.layers)


@pytest.mark.parametrize("name", ["colorizer_6"])
def test_a_model_trained_under_the_defaults_saves_float32_and_loads_in_safe_mode(cifar_dir, tmp_path, name, monkeypatch):
    # a batch of its own at CIFAR-10's 32 px, for this test (its real one is at 64 px, on photo folders)
    monkeypatch.setattr(models, "MODELS", models.Registry(models.MODELS))
    models.MODELS[name] = dataclasses.replace(models.MODELS[name], batch_size={32: 64})
    rec = training.train(name, epochs=2, subset=160, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert rec["config"]["lr_schedule"] == training.DEFAULTS["lr_schedule"]
    # its own batch, recorded as the number: asked again with the default, the finished run is the same run
    assert rec["batch_size"] == rec["config"]["batch_size"] == 64 == training.batch_size_for(name, image_size=32)
    again = training.train(name, epochs=2, subset=160, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert again["epochs_run"] == 2 and again["batch_size"] == rec["batch_size"]
    with pytest.raises(training.RunExists, match=f"batch_size: {rec['batch_size']} → 32.*pass batch_size="
                                                 f"{rec['batch_size']} \\(--batch-size\\) to keep its batch"):
        training.train(name, epochs=2, batch_size=32, subset=160, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert rec["machine"]["cores"] >= 1 and rec["machine"]["matmul_gflops_float32"] > 0
    assert "learning_rate" in rec["history"]  # the plateau schedule logs its rate every epoch
    loaded = keras.models.load_model(tmp_path / f"{name}.keras")  # safe_mode
    assert all(w.dtype == "float32" for w in loaded.weights)
    assert any(isinstance(layer, heads.FusedBatchNorm) for layer in loaded.layers)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    assert np.isfinite(np.asarray(loaded(x, training=False))).all()


@pytest.mark.parametrize("policy, atol, rtol", [("float32", 1e-4, 1e-4), ("mixed_bfloat16", 0.05, 0.02)])
def test_fused_batch_norm_matches_keras_batch_norm(policy, atol, rtol):
    """Same outputs, gradients and moving statistics as keras.layers.BatchNormalization in training,
    in float32 and in the bfloat16 the defaults train in (the moving variance differs by Bessel's
    n/(n-1): here 1/2047 of the batch variance's tenth)."""
    import tensorflow as tf
    x = tf.convert_to_tensor(np.random.default_rng(0).normal(1, 2, (8, 16, 16, 4)).astype("float32"))
    ref = keras.layers.BatchNormalization(momentum=0.9, dtype=policy)
    fused = heads.FusedBatchNorm(momentum=0.9, dtype=policy)
    for layer in (ref, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.arange(1, 5, dtype="float32") / 2)
    x = tf.cast(x, ref.compute_dtype)
    with tf.GradientTape(persistent=True) as tape:
        outs = [tf.cast(layer(x, training=True), "float32") for layer in (ref, fused)]
        losses = [tf.reduce_sum(o ** 2) for o in outs]
    assert fused.compute_dtype == ref.compute_dtype
    np.testing.assert_allclose(outs[1], outs[0], atol=atol)
    np.testing.assert_allclose(tape.gradient(losses[1], fused.gamma), tape.gradient(losses[0], ref.gamma), rtol=rtol)
    np.testing.assert_allclose(fused.moving_mean.numpy(), ref.moving_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-3)
    np.testing.assert_allclose(tf.cast(fused(x, training=False), "float32"), tf.cast(ref(x, training=False), "float32"),
                               atol=max(atol, 1e-3), rtol=rtol)  # bfloat16: one rounding step apart at most


def test_keras_batch_norm_can_still_be_built_for_comparison(monkeypatch):
    monkeypatch.setattr(blocks, "BATCH_NORM", "keras")
    model = models.get_model("colorizer_3")
    assert not any(isinstance(layer, heads.FusedBatchNorm) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_bad_lr_schedule_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown lr_schedule 'step'; choose one of: constant, plateau, cosine"):
        training.train("colorizer_3", epochs=1, subset=10, models_dir=tmp_path, lr_schedule="step")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        training.main(["colorizer_3", "--lr-schedule", "step", "--models-dir", str(tmp_path)])


def test_mix_loss_refuses_a_class_stride_its_head_does_not_have():
    with pytest.raises(ValueError, match="cls_stride must be 2.*got 4"):
        heads.MixLoss(np.zeros((3, 2), np.float32), np.ones(3, np.float32), cls_stride=4)


def test_machine_description_names_the_cpu_and_its_bfloat16_units():
    d = machine.describe(peak=False)
    assert set(d) == {"cpu", "cores", "avx512_bf16", "amx", "onednn"} and d["cores"] >= 1 and d["cpu"]
    assert machine.has_bf16() == (d["avx512_bf16"] or d["amx"])
    assert d["onednn"] is machine.onednn_enabled() and isinstance(d["onednn"], bool)


# what TF_ENABLE_ONEDNN_OPTS was when TensorFlow itself was first imported, after importing one module
_AT_TF_IMPORT = '''import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" and not seen:
            seen.append(os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
sys.meta_path.insert(0, Spy())
import {module}
import tensorflow, machine
print(seen[0], machine.onednn_enabled())
'''


@pytest.mark.parametrize("module, users_setting, expected", [
    ("data", None, ["1", "True"]), ("setup_tf", None, ["1", "True"]), ("colorize", None, ["1", "True"]),
    ("pipelines", None, ["1", "True"]), ("distribute", None, ["1", "True"]), ("data", "0", ["0", "False"])])
def test_onednn_is_on_before_tensorflow_loads_unless_the_user_turned_it_off(module, users_setting, expected):
    """TensorFlow turns oneDNN on by itself only on some CPUs (AVX-512 VNNI/BF16, AMX): importing the project
    (any entry module, including those that import TensorFlow lazily) sets it on before TensorFlow loads,
    and a user's own setting wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if users_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = users_setting
    out = subprocess.run([sys.executable, "-c", _AT_TF_IMPORT.format(module=module)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == expected


def test_plateau_schedule_resumes_from_the_history():
    """Killed and restarted, the schedule knows the best val_loss so far and how long ago it was."""
    cb = training.ResumablePlateau({"val_loss": [1.0, 0.9, 0.95, 0.97]}, monitor="val_loss", patience=2)
    cb.on_train_begin()
    assert cb.best == 0.9 and cb.wait == 2
    fresh = training.ResumablePlateau({}, monitor="val_loss", patience=2)
    fresh.on_train_begin()
    assert fresh.wait == 0 and fresh.best is None  # Keras takes the first epoch as the best


def _adam_model(rate):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="mse")
    return model


def test_cosine_schedule_decays_over_the_budget_and_resumes_on_its_curve(tmp_path):
    import callbacks
    import store
    low = callbacks.CosineOverBudget.MIN_LR
    budget = callbacks.TimeBudget(10, tmp_path / "state.json")  # 10 minutes
    cb, model = callbacks.CosineOverBudget(budget, epochs=1000), _adam_model(1e-3)
    cb.set_model(model)
    cb.on_train_begin()
    rates = []
    for seconds in (0, 150, 300, 450, 600, 900):  # spent at each epoch's start
        budget.state["seconds"] = seconds
        cb.on_epoch_begin(0)
        rates.append(float(model.optimizer.learning_rate))
    assert rates[0] == pytest.approx(1e-3) and rates[2] == pytest.approx(low + (1e-3 - low) / 2)
    assert rates[4] == pytest.approx(low) and rates[5] == pytest.approx(low)  # past the budget: the floor
    assert all(a > b for a, b in zip(rates[:4], rates[1:5]))
    logs = {}
    cb.on_epoch_end(0, logs)
    assert logs["learning_rate"] == pytest.approx(low)  # what the CSV log and the history record
    # killed and resumed: the first rate comes from the state, not from the decayed optimizer
    budget.state["seconds"] = 300
    store.write_json(tmp_path / "state.json", budget.state)
    resumed_budget = callbacks.TimeBudget(10, tmp_path / "state.json")
    resumed, model = callbacks.CosineOverBudget(resumed_budget, epochs=1000), _adam_model(4e-4)
    resumed.set_model(model)
    resumed.on_train_begin()
    resumed.on_epoch_begin(7)
    assert float(model.optimizer.learning_rate) == pytest.approx(rates[2])
    # the epochs run out before the minutes: the curve follows them
    early, model = callbacks.CosineOverBudget(callbacks.TimeBudget(30, tmp_path / "s3.json"), epochs=10), _adam_model(1e-3)
    early.set_model(model)
    early.on_train_begin()
    early.on_epoch_begin(5)
    assert float(model.optimizer.learning_rate) == pytest.approx(low + (1e-3 - low) / 2)
    # without a time budget: over the epochs
    by_epochs, model = callbacks.CosineOverBudget(callbacks.TimeBudget(None, tmp_path / "s2.json"), epochs=10), _adam_model(1e-3)
    by_epochs.set_model(model)
    by_epochs.on_train_begin()
    by_epochs.on_epoch_begin(5)
    assert float(model.optimizer.learning_rate) == pytest.approx(low + (1e-3 - low) / 2)
    # several workers: each takes the largest share spent of any worker (one rate for all)
    import distribute
    ahead = lambda share: max(share, 0.5)  # noqa: E731 - another worker is halfway already
    shared, model = callbacks.CosineOverBudget(callbacks.TimeBudget(None, tmp_path / "s4.json"), 10, ahead), \
        _adam_model(1e-3)
    shared.set_model(model)
    shared.on_train_begin()
    shared.on_epoch_begin(1)
    assert float(model.optimizer.learning_rate) == pytest.approx(low + (1e-3 - low) / 2)
    assert distribute.largest(None, distribute.Role(), 0.25) == 0.25  # one worker: its own share
    sent = []

    def gather(strategy, values):  # what two workers' shares gather into: this one's and the other's
        sent.append(values)
        return np.array([values, [700000]])
    real, distribute.gather = distribute.gather, gather
    try:
        assert distribute.largest(None, distribute.Role(0, 2, True), 0.25) == pytest.approx(0.7)
    finally:
        distribute.gather = real
    assert sent == [[250000]]  # in millionths: gather carries whole numbers
    with pytest.raises(ValueError, match="Unknown lr_schedule 'cosin'; choose one of: constant, plateau, cosine"):
        training.check_arguments(1, 8, None, 0.1, None, lr_schedule="cosin")
