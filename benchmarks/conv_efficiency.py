"""How close each convolution of a model comes to this host's matmul peak, layer by layer.

    python benchmarks/conv_efficiency.py [MODEL ...] [--image-size 64] [--batch-size 128]

Why a model's training stays below a share of the peak: every Conv2D / Conv2DTranspose of the model is
rebuilt alone (same configuration, the training defaults' number type) and timed on a random batch of
its own input shape — forward, kernel gradient and input gradient (not for a layer fed by the model's
input, whose gradient training never computes) — in a compiled function, median of `--repeats`. FLOPs
are counted as throughput.py counts them (2 x multiply-adds, for the forward pass and each gradient);
shares are of the float32 (or bfloat16) matmul peak measured in the same process. The whole training
step (Keras's train_on_batch on in-memory random data of the same shapes) is timed too: the
convolutions' share of it, and the model's share of the peak (the layers' FLOPs over the step's time;
throughput.py's count also has the first layer's input gradient). Each model trains at its own batch
for the size (training.batch_size_for) unless `--batch-size` is given. Layers of one shape timed in
separate processes scatter by 10-30 points, and the matmul peak is not a ceiling (a convolution can
pass it): read the shares as rough. Prints a table per model and a JSON line (with
machine.describe()); the README's Performance section quotes it.
"""
import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import setup_tf  # noqa: E402,F401  (before TensorFlow: the environment it reads at import)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import machine  # noqa: E402
import models  # noqa: E402
import throughput  # noqa: E402  (benchmarks/: its FLOP count, per layer)
import training  # noqa: E402

# the single-network colorizers with an L input and ab targets (time_step feeds those): colorizer_1/2
# predict RGB, colorizer_5 is a GAN of two networks, colorizer_7 takes hint channels too
MEASURED = ("colorizer_3", "colorizer_4", "colorizer_6")


def conv_layers(model):
    """The model's Conv2D and Conv2DTranspose layers, in order."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]


def median_seconds(fn, repeats, warm=2):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def time_layer(layer, batch, input_grad, repeats):
    """Median seconds of one training pass of a fresh copy of `layer` on a random batch: forward,
    the kernel's gradient and, with `input_grad`, the input's."""
    copy = layer.__class__.from_config(layer.get_config())
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *layer.input.shape[1:])), dtype=copy.compute_dtype)
    copy.build(x.shape)
    dy = tf.constant(rng.standard_normal((batch, *layer.output.shape[1:])), dtype=copy.compute_dtype)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = copy(x)
        return tape.gradient(y, ([x] if input_grad else []) + [copy.kernel], output_gradients=dy)

    return median_seconds(lambda: [g.numpy() for g in step()], repeats)


def time_step(model, batch, repeats):
    """Median seconds of Keras's training step (train_on_batch) on random in-memory data of the model's shapes."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, *model.input_shape[1:])).astype("float32")
    y = rng.uniform(-0.3, 0.3, (batch, *model.input_shape[1:3], 2)).astype("float32")  # ab targets
    return median_seconds(lambda: model.train_on_batch(x, y), repeats)


def measure(name, size, batch, repeats, peak):
    model = models.get_model(name, input_shape=(size, size, 1))
    first = {id(layer) for layer in conv_layers(model) if layer.input is model.inputs[0]}
    rows = []
    for layer in conv_layers(model):
        input_grad = id(layer) not in first
        flops = throughput.conv_flops(layer) * batch * (3 if input_grad else 2)
        s = time_layer(layer, batch, input_grad, repeats)
        rows.append(dict(layer=layer.name, input=list(layer.input.shape[1:]), output=list(layer.output.shape[1:]), flop=int(flops),
                         gflop=round(flops / 1e9, 3), ms=round(1e3 * s, 2), gflops=round(flops / s / 1e9, 1),
                         peak_share=round(flops / s / 1e9 / peak, 3)))
    step = time_step(model, batch, repeats)
    conv_s = sum(r["ms"] for r in rows) / 1e3
    conv_flops = sum(r["flop"] for r in rows)
    return dict(model=name, image_size=size, batch_size=batch, layers=rows, step_ms=round(1e3 * step, 1),
                images_per_s=round(batch / step, 1), conv_ms=round(1e3 * conv_s, 1),
                conv_share_of_step=round(conv_s / step, 3), conv_peak_share=round(conv_flops / conv_s / 1e9 / peak, 3),
                model_peak_share=round(conv_flops / step / 1e9 / peak, 3))


def print_table(r, peak):
    print(f"\n{r['model']} at {r['image_size']} px, batch {r['batch_size']} (peak {peak:.0f} GFLOP/s)")
    print(f"{'layer':22s} {'input':>14s} {'output':>14s} {'GFLOP':>7s} {'ms':>8s} {'GFLOP/s':>8s} {'of peak':>7s}")
    for x in r["layers"]:
        print(f"{x['layer']:22s} {'x'.join(map(str, x['input'])):>14s} {'x'.join(map(str, x['output'])):>14s} "
              f"{x['gflop']:7.2f} {x['ms']:8.1f} {x['gflops']:8.1f} {100 * x['peak_share']:6.1f}%")
    print(f"convolutions alone: {r['conv_ms']:.0f} ms, {100 * r['conv_peak_share']:.1f} % of the peak; "
          f"training step {r['step_ms']:.0f} ms ({r['images_per_s']:.0f} images/s): the convolutions' "
          f"{100 * r['conv_share_of_step']:.0f} % of it; the model at {100 * r['model_peak_share']:.1f} % of the peak")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=["colorizer_3"], help=f"any of {', '.join(MEASURED)} (default colorizer_3)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's own at that size")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default=training.DEFAULTS["precision"],
                   help="a CPU's number types (float16 is for GPUs)")
    args = p.parse_args()
    for name in args.models:
        if name not in MEASURED:
            p.error(f"Cannot measure {name!r}; choose one of: {', '.join(MEASURED)}")
    if args.image_size < 8 or args.image_size % 8 or (args.batch_size or 1) < 1 or args.repeats < 1:
        p.error(f"--image-size must be a multiple of 8 (got {args.image_size}), --batch-size and --repeats "
                f"at least 1 (got {args.batch_size}, {args.repeats})")
    precision = training.resolve_precision(args.precision)
    host = machine.describe()
    peak = host.get(f"matmul_gflops_{precision}", host["matmul_gflops_float32"])
    with training.precision_policy(precision):
        for name in args.models:
            batch = training.batch_size_for(name, args.batch_size, args.image_size)
            r = measure(name, args.image_size, batch, args.repeats, peak)
            print_table(r, peak)
            print(json.dumps({**r, "precision": precision, "peak_gflops": peak, "machine": host}))


if __name__ == "__main__":
    main()
