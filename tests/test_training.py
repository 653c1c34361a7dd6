"""Tests for training.py and model_train.ipynb: save, resume after SIGKILL, NaN, no overwrite, distribution."""
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import keras

import colorizer
import models
import settings
import store
import training

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env(cifar_dir):
    return {**os.environ, "CIFAR10_DIR": cifar_dir, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_train_writes_model_and_record(cifar_dir, tmp_path):
    rec = training.train("colorizer_3", epochs=2, batch_size=32, subset=200, data_dir=cifar_dir,
                         models_dir=tmp_path, verbose=0)
    saved = json.loads((tmp_path / "colorizer_3.json").read_text())
    assert saved["epochs_run"] == 2 == len(saved["history"]["loss"]) == len(saved["history"]["val_loss"])
    assert saved["train_images"] == 180 and saved["val_images"] == 20
    for key in ("params", "train_minutes", "images_per_s", "batch_size", "seed", "data_source",
                "tensorflow", "keras", "date", "best_epoch", "inputs", "outputs"):
        assert key in saved, key
    assert saved["params"] == models.get_model("colorizer_3").count_params()
    assert rec["best_val_loss"] == min(saved["history"]["val_loss"])
    model = keras.models.load_model(tmp_path / "colorizer_3.keras")
    out = colorizer.predict_rgb(model, np.zeros((2, 32, 32, 3), np.uint8))
    assert out.shape == (2, 32, 32, 3)
    state = json.loads((tmp_path / "colorizer_3.run" / "state.json").read_text())  # kept for resume="extend"
    assert state["finished"] and state["epochs_done"] == rec["epochs_run"]
    assert not list(tmp_path.glob("*.tmp*"))
    import zipfile
    with zipfile.ZipFile(tmp_path / "colorizer_3.keras") as z:  # deflated, so the zero moments cost nothing
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}


