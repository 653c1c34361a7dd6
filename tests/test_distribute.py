"""Training on several workers (distribute.py): TF_CONFIG checked up front, each worker's shard, and a
real run of two local workers (two processes on 127.0.0.1, CPU only) killed and started again."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import data
import distribute

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,match", [
    ("", "needs TF_CONFIG"), ("{not json", "not JSON"), ('{"cluster": {}}', "needs a cluster"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "role 'ps'"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "'localhost' .* not host:port"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "not one of the cluster's tasks"),
    ('{"cluster": {"worker": ["a:1"], "chief": ["c:1", "d:2"]}, "task": {"type": "chief", "index": 0}}', "one chief")])
def test_tf_config_is_checked_with_a_message_naming_the_problem(text, match):
    with pytest.raises(ValueError, match=match):
        distribute.read_tf_config(text)


def test_roles_and_shards():
    two = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert distribute.role_in(two) == distribute.Role(1, 2, False)
    chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}
    assert distribute.role_in(chief) == distribute.Role(0, 2, True)
    assert distribute.worker_dir("m", distribute.Role(1, 2, False)) == os.path.join("m", ".workers", "worker-1")
    rows = np.arange(11)
    parts = [data.shard_rows(rows, (i, 3)) for i in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]  # equal: every worker takes as many steps
    assert len(set(np.concatenate(parts))) == 9  # disjoint
    assert data.shard_rows(rows, None) is rows


def _start_pair(folder, models_dir, epochs, cache):
    procs = []
    for tf_config in distribute.local_tf_configs(2):
        env = {**os.environ, "TF_CONFIG": tf_config, "COLORIZE_CACHE": str(cache),
               "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, str(ROOT / "training.py"), "colorizer_3", "--data", str(folder), "--image-size", "16",
               "--epochs", str(epochs), "--batch-size", "8", "--strategy", "multi-worker", "--models-dir",
               str(models_dir), "--verbose", "lines", "--precision", "float32",
               "--lr-schedule", "cosine", "--max-minutes", "30"]  # the workers share one cosine clock
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def test_two_local_workers_train_one_model_and_resume_together_after_a_kill(tmp_path):
    import store
    folder = tmp_path / "photos"
    r = np.random.default_rng(0)
    for c in "ab":
        (folder / c).mkdir(parents=True)
        for i in range(30):  # colour that the gray predicts: bright blue sky above dark green ground
            img = np.zeros((24, 24, 3), np.uint8)
            img[:12] = (90, 140, 230) if c == "a" else (120, 170, 240)
            img[12:] = (40, 110, 30) if c == "a" else (60, 90, 20)
            Image.fromarray(np.clip(img + r.integers(-15, 16, img.shape), 0, 255).astype(np.uint8)).save(
                folder / c / f"{i}.png")
    models_dir, cache = tmp_path / "models", tmp_path / "cache"
    state = models_dir / "photos" / "colorizer_3.run" / "state.json"
    epochs = 4
    procs = _start_pair(folder, models_dir, epochs, cache)

    def done():
        try:
            return json.loads(state.read_text()).get("epochs_done", 0)
        except (OSError, ValueError):  # not written yet, or being written
            return 0
    t0 = time.time()
    while time.time() - t0 < 300 and done() < 1 and all(p.poll() is None for p in procs):
        time.sleep(0.05)  # the first epoch is done and backed up: kill the pair in the middle of its run
    alive = all(p.poll() is None for p in procs)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert alive, "a worker ended before the kill:\n" + "\n".join(p.stdout.read()[-2000:] for p in procs)
    assert 1 <= done() < epochs, "the pair was not killed in the middle of its run"
    procs = _start_pair(folder, models_dir, epochs, cache)
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert all("Resuming colorizer_3 from epoch" in o or "resuming after epoch 0" in o for o in outs)
    chief = store.load(models_dir / "photos" / "colorizer_3.keras")  # the chief's model, where one machine puts it
    rec = store.record(models_dir / "photos" / "colorizer_3.keras")
    assert rec["history"]["epoch"] == list(range(epochs)) and rec["workers"] == 2  # continuous over the kill
    other = store.load(models_dir / ".workers" / "worker-1" / "photos" / "colorizer_3.keras")
    for a, b in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # one model: the workers' weights agree
    assert store.record(models_dir / ".workers" / "worker-1" / "photos" / "colorizer_3.keras")["epochs_run"] == epochs
