"""Where one training step's time goes: TensorFlow's profiler on real training steps, summed by op.

    python benchmarks/profile_step.py [--data landscapes] [--image-size 64] [MODEL ...]
    python benchmarks/profile_step.py --batch-size 32 --precision float32 colorizer_6

For each model: a few warm-up steps, then `--steps` training steps traced by `tf.profiler`; the
host's op events are summed by op type and grouped (convolutions and their gradients, batch norm,
dtype casts, the colour-class head and its loss, the optimizer, element-wise and the rest), with
the Keras/Python time outside any op. The input pipeline shares the same two cores, so it is
measured apart: its CPU seconds per image (process time while only the pipeline runs), and that
CPU time as a share of one training step's wall time x cores. Prints a JSON line per model and a
table; the README's Performance section quotes it.
"""
import argparse
import collections
import json
import os
import pathlib
import re
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import setup_tf  # noqa: E402,F401  (before TensorFlow: the environment it reads at import)

import tensorflow as tf  # noqa: E402

import machine  # noqa: E402
import throughput  # noqa: E402  (benchmarks/: the same sources and model building as the throughput table)
import training  # noqa: E402

GROUPS = [  # (group, test on the op's name and type), first match wins; layers are named by their prefix
    ("optimizer", lambda n, t: "adam" in n.lower() or t.startswith("ResourceApply") or "AssignVariable" in t
     or "AssignAddVariable" in t or "AssignSub" in t),
    ("loss", lambda n, t: "compile_loss" in n),
    ("class head", lambda n, t: any(k in n for k in ("ab_logits", "ab_mix", "ab_bins")) or t == "Softmax"),
    ("dtype casts", lambda n, t: t == "Cast"),
    ("batch norm", lambda n, t: "_bn" in n or "batch_norm" in n.lower() or "FusedBatchNorm" in t),
    ("convolution", lambda n, t: "_conv" in n or t.startswith(("Conv2D", "DepthwiseConv", "MatMul", "BatchMatMul"))),
    ("ReLU", lambda n, t: "_relu" in n or t.startswith("Relu")),
    ("other", lambda n, t: True),
]
SKIP = ("Run", "Process")  # the executor's own events (a step's whole span, thread-pool waits), not ops


def _op_type(t):
    """oneDNN's kernels under their plain names: _MklNativeConv2DBackpropFilter -> Conv2DBackpropFilter."""
    return re.sub(r"^_(MklNative|Mkl|Fused)", "", t)


def profile_ops(logdir):
    """{(op name, op type): self µs} of the TensorFlow op events in the profile under `logdir`
    (time inside a nested event counts for the inner one only; the enclosing tf.function event,
    `__inference_…`, is left out: its self time is the executor's own)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # shipped with TensorFlow
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(pathlib.Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        meta = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            stack = []  # (end ps, key) of the open events on this thread
            for ev in sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps)):
                name = meta.get(ev.metadata_id, "")
                n, sep, t = name.rpartition(":")
                if not sep or " " in t or t.startswith("__inference") or t in SKIP:
                    continue
                key = (n, _op_type(t))
                while stack and stack[-1][0] <= ev.offset_ps:
                    stack.pop()
                if stack:  # the parent's self time loses this child's
                    totals[stack[-1][1]] -= ev.duration_ps / 1e6
                totals[key] += ev.duration_ps / 1e6
                stack.append((ev.offset_ps + ev.duration_ps, key))
    return totals


def group(totals):
    out = collections.Counter()
    for (n, t), us in totals.items():
        for g, test in GROUPS:
            if test(n, t):
                out[g] += us
                break
    return out


def pipeline_cpu_per_image(source, inputs, outputs, batch_size, batches=30):
    """CPU seconds (all threads of this process) per image to produce training batches, alone."""
    it = iter(source.dataset(inputs, outputs, batch_size).repeat())
    next(it)
    c, n = time.process_time(), 0
    for _ in range(batches):
        n += int(next(it)[0].shape[0])
    return (time.process_time() - c) / n


def profile_model(name, source, settings, steps):
    import keras
    import models
    keras.utils.set_random_seed(0)
    inputs, outputs = models.contract(name)
    model = throughput.build_for_training(name, source, settings)
    batch = settings["batch_size"]
    it = iter(source.dataset(inputs, outputs, batch).repeat())
    xs = [next(it) for _ in range(steps)]
    model.fit(tf.data.Dataset.from_tensors(xs[0]).repeat(3), verbose=0)  # trace and warm up
    mem = tf.data.Dataset.from_tensor_slices(tuple(tf.stack(v) for v in zip(*xs))).unbatch().batch(batch)
    mem = mem.cache()
    model.fit(mem, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(mem, epochs=1, verbose=0)
    step_s = (time.perf_counter() - t) / steps
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(mem, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        totals = profile_ops(logdir)
    if os.environ.get("PROFILE_DUMP"):
        for (n, t), us in totals.most_common(int(os.environ["PROFILE_DUMP"])):
            print(f"{us / steps / 1e3:9.2f} ms  {t:28s} {n}")
    groups = group(totals)
    op_us = sum(groups.values())
    wall_us = step_s * steps * 1e6
    cores = os.cpu_count() or 1
    cpu = pipeline_cpu_per_image(source, inputs, outputs, batch)
    by_type = collections.Counter()
    for (n, t), us in totals.items():
        by_type[t] += us
    return dict(
        model=name, step_ms=round(1e3 * step_s, 1), images_per_s=round(batch / step_s, 1),
        # op time summed over threads: it can pass the wall time when ops run side by side
        op_ms_per_step={g: round(us / steps / 1e3, 2) for g, us in groups.most_common()},
        op_share={g: round(us / op_us, 3) for g, us in groups.most_common()},
        top_op_types={t: round(us / steps / 1e3, 2) for t, us in by_type.most_common(8)},
        ops_over_wall_x_cores=round(op_us / (wall_us * cores), 3),
        pipeline_cpu_ms_per_image=round(1e3 * cpu, 3),
        pipeline_share_at_this_rate=round(cpu * batch / (step_s * cores), 3), **settings)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=["colorizer_3", "colorizer_4", "colorizer_6"])
    p.add_argument("--data", default="landscapes")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's training batch")
    p.add_argument("--precision", default=training.DEFAULTS["precision"], choices=["auto", *training.PRECISIONS])
    args = p.parse_args()
    settings = dict(training.DEFAULTS, precision=training.resolve_precision(args.precision))
    settings.pop("epochs", None)  # batch_size: each model's own, set below
    print(json.dumps(machine.describe()))
    batches = {name: training.batch_size_for(name, args.batch_size, args.image_size) for name in args.models}
    source = throughput.Source(args.steps * max(batches.values()) * 2, args.data, args.image_size)
    rows = [profile_model(name, source, dict(settings, batch_size=batches[name]), args.steps) for name in args.models]
    for r in rows:
        print(json.dumps(r), flush=True)
    print()
    groups = [g for g, _ in GROUPS]
    print(f"{'model':12s} {'step ms':>8s} {'img/s':>7s} " + " ".join(f"{g[:14]:>14s}" for g in groups)
          + f" {'pipeline CPU':>12s}")
    for r in rows:
        print(f"{r['model']:12s} {r['step_ms']:8.1f} {r['images_per_s']:7.0f} "
              + " ".join(f"{100 * r['op_share'].get(g, 0):13.1f}%" for g in groups)
              + f" {100 * r['pipeline_share_at_this_rate']:11.1f}%")


if __name__ == "__main__":
    main()
