"""Training and inference throughput of every registered model, against the machine's own peak.

    python benchmarks/throughput.py [--quick] [MODEL ...]
    python benchmarks/throughput.py --compare [--quick] [MODEL ...]   # plain vs tuned settings
    python benchmarks/throughput.py --data landscapes --image-size 64 colorizer_3 colorizer_4 colorizer_6

Prints a JSON line per model and a table: images/s (training, steady state after warm-up, batches
from the real tf.data pipeline; inference), forward FLOPs per image counted from the layers
(training ≈ 3x), the GFLOP/s reached and its share of this machine's matmul GFLOP/s in the same
precision (float32, or bfloat16 when the tuned setting uses it) measured in the same run, and the
input pipeline's own images/s.
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
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import blocks  # noqa: E402
import contracts  # noqa: E402
import data  # noqa: E402
import machine  # noqa: E402
import models  # noqa: E402
import store  # noqa: E402
import training  # noqa: E402

PLAIN = dict(batch_size=32, jit_compile=False, precision="float32")


def conv_flops(layer):
    """Multiply-adds x 2 per image of one Conv2D or Conv2DTranspose layer."""
    k = int(np.prod(layer.kernel_size))
    transposed = isinstance(layer, keras.layers.Conv2DTranspose)
    cin = layer.kernel.shape[-1 if transposed else -2]
    h, w = (layer.input if transposed else layer.output).shape[1:3]  # a transposed conv scatters each input pixel
    return 2 * h * w * k * cin * layer.filters


def forward_flops(model):
    """Multiply-adds x 2 per image of the conv, transposed-conv and dense layers (the rest is noise)."""
    model = getattr(model, "generator", model)
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            total += conv_flops(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


class Source:
    """Training images of the benchmark: CIFAR-10 arrays in memory, or a photo folder streamed from
    its memory-mapped cache (random crops at `size`), exactly as training reads them."""

    def __init__(self, n, data_name=data.DEFAULT, size=32):
        self.size, self.folder = size, None
        if not isinstance(data.get(data_name), data.PhotoFolder):
            self.images = benchmark_images(n)
            return
        self.folder = data.load_folder_split(data_name, "train", data.crop_size(size))
        colour = self.folder.colour_index()
        self.rows = np.sort(np.random.default_rng(0).choice(colour, min(n, len(colour)), replace=False))
        self.images = data.centre_crops(self.folder.images[self.rows[:2000]], size)  # for data_kwargs

    def dataset(self, inputs, outputs, batch_size):
        if self.folder is None:
            return data.make_dataset(self.images, contracts.get(inputs, outputs), batch_size, augment=True)
        return data.make_folder_train(self.folder, self.rows, self.size, contracts.get(inputs, outputs), batch_size)

    def __len__(self):
        return len(self.images) if self.folder is None else len(self.rows)


def pipeline_images_per_s(source, inputs, outputs, batch_size):
    ds = source.dataset(inputs, outputs, batch_size)
    for _ in ds:  # first pass fills the cache
        pass
    t = time.perf_counter()
    for _ in ds:
        pass
    return len(source) / (time.perf_counter() - t)


def benchmark_images(n):
    """CIFAR-10 training images when $CIFAR10_DIR is set (or Keras can download them), else noise."""
    try:
        (x, _), _ = data.load_cifar10()
        return x[np.random.default_rng(0).choice(len(x), n, replace=False)]
    except (RuntimeError, OSError) as e:
        print(f"(no CIFAR-10: {e}; timing on random images)")
        return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


class SteadyClock(keras.callbacks.Callback):
    """Seconds spent on the batches after the first `skip` (which fill the shuffle buffer)."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.skip:
            self.t0 = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.t0


def build_for_training(name, source, settings):
    """`name` built as training builds it (data-derived arguments, required models, precision
    policy) under `settings` (batch_size, jit_compile, precision, and any other training default)."""
    with training.precision_policy(settings["precision"]):
        model = models.get_model(name, input_shape=models.input_shape_for(name, source.size),
                                 train_images=source.images[:2000], **store.required_models(name, "saved_models"))
    model.jit_compile = settings["jit_compile"]
    return model


