"""Autoencoders and colorizers for grayscale images, picked by name: the registry and the builders.

    model = get_model("colorizer_3")          # compiled, ready for fit
    MODELS["colorizer_6"]                     # its ModelSpec: family, contract, stride, ...

Every model has an I/O contract (contracts.py; `contract(name_or_model)` -> (inputs, outputs)):
inputs `rgb` | `gray` | `L` | `L+hints`, outputs `rgb` | `ab` | `ab_bins` | `ab_mix` (value ranges: colour.py).
Output layers are float32 whatever the global dtype policy, so that under mixed_bfloat16
training (training.py --precision bfloat16) the losses see full-precision predictions.
Inference (predict_rgb, at_size) is in colorizer.py; the custom heads and losses in heads.py.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import dataclasses
import inspect
from typing import Callable, Optional

import numpy as np
import keras
from keras import layers

import contracts
from contracts import bin_kwargs, gamut_bins
from blocks import UNET_WIDTHS, conv_block, unet_trunk, up_block  # noqa: F401  (the builders' blocks)
from gan import Pix2Pix  # colorizer_5's model
from heads import ABBins, ABMix, MixLoss, RebalancedBinLoss, rebalance_weights

FAMILIES = ("autoencoder", "colorizer")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, family (`autoencoder` | `colorizer`), I/O contract and builder.

    `stride`: for fully convolutional models, the number input height and width must be divisible
    by; None for models with a fixed input size. `size_multiple`: what a size a model is *built*
    for must be divisible by (a fixed-size one then runs only at that size). `requires`: names of
    trained models the builder takes as keyword arguments (colorizer_2 reuses autoencoder_1).
    `data_kwargs(images)`: builder keyword arguments computed from training images (the bin
    colorizers' ab bin centres and their prior). `calibrate`: the name of the calibration
    (calibration.py) that chooses decoding settings on validation photos after training.
    `options`: training options of the builder (train(model_options=...)), name -> (low, high): the
    closed range a value must lie in; the default is the builder's. `batch_size`: training size (px)
    -> the training batch at that size when train() is given none (other sizes: training.DEFAULTS'),
    where another one reaches the same validation loss sooner (README, Performance)."""
    name: str
    family: str
    contract: contracts.Contract
    builder: Callable
    stride: Optional[int] = None
    size_multiple: Optional[int] = None
    requires: tuple = ()
    data_kwargs: Optional[Callable] = None
    calibrate: Optional[str] = None
    options: dict = dataclasses.field(default_factory=dict)
    batch_size: dict = dataclasses.field(default_factory=dict)

    @property
    def inputs(self):
        return self.contract.inputs

    @property
    def outputs(self):
        return self.contract.outputs


class Registry(dict):
    """name -> ModelSpec; an unknown name raises a ValueError that lists the known ones."""

    def __missing__(self, name):
        raise ValueError(f"Unknown model '{name}'; choose one of: {', '.join(self)}")


MODELS = Registry()


def register(family, inputs, outputs, stride=None, requires=(), data_kwargs=None, size_multiple=None,
             calibrate=None, options=None, batch_size=None):
    """Decorator: add a builder to MODELS as a ModelSpec (see ModelSpec for the arguments)."""
    if family not in FAMILIES:
        raise ValueError(f"Unknown family '{family}'; choose one of: {', '.join(FAMILIES)}")

    def deco(fn):
        MODELS[fn.__name__] = ModelSpec(fn.__name__, family, contracts.get(inputs, outputs), fn, stride,
                                        size_multiple or stride, tuple(requires), data_kwargs, calibrate,
                                        dict(options or {}), dict(batch_size or {}))
        return fn
    return deco


def check_options(name, options):
    """`options` (name -> number) as training options of model `name`: a dict of floats, sorted,
    without the ones equal to the builder's default (so a run given a default equals one given
    nothing). Keyed by model names instead ({"colorizer_6": {"neutral_weight": 4}}), it holds each
    model's own, for several models trained in turn. A ValueError names an unknown option or a value
    out of its range and says what is allowed."""
    allowed = MODELS[name].options
    if not isinstance(options, dict) and options is not None:
        raise ValueError(f"{name}'s training options must be a dict of name -> number, got {options!r}")
    if options and any(key in MODELS for key in options):  # per model: each checked, this one's kept
        unknown = [key for key in options if key not in MODELS]
        if unknown:
            raise ValueError(f"Training options keyed by model: unknown model {unknown[0]!r}; choose one of: "
                             f"{', '.join(MODELS)} (give options for every model, or keyed by model, not both)")
        checked = {key: check_options(key, {} if value is None else value) for key, value in options.items()}
        return checked.get(name, {})
    defaults = inspect.signature(MODELS[name].builder).parameters
    checked = {}
    for key, value in sorted((options or {}).items()):
        if key not in allowed:
            raise ValueError(f"{name} has no training option {key!r}; "
                             + (f"choose among: {', '.join(allowed)}" if allowed else "it takes none"))
        low, high = allowed[key]
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not low <= v <= high:
            what = "is out of range" if v == v else "is not a number"  # NaN: what float() could not read
            raise ValueError(f"{name} option {key}={value!r} {what}: it must be a number from {low:g} "
                             f"to {high:g} (default {defaults[key].default:g})")
        if v != defaults[key].default:
            checked[key] = v
    return checked


