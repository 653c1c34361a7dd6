"""Speed levers side by side: training images/s of today's code and settings against each lever,
measured in one run, interleaved, on this host.

    python benchmarks/levers.py [--rounds 2] [--baseline REF] [--data landscapes] [--image-size 64]

"today" is the project at git revision REF (default: the last one before the speed work) with its
own defaults, unpacked into a temporary folder and timed by its own benchmarks/throughput.py; every
other row is this checkout's throughput.py with one setting changed from the new defaults. Each
measurement is a fresh process (`--quick --train-only`: 15 steps after warm-up, batches from the
real photo pipeline); the rounds alternate the order of the settings, so a busy moment hits all of
them; "today" and the new defaults are timed in every round, the other levers in the first. Prints a
JSON line per measurement, then the median images/s per model and setting and its ratio to today.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
BASELINE = "30c9454"  # the last revision before the speed work (issue: speed)

# (label, throughput.py arguments, the models it is tried on[, environment]); "today" runs in the baseline tree
LEVERS = [
    ("today", [], "all"),
    ("new defaults", [], "all"),
    ("new, Keras batch norm", ["--batch-norm", "keras"], "colorizer_3 colorizer_6"),
    ("new + XLA", ["--jit", "--precision", "bfloat16"], "colorizer_3 colorizer_6"),
    ("new, float32", ["--precision", "float32"], "colorizer_3 colorizer_6"),
    ("new, batch 64", ["--batch-size", "64"], "colorizer_3"),  # colorizer_6's own batch: its "new defaults"
    ("new, batch 256", ["--batch-size", "256"], "colorizer_3 colorizer_6"),
    ("new, batch 128", ["--batch-size", "128"], "colorizer_6"),  # colorizer_6 trains at 64 by default at 64 px
    ("new, 1 inter-op thread", ["--threads", "0,1"], "colorizer_3 colorizer_6"),
    # oneDNN forced off: TensorFlow's own choice on CPUs without AVX-512 VNNI/BF16 or AMX (machine.py turns it on)
    ("new, oneDNN off", [], "colorizer_3 colorizer_6", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
]


def unpack(revision, folder):
    """The project's files at git `revision`, written into `folder` (today's code, to time beside the new)."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


def run(tree, model, extra, data, size, new, env=None):
    cmd = [sys.executable, "benchmarks/throughput.py", "--quick", "--data", data, "--image-size", str(size), model, *extra]
    if new:
        cmd.append("--train-only")
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    for line in out.stdout.splitlines():
        if line.startswith('{"model"'):
            return json.loads(line)
    raise RuntimeError(f"{' '.join(cmd)} in {tree} (environment {env or {}}) failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def host_description():
    """machine.describe(peak=False) of this host, asked of a child process: importing machine.py here
    would turn oneDNN on for every child, "today" included (its revision never did)."""
    code = "import json, machine; print(json.dumps(machine.describe(peak=False)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode:
        raise RuntimeError(f"describing this host failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def row_machine(res, host):
    """The machine of a measurement: its own description (this checkout's throughput.py), else, for
    a revision that printed none ("today"), this host's with the peak that revision measured; its
    oneDNN state is that revision's default, which it did not report (None)."""
    if res.get("machine"):
        return res["machine"]
    peaks = {"matmul_gflops_float32": res.get("machine_gflops")}
    precision = res.get("tuned_settings", {}).get("precision", "float32")
    if precision != "float32":  # the peak in the number type it trained in, as this checkout's rows have it
        peaks[f"matmul_gflops_{precision}"] = res.get("machine_gflops_tuned_precision")
    return {**host, "onednn": None, **peaks}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--baseline", default=BASELINE, help="git revision of 'today'")
    p.add_argument("--data", default="landscapes")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--models", nargs="+", default=["colorizer_3", "colorizer_4", "colorizer_6"])
    p.add_argument("--levers", nargs="*", default=None, help="labels to run (default all)")
    args = p.parse_args()
    levers = [lv for lv in LEVERS if args.levers is None or lv[0] in args.levers]
    results, host = {}, host_description()
    with tempfile.TemporaryDirectory() as old:
        unpack(args.baseline, old)
        for r in range(args.rounds):
            for model in args.models:
                for label, extra, which, *env in levers if r % 2 == 0 else reversed(levers):
                    if which != "all" and (model not in which.split() or r > 0):
                        continue  # one lever, one model: timed in the first round only
                    today = label == "today"
                    res = run(old if today else ROOT, model, extra, args.data, args.image_size, new=not today,
                              env=env[0] if env else None)
                    ips = res["tuned_train_images_per_s"]
                    results.setdefault((model, label), []).append(ips)
                    print(json.dumps(dict(round=r, model=model, setting=label, train_images_per_s=ips,
                                          peak_share=res["peak_share"], settings=res["tuned_settings"],
                                          machine=row_machine(res, host))), flush=True)
    print(f"\n{'model':12s} {'setting':26s} {'img/s (median)':>14s} {'vs today':>8s}")
    for model in args.models:
        base = statistics.median(results[model, "today"]) if (model, "today") in results else None
        for label, *_ in levers:
            if (model, label) in results:
                m = statistics.median(results[model, label])
                ratio = f"{m / base:7.2f}x" if base else ""
                print(f"{model:12s} {label:26s} {m:14.1f} {ratio:>8s}")


if __name__ == "__main__":
    main()