def measure(name, source, batch_size, jit_compile, precision, steps, infer=True):
    keras.utils.set_random_seed(0)
    inputs, outputs = models.contract(name)
    model = build_for_training(name, source, dict(batch_size=batch_size, jit_compile=jit_compile, precision=precision))
    ds = source.dataset(inputs, outputs, batch_size).repeat()
    it = iter(ds)
    warm = [next(it) for _ in range(3)]
    model.fit(tf.data.Dataset.from_tensors(warm[0]).repeat(3), verbose=0)  # trace and compile
    clock = SteadyClock(skip=3)
    model.fit(ds, steps_per_epoch=steps + clock.skip, epochs=1, verbose=0, callbacks=[clock])
    train_ips = steps * batch_size / clock.seconds
    if not infer:
        return model, train_ips, float("nan")
    x = warm[0][0]
    predict = tf.function(lambda v: model(v, training=False), jit_compile=jit_compile)
    predict(x)
    t = time.perf_counter()
    for _ in range(steps):
        y = predict(x)
    np.asarray(y)
    infer_ips = steps * batch_size / (time.perf_counter() - t)
    return model, train_ips, infer_ips


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=list(models.MODELS))
    p.add_argument("--quick", action="store_true", help="fewer steps and images")
    p.add_argument("--compare", action="store_true", help="plain (float32, no XLA, batch 32) vs tuned")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--jit", action="store_true")
    p.add_argument("--precision", choices=list(training.PRECISIONS), default=None)
    p.add_argument("--data", default="cifar10", help="cifar10, landscapes ($LANDSCAPES_DIR) or a photo folder")
    p.add_argument("--image-size", type=int, default=None, help="default 32 for cifar10, 64 for folders")
    p.add_argument("--batch-norm", choices=["fused", "keras"], default=blocks.BATCH_NORM,
                   help="the U-Nets' batch norm: TensorFlow's fused kernel (default) or Keras's generic layer")
    p.add_argument("--threads", default=None, help="INTRA,INTER op threads (TensorFlow's defaults: 0,0 = all cores)")
    p.add_argument("--train-only", action="store_true", help="skip the inference and input-pipeline timings")
    args = p.parse_args()
    blocks.BATCH_NORM = args.batch_norm
    if args.threads:
        intra, inter = (int(v) for v in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    size = args.image_size or data.get(args.data).default_image_size
    for name in args.models:
        models.input_shape_for(name, size)  # unknown names and impossible sizes fail before any work

    tuned = dict(jit_compile=args.jit or training.DEFAULTS["jit_compile"],
                 precision=training.resolve_precision(args.precision or training.DEFAULTS["precision"]))
    steps = 15 if args.quick else 60
    source = Source(4096 if args.quick else 16384, args.data, size)
    print(f"data: {args.data} at {size} px, {len(source)} training images")
    host = machine.describe()
    print(json.dumps(host))
    peak = host["matmul_gflops_float32"]
    # a bfloat16 model can pass the float32 peak: use its own
    tuned_peak = host.get(f"matmul_gflops_{tuned['precision']}", peak)
    rows = []
    for name in args.models:
        own = dict(tuned, batch_size=training.batch_size_for(name, args.batch_size, size))  # None: the model's own
        settings = [("plain", PLAIN), ("tuned", own)] if args.compare else [("tuned", own)]
        result = {"model": name}
        for label, s in settings:
            model, train_ips, infer_ips = measure(name, source, s["batch_size"], s["jit_compile"], s["precision"], steps,
                                                  infer=not args.train_only)
            flops = forward_flops(model)
            result.update({f"{label}_settings": s, f"{label}_train_images_per_s": round(train_ips, 1),
                           f"{label}_infer_images_per_s": round(infer_ips, 1) if infer_ips == infer_ips else None,
                           f"{label}_train_gflops": round(3 * flops * train_ips / 1e9, 2)})
        inputs, outputs = models.contract(name)
        # peak_share: of the matmul peak in the tuned setting's own precision
        result.update(data=args.data, image_size=size, forward_mflops_per_image=round(flops / 1e6, 2),
                      machine_gflops=round(peak, 1), batch_norm=args.batch_norm, threads=args.threads,
                      machine_gflops_tuned_precision=round(tuned_peak, 1),
                      peak_share=round(result["tuned_train_gflops"] / tuned_peak, 3),
                      pipeline_images_per_s=None if args.train_only else
                      round(pipeline_images_per_s(source, inputs, outputs, own["batch_size"]), 0), machine=host)
        if args.compare:
            result["speedup"] = round(result["tuned_train_images_per_s"] / result["plain_train_images_per_s"], 2)
        print(json.dumps(result), flush=True)
        rows.append(result)
    print()
    head = f"{'model':14s} {'MFLOP/img':>9s} {'train img/s':>11s} {'infer img/s':>11s} {'GFLOP/s':>8s} {'of peak':>7s} {'pipeline img/s':>14s}"
    print(head + (f" {'plain img/s':>11s} {'speed-up':>8s}" if args.compare else ""))
    for r in rows:
        line = (f"{r['model']:14s} {r['forward_mflops_per_image']:9.1f} {r['tuned_train_images_per_s']:11.0f} "
                f"{r['tuned_infer_images_per_s'] or float('nan'):11.0f} {r['tuned_train_gflops']:8.1f} {100 * r['peak_share']:6.1f}% "
                f"{r['pipeline_images_per_s'] or float('nan'):14.0f}")
        if args.compare:
            line += f" {r['plain_train_images_per_s']:11.0f} {r['speedup']:7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
