"""Time colorizer_6's calibration (calibration.calibrate_colorizer_6, the decoding chosen after training)
on a saved model's own validation photos, this checkout's code or another's, side by side.

    python benchmarks/calibration_speed.py [landscapes/colorizer_6] [--rounds 2] [--other-root DIR]

Each round runs the calibration in a fresh process for this checkout and, with `--other-root` (a
checkout of another revision: `git worktree add /tmp/old <commit>`), for that one, alternating; prints
a JSON line per run (seconds, the chosen setting, the machine) and the medians and their ratio. The
chosen setting and the sweep's scores must agree between the two (the speed work changes no value).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import calibration, data, machine, models, store
# the setup of calibration.calibrate_saved, which would also write the model (and older trees lack it)
path = store.resolve({name!r}, {models_dir!r})
model, cfg = store.load(path), store.record(path)["config"]
spec = models.MODELS[model.name]
sets = data.get(cfg["data"]).training_sets(spec.contract, cfg["image_size"], cfg["subset"], cfg["seed"],
                                           cfg["val_fraction"], cfg["batch_size"])
photos = sets.calib_images()
t = time.perf_counter()
cal = calibration.calibrate(spec, model, photos)
print(json.dumps({{"seconds": round(time.perf_counter() - t, 1), "photos": cal["images"], "chosen": cal["chosen"],
                  "sweep": cal["sweep"], "machine": machine.describe()}}))
"""


def run(root, name, models_dir):
    code = CHILD.format(root=str(root), name=name, models_dir=str(models_dir))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"calibration in {root} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="landscapes/colorizer_6")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--other-root", help="a checkout of another revision, timed alternately with this one")
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    roots = {"this": ROOT} | ({"other": pathlib.Path(args.other_root).resolve()} if args.other_root else {})
    for label, root in roots.items():
        if not (root / "calibration.py").exists():
            p.error(f"--other-root {root} has no calibration.py: give a checkout of this project")
    times = {label: [] for label in roots}
    results = {}
    for r in range(args.rounds):
        for label, root in (roots.items() if r % 2 == 0 else reversed(roots.items())):
            results[label] = run(root, args.model, args.models_dir)
            times[label].append(results[label]["seconds"])
            print(json.dumps({"round": r, "tree": label, **results[label]}), flush=True)
    for label in roots:
        print(f"{label}: median {statistics.median(times[label]):.1f} s over {args.rounds} run(s)")
    if "other" in roots:
        ratio = statistics.median(times["this"]) / statistics.median(times["other"])
        keys = ("mix", "temperature", "gain", "chroma_min")
        same = [results["this"]["chosen"][k] for k in keys] == [results["other"]["chosen"][k] for k in keys]
        gap = max(abs(a[k] - b[k]) for a, b in zip(results["this"]["sweep"], results["other"]["sweep"])
                  for k in a if isinstance(a[k], float) and k not in keys)
        print(f"this / other: {ratio:.2f} of the time; same choice: {same}; largest difference of any score "
              f"of the sweep {gap:.2e}")


if __name__ == "__main__":
    main()