def list_models(family=None):
    """Registered names, optionally only `family` = 'autoencoder' or 'colorizer'."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"Unknown family '{family}'; choose one of: {', '.join(FAMILIES)}")
    return [n for n, s in MODELS.items() if family is None or s.family == family]


def contract(model_or_name):
    """(inputs, outputs) of a registered model, from its name or from a model (by its name)."""
    name = model_or_name if isinstance(model_or_name, str) else model_or_name.name
    return MODELS[name].inputs, MODELS[name].outputs


def spec(name):
    """The ModelSpec of `name`; an unknown name lists the known ones."""
    return MODELS[name]


def input_shape_for(name, image_size):
    """(S, S, channels) for building `name` at `image_size`, or a ValueError naming the sizes
    that work (multiples of the model's stride)."""
    s = MODELS[name]
    m = s.size_multiple or 1
    if not isinstance(image_size, (int, np.integer)) or image_size < m or image_size % m:
        ok = ", ".join(str(m * k) for k in range(max(1, 32 // m), max(1, 32 // m) + 5))
        raise ValueError(f"{name} cannot be built for image_size {image_size!r}: it needs a multiple of {m} "
                         f"(e.g. {ok}, ...)")
    return (int(image_size), int(image_size), s.contract.input_channels)


def builder_kwargs(name, train_images=None, required=None, options=None):
    """Every argument the builder of `name` takes beyond its input shape, as training passes them:
    the trained models it sits on (`required`, see store.required_models), the arguments derived
    from training images (colorizer_4/6's ab bin centres and their prior) and its training
    `options` (checked by check_options)."""
    s = MODELS[name]
    kwargs = dict(required or {})
    if s.data_kwargs and train_images is not None:
        kwargs.update(s.data_kwargs(train_images))
    kwargs.update(check_options(name, options or {}))
    return kwargs


def get_model(name, input_shape=None, train_images=None, **kwargs):
    """Build and compile the registered model `name` (its default loss, optimizer and metrics).
    With `train_images`, the data-derived arguments are computed from them (builder_kwargs):
    exactly the model training builds."""
    builder = MODELS[name].builder
    kwargs = builder_kwargs(name, train_images, kwargs)
    model = builder(**kwargs) if input_shape is None else builder(input_shape=input_shape, **kwargs)
    if not model.compiled:  # builders with special losses compile themselves
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    return model

# ----------------------------------------------------------------------------- blocks (blocks.py)

# ----------------------------------------------------------------------------- autoencoders


def _conv_autoencoder(name, input_shape, widths, latent_channels, convs_per_level):
    """Conv encoder (stride-2 levels) -> 1x1 conv latent -> mirrored decoder, as nested
    `encoder` and `decoder` sub-models. Fully convolutional."""
    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = inputs
    for i, w in enumerate(widths):
        for j in range(convs_per_level - 1):
            x = conv_block(x, w, f"enc{i}_{j}")
        x = conv_block(x, w, f"enc{i}_down", strides=2)
    latent = layers.Conv2D(latent_channels, 1, name="latent")(x)
    encoder = keras.Model(inputs, latent, name="encoder")

    z = keras.Input(latent.shape[1:], name="decoder_input")
    x = z
    for i, w in reversed(list(enumerate(widths))):
        x = up_block(x, w, f"dec{i}_up")
        for j in range(convs_per_level - 1):
            x = conv_block(x, w, f"dec{i}_{j}")
    out = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="rgb", dtype="float32")(x)
    decoder = keras.Model(z, out, name="decoder")
    return keras.Model(inputs, decoder(encoder(inputs)), name=name)


@register("autoencoder", "rgb", "rgb", stride=4)
def autoencoder_1(input_shape=(32, 32, 3)) -> keras.Model:
    """Shallow and wide: 2 stride-2 levels (64, 128) -> latent (H/4, W/4, 16).
    Compression 3072 / 1024 = 3x at 32x32. Any H, W divisible by 4."""
    return _conv_autoencoder("autoencoder_1", input_shape, (64, 128), 16, 1)


@register("autoencoder", "rgb", "rgb", stride=8)
def autoencoder_2(input_shape=(32, 32, 3)) -> keras.Model:
    """Deeper: 3 levels (32, 64, 128), two convs each -> latent (H/8, W/8, 32).
    Compression 3072 / 512 = 6x at 32x32. Any H, W divisible by 8."""
    return _conv_autoencoder("autoencoder_2", input_shape, (32, 64, 128), 32, 2)


@register("autoencoder", "rgb", "rgb", size_multiple=8)
def autoencoder_3(input_shape=(32, 32, 3)) -> keras.Model:
    """Dense bottleneck: 3 stride-2 convs (32, 64, 128) -> Dense 128 latent vector -> decoder.
    Compression 3072 / 128 = 24x at 32x32. Fixed input size (the Dense layers fix it)."""
    inputs = keras.Input(input_shape, name="autoencoder_3_input")
    x = inputs
    for i, w in enumerate((32, 64, 128)):
        x = conv_block(x, w, f"enc{i}_down", strides=2)
    feat_shape = x.shape[1:]
    x = layers.Flatten(name="enc_flatten")(x)
    latent = layers.Dense(128, name="latent")(x)
    encoder = keras.Model(inputs, latent, name="encoder")

    z = keras.Input((128,), name="decoder_input")
    x = layers.Dense(int(np.prod(feat_shape)), activation="relu", name="dec_dense")(z)
    x = layers.Reshape(feat_shape, name="dec_reshape")(x)
    for i, w in reversed(list(enumerate((32, 64, 128)))):
        x = up_block(x, w, f"dec{i}_up")
    out = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="rgb", dtype="float32")(x)
    decoder = keras.Model(z, out, name="decoder")
    return keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder_3")

# ----------------------------------------------------------------------------- colorizers


@register("colorizer", "gray", "rgb", size_multiple=8)
def colorizer_1(input_shape=(32, 32, 1)) -> keras.Model:
    """The Keras-book CIFAR-10 colorization autoencoder (Atienza, Advanced Deep Learning with
    Keras, 2018, ch. 3), reproduced layer for layer: 3,431,811 parameters at 32x32.
    Gray in [0,1] -> RGB in [0,1]; MSE, Adam. Fixed input size (Dense latent)."""
    inputs = keras.Input(input_shape, name="colorizer_1_input")
    x = inputs
    for i, f in enumerate((64, 128, 256)):
        x = layers.Conv2D(f, 3, strides=2, activation="relu", padding="same", name=f"enc{i}_conv")(x)
    shape = x.shape[1:]
    x = layers.Flatten(name="enc_flatten")(x)
    x = layers.Dense(256, name="latent")(x)
    x = layers.Dense(int(np.prod(shape)), name="dec_dense")(x)
    x = layers.Reshape(shape, name="dec_reshape")(x)
    for i, f in enumerate((256, 128, 64)):
        x = layers.Conv2DTranspose(f, 3, strides=2, activation="relu", padding="same", name=f"dec{i}_upconv")(x)
    outputs = layers.Conv2DTranspose(3, 3, activation="sigmoid", padding="same", name="rgb",
                                     dtype="float32")(x)
    return keras.Model(inputs, outputs, name="colorizer_1")


@register("colorizer", "gray", "rgb", stride=4, requires=("autoencoder_1",))
def colorizer_2(input_shape=(32, 32, 1), autoencoder_1=None) -> keras.Model:
    """A new grayscale encoder trained into the latent space of `autoencoder_1`, whose decoder
    is reused frozen (pass the trained autoencoder; without one the decoder is untrained, for
    tests). Gray in [0,1] -> RGB in [0,1]. Any H, W divisible by 4."""
    inputs = keras.Input(input_shape, name="colorizer_2_input")
    x = conv_block(inputs, 32, "genc0")
    x = conv_block(x, 64, "genc1_down", strides=2)
    x = conv_block(x, 64, "genc1")
    x = conv_block(x, 128, "genc2_down", strides=2)
    x = conv_block(x, 128, "genc2")
    latent = layers.Conv2D(16, 1, name="latent")(x)  # autoencoder_1's latent: (H/4, W/4, 16), linear
    decoder = MODELS["autoencoder_1"].builder(input_shape[:2] + (3,)).get_layer("decoder")
    if autoencoder_1 is not None:
        decoder.set_weights(autoencoder_1.get_layer("decoder").get_weights())
    decoder.trainable = False
    return keras.Model(inputs, decoder(latent), name="colorizer_2")


@register("colorizer", "L", "ab", stride=8)
def colorizer_3(input_shape=(32, 32, 1)) -> keras.Model:
    """Lab U-Net: L -> ab with skip connections and batch norm, tanh output; the input L is
    recombined unchanged by predict_rgb. L1 loss. Any H, W divisible by 8."""
    return unet_regression("colorizer_3", input_shape)


def unet_regression(name, input_shape):
    """The U-Net with a tanh ab head trained with L1: colorizer_3, and colorizer_7 with hint channels
    in its input (the layer names are the same, so their weights line up)."""
    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = unet_trunk(inputs, UNET_WIDTHS, "unet")
    outputs = layers.Conv2D(2, 1, activation="tanh", name="ab", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae", metrics=["mse"])
    return model

# ----------------------------------------------------------------------------- colorizer_4 (Zhang et al.)


@register("colorizer", "L", "ab_bins", stride=8, data_kwargs=bin_kwargs)
def colorizer_4(input_shape=(32, 32, 1), centers=None, prior=None) -> keras.Model:
    """Classification over quantised ab (Zhang et al. 2016, "Colorful Image Colorization"): the
    U-Net trunk of colorizer_3 up to its half-resolution level -> softmax over the Q in-gamut ab bins (grid of 10) seen in the
    training data, trained with class-rebalanced cross-entropy (λ=0.5, σ=5), decoded by annealed
    mean (T=0.38) in predict_rgb. Without `centers`/`prior` it uses every sRGB-gamut bin with a
    uniform prior. The class head predicts at half resolution (Zhang et al. predict at a quarter and
    upsample): each 2x2 block shares its probabilities. Q logits per pixel at full size cost more
    than the whole trunk (benchmarks/profile_step.py), and chroma is smooth. Any H, W divisible by 8."""
    if centers is None:
        centers = gamut_bins()
    if prior is None:
        prior = np.full(len(centers), 1.0 / len(centers))
    inputs = keras.Input(input_shape, name="colorizer_4_input")
    levels = {}
    unet_trunk(inputs, UNET_WIDTHS, "unet", levels)
    logits = layers.Conv2D(len(centers), 1, name="ab_logits")(levels[1])  # half resolution, as colorizer_6's
    outputs = ABBins(centers, repeat=2, name="ab_bins", dtype="float32")(logits)
    model = keras.Model(inputs, outputs, name="colorizer_4")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=RebalancedBinLoss(centers, rebalance_weights(centers, prior)))
    return model

# ----------------------------------------------------------------------------- colorizer_5 (pix2pix)


@register("colorizer", "L", "ab", stride=8)
def colorizer_5(input_shape=(32, 32, 1)) -> keras.Model:
    """pix2pix conditional GAN (see Pix2Pix): U-Net generator L -> ab (tanh), PatchGAN
    discriminator, adversarial + 100 * L1. Any H, W divisible by 8."""
    model = Pix2Pix(input_shape, name="colorizer_5")
    model.compile()
    return model

# ----------------------------------------------------------------------------- colorizer_6 (regression + classification)


@register("colorizer", "L", "ab_mix", stride=8, data_kwargs=bin_kwargs,
          calibrate="calibrate_colorizer_6", batch_size={64: 64},  # at 32 px (CIFAR-10) 128 did as well
          options={"neutral_weight": (0.1, 10.0), "colourfulness_weight": (0.0, 10.0)})
def colorizer_6(input_shape=(32, 32, 1), centers=None, prior=None, mix=1.0, temperature=0.38,
                gain=0.0, chroma_min=0.0, neutral_weight=1.0, colourfulness_weight=0.0) -> keras.Model:
    """Vivid *and* accurate: one U-Net trunk (colorizer_3's), two 1x1 heads, decoded by confidence.

    Why: a regression head trained with L1 (colorizer_3) is accurate but hedges: where a colour is
    uncertain its best guess is the muted middle of the possibilities (sepia). A classifier over
    ab bins with class rebalancing (colorizer_4) keeps a vivid mode but, decoded everywhere, paints
    confident-looking colours where it is guessing, which costs accuracy. colorizer_6 trains both
    heads on one trunk (loss = L1 + 0.3 x rebalanced cross-entropy; Adam makes each head learn at
    its own scale, the weight only sets how much the colour classes shape the shared features) and
    uses the classifier to know *where* colour is predictable: per pixel, with c the probability
    mass of its 5 most likely bins, the regression ab moves towards the classifier's annealed-mean
    colour by min(1, mix x c) and its chroma is scaled by 1 + gain x c (where above chroma_min). Sky, foliage and water
    (sure) become vivid; what the classifier cannot tell stays cautious. The classifier runs at
    half resolution (chroma is smooth; Q maps at full size cost more than the trunk), so the
    model trains nearly as fast as colorizer_3. `mix`, `temperature` and `gain` are decoding
    settings chosen after training on the validation photos alone (`calibrate_colorizer_6`:
    the most colourful setting still beating gray on all five accuracy metrics), never on the
    test set. The trunk is colorizer_3's, so comparisons with colorizer_3 and colorizer_4 measure
    the heads and the decoding, not the size. Training options: `neutral_weight` multiplies the
    class head's weight on near-neutral colours (heads.rebalance_weights); `colourfulness_weight`
    adds DDColor's colourfulness loss of the regression head's colours (heads.MixLoss).
    Any H, W divisible by 8."""
    if centers is None:
        centers = gamut_bins()
    if prior is None:
        prior = np.full(len(centers), 1.0 / len(centers))
    inputs = keras.Input(input_shape, name="colorizer_6_input")
    levels = {}
    x = unet_trunk(inputs, UNET_WIDTHS, "unet", levels)
    ab = layers.Conv2D(2, 1, activation="tanh", name="ab_reg", dtype="float32")(x)
    # half resolution; in the training precision (bfloat16 fills the matrix units), ABMix takes them in float32
    logits = layers.Conv2D(len(centers), 1, name="ab_logits")(levels[1])
    outputs = ABMix(centers, mix, temperature, gain, chroma_min, name="ab_mix", dtype="float32")([ab, logits])
    model = keras.Model(inputs, outputs, name="colorizer_6")
    weights = rebalance_weights(centers, prior, neutral_weight=neutral_weight)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=MixLoss(centers, weights, colourfulness_weight=colourfulness_weight))
    return model


# ----------------------------------------------------------------------------- colorizer_7 (user-guided)


@register("colorizer", "L+hints", "ab", stride=8)
def colorizer_7(input_shape=(32, 32, 4)) -> keras.Model:
    """User-guided: colorizer_3's U-Net taking colour hints with L* (Zhang et al. 2017, "Real-Time
    User-Guided Image Colorization with Learned Deep Priors").

    Why: the colours the gray does not imply (a turquoise lake, purple bluebells) can only come
    from the person looking at the photo. The hint channels (a*, b* on a small square where a colour
    was given, a mask marking it; contracts.HintCodec) enter with L* at the first convolution, as in
    Zhang et al. 2017, so every level of the U-Net can carry a hint's colour to the region it belongs
    to, and the skip connections keep its place exact. The head is colorizer_3's regression (L1):
    where a hint gives the colour there is nothing to hedge, and trained with no hint on half of its
    photos (simulated hints from the ground truth on the others) it colorizes alone like
    colorizer_3. Same trunk, so the same size and speed (the first convolution takes 4 channels
    instead of 1). Any H, W divisible by 8."""
    return unet_regression("colorizer_7", input_shape)


def block_summary(model):
    """A one-screen summary: parameters per block (layers grouped by their name prefix, e.g.
    `unet_down0a`), in order, with the total. `model.summary()` is the full, layer-by-layer one."""
    model = getattr(model, "generator", model)
    blocks = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name in ("encoder", "decoder"):
            for inner in layer.layers:
                key = f"{layer.name}/{inner.name.rsplit('_', 1)[0]}"
                blocks[key] = blocks.get(key, 0) + inner.count_params()
            continue
        key = layer.name.rsplit("_", 1)[0] if "_" in layer.name else layer.name
        blocks[key] = blocks.get(key, 0) + layer.count_params()
    rows = [(k, v) for k, v in blocks.items() if v]
    width = max(len(k) for k, _ in rows)
    lines = [f"{model.name}: input {tuple(model.input_shape[1:])} -> output {tuple(model.output_shape[1:])}"]
    lines += [f"  {k:<{width}}  {v:>10,}" for k, v in rows]
    lines.append(f"  {'total':<{width}}  {model.count_params():>10,}")
    return "\n".join(lines)
