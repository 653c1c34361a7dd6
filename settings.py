"""Training settings: the defaults train() uses, the number type it computes in, the batch a model
trains at, and the checks of its arguments (refused before anything is written)."""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import contextlib
import math
import warnings

import numpy as np
import keras

import machine
import models

# Settled side by side by benchmarks/throughput.py, speed_quality.py and levers.py (README, Performance):
# bfloat16 at batch 128 without XLA; plateau: the learning rate halves after 2 epochs without a
# better val_loss (ReduceLROnPlateau). A model may train at its own batch (models.ModelSpec.batch_size,
# chosen by time to quality: benchmarks/time_to_quality.py); batch_size_for says which.
DEFAULTS = dict(epochs=10, batch_size=128, jit_compile=False, precision="auto", lr_schedule="plateau")
LR_SCHEDULES = ("constant", "plateau", "cosine")
VERBOSE = ("auto", 0, 1, 2, "lines")  # Keras's, and one printed line per epoch (callbacks.EpochLines)
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def cpu_has_bf16():
    """True where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere TF emulates
    it and mixed bfloat16 is slower than float32."""
    return machine.has_bf16()


def resolve_precision(precision):
    """"auto" -> "bfloat16" on a CPU with native bfloat16 and no GPU, else "float32"; any other
    value is checked against PRECISIONS ("bfloat16" on a CPU without bfloat16 units, and no GPU,
    warns: it is emulated there, and slower than float32)."""
    if precision == "auto":
        import tensorflow as tf
        return "bfloat16" if cpu_has_bf16() and not tf.config.list_logical_devices("GPU") else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of: auto, {', '.join(PRECISIONS)}")
    if precision == "bfloat16" and not cpu_has_bf16():
        import tensorflow as tf
        if not tf.config.list_logical_devices("GPU"):  # computes right, only slowly: a warning, not a refusal
            warnings.warn(f"precision 'bfloat16' on a CPU without bfloat16 units ({machine.cpu_model()}: no AVX-512 "
                          f"BF16 or AMX) is emulated and slower than float32; 'auto' picks float32 here", stacklevel=2)
    return precision


@contextlib.contextmanager
def precision_policy(precision):
    """Build the models inside under a mixed-precision policy (`bfloat16` for CPUs with AVX-512
    BF16/AMX, `float16` for GPUs): layers compute in that type, variables stay float32, and the
    output layers are float32 (see models.py). The previous global policy comes back on exit."""
    if precision not in PRECISIONS:  # "auto" or a wrong name (train() has resolved it, and warned, already)
        precision = resolve_precision(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def batch_size_for(model_name, batch_size=None, image_size=None):
    """The batch train() uses for `model_name` at training size `image_size`: `batch_size` when given,
    else the model's own at that size (models.ModelSpec.batch_size, where another batch reaches the
    same validation loss sooner), else (and for a size of None) DEFAULTS["batch_size"]."""
    if batch_size is not None:
        return batch_size
    return models.MODELS[model_name].batch_size.get(image_size, DEFAULTS["batch_size"])


def check_arguments(epochs, batch_size, subset, val_fraction, max_minutes, seed=0, learning_rate=None,
                    lr_schedule=DEFAULTS["lr_schedule"], resume=True, verbose="auto"):
    """Refuse impossible arguments before anything is written, naming the value and the range."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"Unknown lr_schedule {lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}")
    def bad(name, value, allowed):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if isinstance(verbose, bool) or verbose not in VERBOSE:
        bad("verbose", verbose, f"one of {', '.join(map(repr, VERBOSE))}")
    if resume not in (True, False, "extend") or not isinstance(resume, (bool, str)):
        bad("resume", resume, "True, False or 'extend' (continue a finished run to more epochs or minutes)")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        bad("epochs", epochs, "a whole number >= 1")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        bad("batch_size", batch_size, "a whole number >= 1")
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction <= 0.5:
        bad("val_fraction", val_fraction, "a fraction in (0, 0.5] (the validation split picks the best epoch)")
    if subset is not None and (not isinstance(subset, (int, np.integer)) or subset * val_fraction < 1
                               or subset - round(subset * val_fraction) < 1):
        bad("subset", subset, f"None or a whole number large enough for a training and a validation part "
                              f"(at least {int(np.ceil(1 / val_fraction)) + 1} with val_fraction {val_fraction:g})")
    if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and max_minutes > 0):
        bad("max_minutes", max_minutes, "None or a number of minutes > 0")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        bad("seed", seed, "a whole number from 0 to 2**32 - 1")
    if learning_rate is not None and not (isinstance(learning_rate, (int, float)) and 0 < learning_rate < math.inf):
        bad("learning_rate", learning_rate, "None (the model's default) or a number > 0")
