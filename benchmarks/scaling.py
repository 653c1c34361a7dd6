"""Images/s of the same training on 1 and on 2 workers (tf.distribute.MultiWorkerMirroredStrategy,
local processes on 127.0.0.1, TF_CONFIG as on several machines), and the scaling efficiency
(images/s on n workers / (n x images/s on one)).

    python benchmarks/scaling.py [--data landscapes] [--model colorizer_3] [--workers 1 2] [--epochs 3]

On one 2-core machine two workers share the same cores and add gradient all-reduces, so they are
slower than one: this shows the overhead, not the gain that separate machines bring. Trains into
runs/scaling/ (scratch); each worker count starts afresh.
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(args, n, out):
    """Train with n workers; returns the chief's record."""
    shutil.rmtree(out, ignore_errors=True)
    import distribute
    tf_configs, procs = distribute.local_tf_configs(n), []
    for i in range(n):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, str(ROOT / "training.py"), args.model, "--data", args.data, "--image-size",
               str(args.image_size), "--epochs", str(args.epochs),
               "--subset", str(args.subset), "--models-dir", str(out), "--verbose", "0"]
        if args.batch_size is not None:  # 0 or less reaches training.py, which refuses it
            cmd += ["--batch-size", str(args.batch_size)]
        if n > 1:
            env["TF_CONFIG"] = tf_configs[i]
            cmd += ["--strategy", "multi-worker"]
        procs.append(subprocess.Popen(cmd, env=env))
    if any(p.wait() for p in procs):
        raise SystemExit(f"{n} worker(s): a worker failed")
    import data
    import store
    return store.record(store.path(args.model, out, data.get(args.data).name))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="landscapes")
    p.add_argument("--model", default="colorizer_3")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the model's own)")
    args = p.parse_args()
    import machine
    host = machine.describe()
    rows = []
    for n in args.workers:
        t = time.perf_counter()
        rec = run(args, n, ROOT / "runs" / "scaling" / f"{n}")
        rows.append((n, rec["images_per_s"], time.perf_counter() - t))
        print(f"{n} worker(s): {rec['images_per_s']:.0f} images/s in training ({rec['epochs_run']} epochs), "
              f"{rows[-1][2]:.0f} s in all", flush=True)
    base = rows[0][1] / rows[0][0]
    print(f"\n{args.model} on {args.data} at {args.image_size} px, batch {rec['batch_size']} (global), {args.subset} "
          f"photos, {args.epochs} epochs; host: {host['cpu']}, {host['cores']} cores, AMX {host['amx']}")
    print(f"{'workers':>7s} {'images/s':>9s} {'efficiency':>10s}")
    for n, ips, _ in rows:
        print(f"{n:7d} {ips:9.0f} {ips / (n * base):10.2f}")


if __name__ == "__main__":
    main()