def test_no_overwrite_without_permission(cifar_dir, tmp_path):
    training.train("autoencoder_3", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    before = (tmp_path / "autoencoder_3.keras").read_bytes()
    # the same arguments again: nothing to do, nothing rewritten
    again = training.train("autoencoder_3", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert again["epochs_run"] == 1
    with pytest.raises(FileExistsError, match="overwrite"):
        training.train("autoencoder_3", epochs=2, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    assert (tmp_path / "autoencoder_3.keras").read_bytes() == before
    training.train("autoencoder_3", epochs=2, subset=100, data_dir=cifar_dir, models_dir=tmp_path,
                   overwrite=True, verbose=0)
    assert json.loads((tmp_path / "autoencoder_3.json").read_text())["epochs_run"] == 2


def test_nan_stops_with_message_and_no_model(cifar_dir, tmp_path):
    with pytest.raises(RuntimeError, match="diverged.*learning_rate"):
        training.train("autoencoder_3", epochs=3, subset=100, data_dir=cifar_dir, models_dir=tmp_path,
                       learning_rate=1e8, verbose=0)
    assert not list(tmp_path.glob("*.keras")) and not list(tmp_path.glob("**/*.keras"))
    assert not (tmp_path / "autoencoder_3.json").exists()


def test_colorizer_2_needs_trained_autoencoder(cifar_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="autoencoder_1.*Train it first"):
        training.train("colorizer_2", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    training.train("autoencoder_1", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    training.train("colorizer_2", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    ae = keras.models.load_model(tmp_path / "autoencoder_1.keras")
    c2 = keras.models.load_model(tmp_path / "colorizer_2.keras")
    for a, b in zip(ae.get_layer("decoder").get_weights(), c2.get_layer("decoder").get_weights()):
        np.testing.assert_array_equal(a, b)  # the frozen decoder stayed the autoencoder's


def test_unknown_model_name(tmp_path):
    with pytest.raises(ValueError, match="'colorizer_9'.*colorizer_3"):
        training.train("colorizer_9", models_dir=tmp_path)
    r = subprocess.run([sys.executable, str(ROOT / "training.py"), "colorizer_9"], capture_output=True, text=True)
    assert r.returncode == 2 and "colorizer_9" in r.stderr and "colorizer_3" in r.stderr


def test_resume_after_sigkill(cifar_dir, tmp_path):
    cmd = [sys.executable, str(ROOT / "training.py"), "colorizer_1", "--epochs", "5", "--subset", "400",
           "--batch-size", "32", "--models-dir", str(tmp_path), "--verbose", "2"]
    state = tmp_path / "colorizer_1.run" / "state.json"
    proc = subprocess.Popen(cmd, env=_env(cifar_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(state.read_text())["epochs_done"]
    assert 2 <= done_before < 5 and not (tmp_path / "colorizer_1.keras").exists()

    # resumed with the default --verbose auto, its output a pipe: a line per epoch, no progress-bar redraws
    # (bytes: text=True would turn a carriage return into a newline)
    r = subprocess.run(cmd[:-2], env=_env(cifar_dir), capture_output=True, timeout=600)
    out = r.stdout.decode()
    assert r.returncode == 0, out[-3000:] + r.stderr.decode()[-3000:]
    assert f"Resuming colorizer_1 from epoch {done_before}" in out
    assert "Epoch 5/5" in out and not any(c in r.stdout for c in (b"\b", b"\r", b"\x1b["))
    rec = json.loads((tmp_path / "colorizer_1.json").read_text())
    assert rec["epochs_run"] == 5
    assert rec["history"]["epoch"] == [0, 1, 2, 3, 4]  # continuous, no gap and no repeat
    assert rec["this_session_seconds"] < rec["train_minutes"] * 60  # earlier epochs counted too
    keras.models.load_model(tmp_path / "colorizer_1.keras")


def test_auto_verbose_prints_a_line_per_epoch_into_a_file_and_a_bar_in_a_terminal_or_notebook(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert [training.keras_verbose(v) for v in ("auto", 0, 1, 2, "lines")] == [2, 0, 1, 2, 0]
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert training.keras_verbose("auto") == "auto"
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    assert training.keras_verbose("auto") == "auto"


def test_mirrored_strategy_on_two_cpus(cifar_dir, tmp_path):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import training
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
rec = training.train("colorizer_3", epochs=1, batch_size=8, subset=128, data_dir={cifar_dir!r},
                     models_dir={str(tmp_path)!r}, strategy=strategy, verbose=0)
print("REPLICAS", strategy.num_replicas_in_sync, "EPOCHS", rec["epochs_run"])
"""
    r = subprocess.run([sys.executable, "-c", code], env=_env(cifar_dir), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "REPLICAS 2 EPOCHS 1" in r.stdout
    assert (tmp_path / "colorizer_3.keras").exists()


def test_time_budget_stops_after_epoch(cifar_dir, tmp_path):
    rec = training.train("autoencoder_1", epochs=50, subset=100, max_minutes=1e-4, data_dir=cifar_dir,
                         models_dir=tmp_path, verbose=0)
    assert rec["epochs_run"] == 1 and rec["stopped_by"] == "time budget"


def test_model_train_notebook_runs_with_papermill(cifar_dir, tmp_path):
    import papermill as pm
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(ROOT / "model_train.ipynb"), str(out), cwd=str(ROOT), progress_bar=False,
                        parameters=dict(model_name=["colorizer_1", "colorizer_3"], epochs=1, subset=200, verbose=2,
                                        data_dir=cifar_dir, models_dir=str(tmp_path / "m")))
    for name in ("colorizer_1", "colorizer_3"):
        assert (tmp_path / "m" / f"{name}.keras").exists()
        assert json.loads((tmp_path / "m" / f"{name}.json").read_text())["epochs_run"] == 1
        keras.models.load_model(tmp_path / "m" / f"{name}.keras")
    nb = json.loads(out.read_text())
    images = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert images >= 5  # Figure 1, 2 diagrams, losses, colorizations
    assert_quiet(nb)
    # "train a bit more": epochs 2 without extend is one printed line naming the change, never a traceback
    params = dict(model_name="colorizer_3", epochs=2, subset=200, verbose=2, data_dir=cifar_dir,
                  models_dir=str(tmp_path / "m"))
    pm.execute_notebook(str(ROOT / "model_train.ipynb"), str(out), cwd=str(ROOT), progress_bar=False, parameters=params)
    nb = json.loads(out.read_text())
    assert_quiet(nb)
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "epochs: 1 → 2" in text and "resume='extend'" in text
    pm.execute_notebook(str(ROOT / "model_train.ipynb"), str(out), cwd=str(ROOT), progress_bar=False,
                        parameters=params | dict(extend=True))
    rec = json.loads((tmp_path / "m" / "colorizer_3.json").read_text())
    assert rec["epochs_run"] == 2 and rec["history"]["epoch"] == [0, 1]


def assert_quiet(nb):
    """No cell of an executed notebook wrote to stderr (JupyterLab's red boxes) or failed."""
    noisy = [("".join(o.get("text", "")) or o.get("ename", ""))[:300] for c in nb["cells"] for o in c.get("outputs", [])
             if o.get("name") == "stderr" or o.get("output_type") == "error"]
    assert not noisy, noisy


@pytest.mark.parametrize("name", ["colorizer_5", "colorizer_2"])
def test_bfloat16_training_saves_a_float32_model(cifar_dir, tmp_path, name):
    if name == "colorizer_2":  # builds on a trained autoencoder_1 (float32) whose decoder it freezes
        training.train("autoencoder_1", epochs=1, subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    rec = training.train(name, epochs=1, batch_size=32, subset=100, data_dir=cifar_dir, models_dir=tmp_path,
                         precision="bfloat16", verbose=0)
    assert rec["precision"] == "bfloat16" and rec["config"]["precision"] == "bfloat16"
    assert np.isfinite(rec["best_val_loss"])
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    model = keras.models.load_model(tmp_path / f"{name}.keras")
    inner = getattr(model, "generator", model)
    assert {layer.dtype_policy.name for layer in inner._flatten_layers()} == {"float32"}
    assert colorizer.predict_rgb(model, np.zeros((2, 32, 32, 3), np.uint8)).dtype == np.uint8


def test_output_layers_stay_float32_under_mixed_precision():
    with training.precision_policy("bfloat16"):
        for name in ("colorizer_1", "colorizer_3", "autoencoder_1"):
            model = models.get_model(name)
            assert any(layer.compute_dtype == "bfloat16" for layer in model._flatten_layers()), name
            assert model(np.zeros((1, 32, 32, model.input_shape[-1]), np.float32)).dtype == "float32", name
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_precision_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"'float8'.*float32, bfloat16, float16"):
        training.train("colorizer_3", epochs=1, subset=10, models_dir=tmp_path, precision="float8")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit) as e:  # the command line refuses it too, listing the choices
        training.main(["colorizer_3", "--precision", "float8", "--models-dir", str(tmp_path)])
    assert e.value.code == 2 and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="'half'"):
        with training.precision_policy("half"):
            pass
    assert keras.mixed_precision.global_policy().name == "float32"


def test_auto_precision_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: False)
    assert training.resolve_precision("auto") == "float32"  # emulated bfloat16 would be slower
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: True)
    import tensorflow as tf
    expected = "float32" if tf.config.list_logical_devices("GPU") else "bfloat16"
    assert training.resolve_precision("auto") == expected
    assert training.resolve_precision("float16") == "float16"


def test_bfloat16_without_bfloat16_units_warns(monkeypatch, recwarn):
    """Asked for by name on a CPU without AVX-512 BF16 or AMX, bfloat16 is accepted (it computes
    right) with a warning that it is emulated and slower; with the units, no warning."""
    import tensorflow as tf
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU computes bfloat16 itself")
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="'bfloat16' on a CPU without bfloat16 units .*'auto' picks float32"):
        assert training.resolve_precision("bfloat16") == "bfloat16"
    recwarn.clear()
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: True)
    assert training.resolve_precision("bfloat16") == "bfloat16"
    assert training.resolve_precision("float32") == "float32"
    assert not [w for w in recwarn if "bfloat16" in str(w.message)]
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: False)
    with training.precision_policy("bfloat16"):  # train() has warned already: the policy does not again
        pass
    assert not [w for w in recwarn if "bfloat16" in str(w.message)]


def test_extend_continues_a_finished_run_with_a_continuous_history(cifar_dir, tmp_path):
    kw = dict(subset=100, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    first = training.train("autoencoder_3", epochs=1, **kw)
    assert first["epochs_run"] == 1
    with pytest.raises(training.RunExists) as e:  # changed epochs without extend: one line, both ways out
        training.train("autoencoder_3", epochs=2, **kw)
    msg = str(e.value)
    assert "\n" not in msg and "epochs: 1 → 2" in msg and "resume='extend'" in msg and "overwrite=True" in msg
    rec = training.train("autoencoder_3", epochs=2, resume="extend", **kw)
    assert rec["epochs_run"] == 2 and rec["history"]["epoch"] == [0, 1] and len(rec["history"]["loss"]) == 2
    rows = (tmp_path / "autoencoder_3.log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "1"]  # one more epoch trained, not the first one again
    with pytest.raises(training.RunExists, match="not fewer"):
        training.train("autoencoder_3", epochs=1, resume="extend", **kw)
    assert rec["history"]["loss"][0] == pytest.approx(first["history"]["loss"][0])  # the first epoch is kept
    assert store.record(tmp_path / "autoencoder_3.keras")["config"]["epochs"] == 2
    assert store.load(tmp_path / "autoencoder_3.keras").name == "autoencoder_3"
    again = training.train("autoencoder_3", epochs=2, **kw)  # the same arguments: nothing to do
    assert again["epochs_run"] == 2


def test_extend_refuses_other_changes_naming_them(cifar_dir, tmp_path):
    kw = dict(epochs=1, data_dir=cifar_dir, models_dir=tmp_path, verbose=0)
    training.train("autoencoder_3", subset=100, **kw)
    with pytest.raises(training.RunExists, match=r"subset: 100 → 120.*only epochs and max_minutes can change"):
        training.train("autoencoder_3", subset=120, resume="extend", **kw)
    rec = training.train("autoencoder_3", subset=120, overwrite=True, **kw)  # afresh: a one-epoch history
    assert rec["epochs_run"] == 1 and rec["config"]["subset"] == 120


def test_cli_refusal_is_one_line_without_traceback(cifar_dir, tmp_path, capsys):
    args = ["autoencoder_3", "--subset", "100", "--data-dir", cifar_dir, "--models-dir", str(tmp_path), "--verbose", "0"]
    training.main(args + ["--epochs", "1"])
    with pytest.raises(SystemExit) as e:
        training.main(args + ["--epochs", "2"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "epochs: 1 → 2" in err and "--extend" in err and "Traceback" not in err
    training.main(args + ["--epochs", "2", "--extend"])
    assert store.record(tmp_path / "autoencoder_3.keras")["epochs_run"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "-4"], "batch_size must be a whole number >= 1, got -4"),
    (["--epochs", "0"], "epochs must be a whole number >= 1, got 0"),
    (["--max-minutes", "-1"], "max_minutes must be None or a number of minutes > 0, got -1.0"),
    (["--data", "landscapes", "--image-size", "30"], "cannot be built for image_size 30: it needs a multiple of 8"),
    (["--data", "no/such/folder"], "Dataset 'no/such/folder' is neither one of cifar10"),
])
def test_cli_refuses_bad_arguments_as_usage_errors_before_any_training(argv, message, tmp_path, capsys, monkeypatch):
    """Checked for every model named, before the first trains: one line and exit status 2, no traceback
    (autoencoder_3 first: it is valid, and must not train before colorizer_3's arguments are refused)."""
    monkeypatch.setenv("LANDSCAPES_DIR", str(tmp_path))  # a folder: the size, not the data, is what is wrong
    with pytest.raises(SystemExit) as e:
        training.main(["autoencoder_3", "colorizer_3", "--models-dir", str(tmp_path / "m"), *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()  # nothing written


def test_cli_refuses_a_data_source_without_images_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # folders, and not one file
    for argv, message in ((["--data", str(tmp_path / "empty")], f"Image folder '{tmp_path / 'empty'}' contains no files"),
                          (["--data-dir", str(tmp_path / "nowhere")], f"CIFAR-10 folder '{tmp_path / 'nowhere'}' does not exist")):
        with pytest.raises(SystemExit) as e:
            training.main(["colorizer_3", "--models-dir", str(tmp_path / "m"), *argv])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and "Traceback" not in err
        assert not (tmp_path / "m").exists()  # no run folder left for the next run to call interrupted
    with pytest.raises(ValueError, match="contains no files"):
        training.train("colorizer_3", data=str(tmp_path / "empty"), models_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cli_refuses_a_model_whose_base_is_neither_trained_nor_trained_first(tmp_path, capsys):
    """colorizer_2 builds on autoencoder_1: refused up front unless it exists or comes first in the command."""
    with pytest.raises(SystemExit) as e:
        training.main(["autoencoder_3", "colorizer_2", "autoencoder_1", "--models-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "colorizer_2 builds on a trained autoencoder_1" in err
    assert "name autoencoder_1 before colorizer_2" in err and not (tmp_path / "m").exists()
    ok = training.check_call("colorizer_2", data="cifar10", data_dir=None, image_size=None, batch_size=None, epochs=1,
                             subset=None, val_fraction=0.1, max_minutes=None, seed=0, learning_rate=None,
                             lr_schedule="plateau", resume=True, verbose="auto", model_options=None)
    assert ok[1].name == "cifar10" and ok[2] == 32 and ok[3] == 128  # dataset, size, batch


def test_small_runs_read_right_plural_and_a_one_epoch_plot_has_whole_epoch_ticks(capsys):
    import plots
    training.announce(dict(model_name="m", data="d", image_size=32, epochs=1, max_minutes=1), {"final": "x"}, "lines")
    assert "up to 1 epoch or 1 minute, whichever" in capsys.readouterr().out
    training.announce(dict(model_name="m", data="d", image_size=32, epochs=3, max_minutes=2.5), {"final": "x"}, "lines")
    assert "up to 3 epochs or 2.5 minutes" in capsys.readouterr().out
    recs = [dict(model="colorizer_3", outputs="ab", history=dict(loss=[0.5], val_loss=[0.4])),
            dict(model="colorizer_4", outputs="ab_bins", history=dict(loss=[3.0, 2.0], val_loss=[2.9, 2.5]))]
    fig = plots.plot_losses(recs)
    assert len(fig.axes) == 2  # one panel per kind of loss
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks == [1.0] and ax.get_xlim() == (0.5, 1.5)
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # beside the data, not over it
