"""The building blocks of the models: batch norm, conv and up-sampling blocks, the U-Net trunk.
Each takes a tensor and returns one, naming every layer from a prefix (as keras.applications do)."""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
from keras import layers

import heads

UNET_WIDTHS = (16, 32, 64, 128)  # the U-Nets of colorizer_3 to _7 (and colorizer_5's generator)
BATCH_NORM = "fused"  # "keras" builds keras.layers.BatchNormalization (benchmarks compare the two)


def batch_norm(name, momentum=0.9, fused=None):
    """The U-Nets' batch norm: heads.FusedBatchNorm unless `fused` is False (or BATCH_NORM says "keras")."""
    fused = BATCH_NORM == "fused" if fused is None else fused
    return (heads.FusedBatchNorm if fused else layers.BatchNormalization)(momentum=momentum, name=name)


def conv_block(x, filters, name, strides=1, norm=True, fused=None):
    """3x3 conv (+ batch norm) + ReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=not norm, name=f"{name}_conv")(x)
    if norm:
        x = batch_norm(f"{name}_bn", fused=fused)(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def up_block(x, filters, name, norm=True, fused=None):
    """2x upsampling by a 3x3 transposed conv (+ batch norm) + ReLU."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=not norm, name=f"{name}_upconv")(x)
    if norm:
        x = batch_norm(f"{name}_bn", fused=fused)(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def unet_trunk(inputs, widths, name, levels=None, fused=None):
    """U-Net: two conv blocks per level, stride-2 downsampling, skip connections by concatenation.
    Returns the full-resolution feature map; a dict passed as `levels` receives the decoder's
    output at each level (level i at 1/2**i of the input size). Input height and width must be
    divisible by 2 ** (len(widths) - 1)."""
    x, skips = inputs, []
    for i, w in enumerate(widths[:-1]):
        x = conv_block(x, w, f"{name}_down{i}a", fused=fused)
        x = conv_block(x, w, f"{name}_down{i}b", fused=fused)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"{name}_down{i}_pool")(x)
    x = conv_block(x, widths[-1], f"{name}_mid_a", fused=fused)
    x = conv_block(x, widths[-1], f"{name}_mid_b", fused=fused)
    for i in reversed(range(len(widths) - 1)):
        x = up_block(x, widths[i], f"{name}_up{i}", fused=fused)
        x = layers.Concatenate(name=f"{name}_up{i}_concat")([x, skips[i]])
        x = conv_block(x, widths[i], f"{name}_up{i}a", fused=fused)
        x = conv_block(x, widths[i], f"{name}_up{i}b", fused=fused)
        if levels is not None:
            levels[i] = x
    return x
