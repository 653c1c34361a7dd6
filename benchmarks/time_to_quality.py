"""Time to quality: minutes each model needs to reach a fixed validation loss, today's code and
defaults against the new ones, on this host.

    python benchmarks/time_to_quality.py [--models colorizer_6 colorizer_3] [--new-dir runs/models]

Minutes to a target = (epochs the run needed to reach it) x (seconds per epoch on this host).
Epochs come from the training records: "today" from the published record at the baseline revision
(`saved_models/landscapes/NAME.json`, trained with the defaults of that revision), "new" from a run
under the new defaults (`<new-dir>/landscapes/NAME.json`, e.g. the 30-minute landscape protocol).
Seconds per epoch are measured here for both, by one full epoch of each revision's own training
code on the same photos (a fresh process each, so the host and its load are the same), unless the
new record was written on this CPU (and --measure-new is not given). The target of a model is the best validation loss today's
published run reached (colorizer_6: 0.979 after 55 minutes), unless given with --target.
Prints a JSON line per model and a table.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the environment as the user set it, for each revision's own process: importing machine sets the new
# code's TensorFlow environment (oneDNN on), which the baseline's code did not
USER_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from levers import BASELINE, unpack  # noqa: E402
import machine  # noqa: E402
import store  # noqa: E402


def epochs_to(history, target):
    """1-based epoch at which val_loss first reached `target`, or None."""
    for i, v in enumerate(history["val_loss"]):
        if v <= target:
            return i + 1
    return None


def epoch_seconds(tree, name, size, extra=()):
    """Seconds per epoch (validation included) of one full landscape epoch of `tree`'s training code,
    without the decoding calibration after it (about 12 minutes for colorizer_6, not training time)."""
    with tempfile.TemporaryDirectory() as models_dir:
        argv = [name, "--data", "landscapes", "--image-size", str(size), "--epochs", "1",
                "--models-dir", models_dir, "--verbose", "0", *extra]
        if "--no-calibrate" in (pathlib.Path(tree) / "training.py").read_text():
            cmd = [sys.executable, "training.py", *argv, "--no-calibrate"]
        else:  # code from before the flag: its registry entry (a builder function, later a frozen
            # dataclass) carries the calibration
            cmd = [sys.executable, "-c", "import dataclasses, models, training\n"
                   "s = models.MODELS[%r]\n"
                   "if dataclasses.is_dataclass(s): models.MODELS[%r] = dataclasses.replace(s, calibrate=None)\n"
                   "else: s.calibrate = None\n"
                   "training.main(%r)" % (name, name, argv)]
        out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=USER_ENV)
        r = store.read_json(store.path(name, models_dir, "landscapes", ".json"))
        if r is None:
            raise RuntimeError(f"{' '.join(cmd)} in {tree} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return 60 * r["train_minutes"] / r["epochs_run"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["colorizer_6", "colorizer_3"])
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--new-dir", default="runs/models", help="models dir of the runs under the new defaults")
    p.add_argument("--target", nargs="*", default=[], help="NAME=VAL_LOSS, e.g. colorizer_6=0.979")
    p.add_argument("--measure-new", action="store_true",
                   help="time an epoch of the new code here even when the record comes from this CPU "
                        "(for a run that shared the machine)")
    args = p.parse_args()
    targets = dict(t.split("=") for t in args.target)
    host = machine.describe()
    print(json.dumps(host))
    rows = []
    with tempfile.TemporaryDirectory() as old:
        unpack(args.baseline, old)
        for name in args.models:
            before = store.read_json(store.path(name, pathlib.Path(old) / store.MODELS_DIR, "landscapes", ".json"))
            after = store.read_json(store.path(name, ROOT / args.new_dir, "landscapes", ".json"))
            target = float(targets.get(name, before["best_val_loss"]))
            size = before["image_size"]
            old_s = epoch_seconds(old, name, size)
            same_host = all(after.get("machine", {}).get(k) == host[k] for k in ("cpu", "amx", "onednn"))
            # at the batch the new run trained at (a model's own batch may have changed since it was recorded)
            new_s = 60 * after["train_minutes"] / after["epochs_run"] if same_host and not args.measure_new \
                else epoch_seconds(ROOT, name, size, ("--batch-size", str(after["config"]["batch_size"])))
            e_old, e_new = epochs_to(before["history"], target), epochs_to(after["history"], target)
            row = dict(model=name, target_val_loss=target, image_size=size,
                       today_epochs=e_old, today_s_per_epoch=round(old_s, 1),
                       today_minutes=None if e_old is None else round(e_old * old_s / 60, 1),
                       new_epochs=e_new, new_s_per_epoch=round(new_s, 1),
                       new_minutes=None if e_new is None else round(e_new * new_s / 60, 1),
                       new_best_val_loss=after["best_val_loss"], new_train_minutes=round(after["train_minutes"], 1),
                       new_settings={k: after.get(k, after.get("config", {}).get(k)) for k in
                                     ("batch_size", "precision", "jit_compile", "lr_schedule")},
                       machine=host, today_env={"TF_ENABLE_ONEDNN_OPTS": USER_ENV.get("TF_ENABLE_ONEDNN_OPTS")})
            if e_old and e_new:
                row["time_ratio"] = round(row["new_minutes"] / row["today_minutes"], 3)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'model':12s} {'target':>7s} {'today: epochs x s = min':>26s} {'new: epochs x s = min':>24s} {'ratio':>6s}")
    for r in rows:
        t = f"{r['today_epochs']} x {r['today_s_per_epoch']:.0f} = {r['today_minutes']}"
        n = f"{r['new_epochs']} x {r['new_s_per_epoch']:.0f} = {r['new_minutes']}"
        print(f"{r['model']:12s} {r['target_val_loss']:7.4f} {t:>26s} {n:>24s} {r.get('time_ratio', float('nan')):6.2f}")


if __name__ == "__main__":
    main()
