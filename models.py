"""Autoencoders and colorizers for grayscale images, picked by name.

    model = get_model("colorizer_3")          # compiled, ready for fit
    rgb = predict_rgb(model, uint8_images)    # uint8 RGB out, whatever the model's contract

Every model has an I/O contract (`contract(name_or_model)` -> (inputs, outputs)):
inputs `rgb` | `gray` | `L`, outputs `rgb` | `ab` | `ab_bins` (value ranges: see data.py).
Output layers are float32 whatever the global dtype policy, so that under mixed_bfloat16
training (training.py --precision bfloat16) the losses see full-precision predictions.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import numpy as np
import keras
from keras import layers

import data

MODELS = {}  # name -> builder; each builder carries .kind, .inputs, .outputs


def register(kind, inputs, outputs, stride=None, requires=(), data_kwargs=None, size_multiple=None,
             calibrate=None):
    """Add a builder to MODELS with its I/O contract.

    `stride`: for fully convolutional models, the number input height and width must be
    divisible by; None for models with a fixed input size.
    `requires`: names of trained models the builder takes as keyword arguments (colorizer_2 reuses
    autoencoder_1). `data_kwargs(images)`: builder keyword arguments computed from training images
    (colorizer_4's ab bins and their prior).
    `size_multiple`: for fixed-size models, what a size they are *built* for must be divisible by
    (a trained one runs only at that size). `calibrate(model, val_images)`: decoding settings
    chosen on the validation split after training (colorizer_6), returned as a dict.
    """
    def deco(fn):
        fn.kind, fn.inputs, fn.outputs, fn.stride = kind, inputs, outputs, stride
        fn.requires, fn.data_kwargs = tuple(requires), data_kwargs
        fn.size_multiple, fn.calibrate = size_multiple or stride, calibrate
        MODELS[fn.__name__] = fn
        return fn
    return deco


def _builder(name):
    if name not in MODELS:
        raise ValueError(f"Unknown model '{name}'; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def list_models(kind=None):
    """Registered names, optionally only `kind` = 'autoencoder' or 'colorizer'."""
    kinds = sorted({b.kind for b in MODELS.values()})
    if kind is not None and kind not in kinds:
        raise ValueError(f"Unknown kind '{kind}'; choose one of: {', '.join(kinds)}")
    return [n for n, b in MODELS.items() if kind is None or b.kind == kind]


def contract(model_or_name):
    """(inputs, outputs) of a registered model, from its name or from a model (by its name)."""
    name = model_or_name if isinstance(model_or_name, str) else model_or_name.name
    b = _builder(name)
    return b.inputs, b.outputs


def spec(name):
    """The registry entry of `name` (its builder, carrying kind, inputs, outputs, stride,
    size_multiple, requires, data_kwargs, calibrate); an unknown name lists the known ones."""
    return _builder(name)


def input_shape_for(name, image_size):
    """(S, S, channels) for building `name` at `image_size`, or a ValueError naming the sizes
    that work (multiples of the model's stride)."""
    b = _builder(name)
    m = b.size_multiple or 1
    if not isinstance(image_size, (int, np.integer)) or image_size < m or image_size % m:
        ok = ", ".join(str(m * k) for k in range(max(1, 32 // m), max(1, 32 // m) + 5))
        raise ValueError(f"{name} cannot be built for image_size {image_size!r}: it needs a multiple of {m} "
                         f"(e.g. {ok}, ...)")
    return (int(image_size), int(image_size), 3 if b.inputs == "rgb" else 1)


def builder_kwargs(name, train_images=None, required=None):
    """Every argument the builder of `name` takes beyond its input shape, as training passes them:
    the trained models it sits on (`required`, see store.required_models) and the arguments derived
    from training images (colorizer_4/6's ab bins and their prior)."""
    b = _builder(name)
    kwargs = dict(required or {})
    if b.data_kwargs and train_images is not None:
        kwargs.update(b.data_kwargs(train_images))
    return kwargs


def get_model(name, input_shape=None, train_images=None, **kwargs):
    """Build and compile the registered model `name` (its default loss, optimizer and metrics).
    With `train_images`, the data-derived arguments are computed from them (builder_kwargs):
    exactly the model training builds."""
    builder = _builder(name)
    kwargs = builder_kwargs(name, train_images, kwargs)
    model = builder(**kwargs) if input_shape is None else builder(input_shape=input_shape, **kwargs)
    if not model.compiled:  # builders with special losses compile themselves
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    return model

# ----------------------------------------------------------------------------- blocks


@keras.saving.register_keras_serializable(package="colorizers")
class FusedBatchNorm(layers.BatchNormalization):
    """BatchNormalization whose training step is TensorFlow's fused kernel (one op for the batch
    moments, the normalisation and the moving averages, in the input's bfloat16): Keras's generic
    version spends a third of a U-Net step on element-wise ops (benchmarks/profile_step.py).
    Inference, masks and other backends take Keras's own path, so a model behaves as with
    BatchNormalization once trained (the weights are the same four)."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm or self.axis not in (-1, 3) \
                or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf
        y, mean, var, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, "float32"), offset=tf.cast(self.beta, "float32"),
            mean=tf.convert_to_tensor(self.moving_mean), variance=tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon, exponential_avg_factor=1.0 - self.momentum, data_format="NHWC", is_training=True)
        self.moving_mean.assign(mean)
        self.moving_variance.assign(var)
        return keras.ops.cast(y, self.compute_dtype)


BATCH_NORM = "fused"  # "keras" builds keras.layers.BatchNormalization (benchmarks compare the two)


def batch_norm(name, momentum=0.9):
    cls = FusedBatchNorm if BATCH_NORM == "fused" else layers.BatchNormalization
    return cls(momentum=momentum, name=name)


def conv_block(x, filters, name, strides=1, norm=True):
    """3x3 conv (+ batch norm) + ReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=not norm, name=f"{name}_conv")(x)
    if norm:
        x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def up_block(x, filters, name, norm=True):
    """2x upsampling by a 3x3 transposed conv (+ batch norm) + ReLU."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=not norm, name=f"{name}_upconv")(x)
    if norm:
        x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def unet_trunk(inputs, widths, name, levels=None):
    """U-Net: two conv blocks per level, stride-2 downsampling, skip connections by concatenation.
    Returns the full-resolution feature map; a dict passed as `levels` receives the decoder's
    output at each level (level i at 1/2**i of the input size). Input height and width must be
    divisible by 2 ** (len(widths) - 1)."""
    x, skips = inputs, []
    for i, w in enumerate(widths[:-1]):
        x = conv_block(x, w, f"{name}_down{i}a")
        x = conv_block(x, w, f"{name}_down{i}b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"{name}_down{i}_pool")(x)
    x = conv_block(x, widths[-1], f"{name}_mid_a")
    x = conv_block(x, widths[-1], f"{name}_mid_b")
    for i in reversed(range(len(widths) - 1)):
        x = up_block(x, widths[i], f"{name}_up{i}")
        x = layers.Concatenate(name=f"{name}_up{i}_concat")([x, skips[i]])
        x = conv_block(x, widths[i], f"{name}_up{i}a")
        x = conv_block(x, widths[i], f"{name}_up{i}b")
        if levels is not None:
            levels[i] = x
    return x

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
    decoder = _builder("autoencoder_1")(input_shape[:2] + (3,)).get_layer("decoder")
    if autoencoder_1 is not None:
        decoder.set_weights(autoencoder_1.get_layer("decoder").get_weights())
    decoder.trainable = False
    return keras.Model(inputs, decoder(latent), name="colorizer_2")


UNET_WIDTHS = (16, 32, 64, 128)


@register("colorizer", "L", "ab", stride=8)
def colorizer_3(input_shape=(32, 32, 1)) -> keras.Model:
    """Lab U-Net: L -> ab with skip connections and batch norm, tanh output; the input L is
    recombined unchanged by predict_rgb. L1 loss. Any H, W divisible by 8."""
    inputs = keras.Input(input_shape, name="colorizer_3_input")
    x = unet_trunk(inputs, UNET_WIDTHS, "unet")
    outputs = layers.Conv2D(2, 1, activation="tanh", name="ab", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="colorizer_3")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae", metrics=["mse"])
    return model

# ----------------------------------------------------------------------------- colorizer_4 (Zhang et al.)

AB_GRID = 10.0  # ab bin size (Zhang et al. 2016)


def gamut_bins(grid=AB_GRID):
    """Centres (Q, 2), in ab units, of the grid bins that some sRGB colour falls in."""
    v = np.linspace(0, 1, 64, dtype=np.float32)
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(1, -1, 3)
    ab = data.rgb_to_lab(cube)[0, :, 1:]
    return np.unique(np.round(ab / grid), axis=0).astype(np.float32) * grid


def ab_bin_stats(ab, grid=AB_GRID):
    """From training ab values (..., 2) in ab units: (centres (Q, 2) of the occupied grid bins,
    their empirical probabilities (Q,))."""
    q = np.round(np.asarray(ab, np.float32).reshape(-1, 2) / grid).astype(np.int32)
    keys, counts = np.unique(q, axis=0, return_counts=True)
    return keys.astype(np.float32) * grid, counts / counts.sum()


def rebalance_weights(centers, prior, lam=0.5, sigma=5.0):
    """Zhang et al. 2016 eq. 4: w ∝ ((1-λ) p̃ + λ/Q)^-1 with p̃ the prior smoothed by a Gaussian
    of σ ab units, normalised so that E_p̃[w] = 1."""
    centers, prior = np.asarray(centers, np.float64), np.asarray(prior, np.float64)
    d2 = ((centers[:, None] - centers[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma ** 2))
    smooth = k @ prior
    smooth /= smooth.sum()
    w = 1.0 / ((1 - lam) * smooth + lam / len(prior))
    return (w / (smooth * w).sum()).astype(np.float32)


def _colorizer_4_data_kwargs(images):
    centers, prior = ab_bin_stats(data.rgb_to_lab(images)[..., 1:])
    return {"bins": centers, "prior": prior}


@keras.saving.register_keras_serializable(package="colorizers")
class ABBins(layers.Layer):
    """Softmax over quantised ab bins; holds the bin centres (ab units) used to decode them."""

    def __init__(self, centers, **kwargs):
        super().__init__(**kwargs)
        self.centers = np.asarray(centers, np.float32)

    def call(self, logits):
        return keras.ops.softmax(logits, axis=-1)

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist()}


@keras.saving.register_keras_serializable(package="colorizers")
class RebalancedBinLoss(keras.losses.Loss):
    """Zhang et al.'s multinomial cross-entropy: the ab target (data.py scale) is soft-encoded on
    the bins with a Gaussian kernel of σ=5 ab units, and each pixel is weighted by the
    rebalancing weight of its nearest bin."""

    def __init__(self, centers, weights, sigma=5.0, name="rebalanced_bin_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.centers = np.asarray(centers, np.float32)
        self.weights = np.asarray(weights, np.float32)
        self.sigma = float(sigma)

    def call(self, y_true, y_pred):
        soft, w = self.soft_targets(y_true)
        # probabilities are at most 1: only the floor matters (a clip costs four more passes over Q)
        log_probs = keras.ops.log(keras.ops.maximum(keras.ops.cast(y_pred, "float32"), 1e-7))
        return -keras.ops.sum(soft * log_probs, axis=-1) * w

    def from_logits(self, y_true, logits):
        """The same per-pixel loss from logits (B,H,W,Q): Σ soft·(logsumexp − logit), two passes
        over Q where log(softmax) takes five (and as many in the gradient)."""
        soft, w = self.soft_targets(y_true)
        logits = keras.ops.cast(logits, "float32")
        return (keras.ops.logsumexp(logits, axis=-1) - keras.ops.sum(soft * logits, axis=-1)) * w

    def soft_targets(self, y_true):
        """Soft-encoded targets (B,H,W,Q) of ab targets (B,H,W,2), and each pixel's rebalancing weight."""
        ops = keras.ops
        ab = ops.cast(y_true, "float32") * data.AB_SCALE                       # (B,H,W,2)
        c = ops.convert_to_tensor(self.centers)
        # |ab - c|^2 as a matmul: no (B,H,W,Q,2) intermediate
        d2 = ops.sum(ab ** 2, -1, keepdims=True) - 2 * ops.matmul(ab, ops.transpose(c)) + ops.sum(c ** 2, -1)
        # Gaussian soft-encoding (σ=5) over every bin: beyond the few nearest bins the weights
        # are < 2 % of the nearest one's, and it avoids a slow top_k over Q.
        soft = ops.softmax(-d2 / (2 * self.sigma ** 2), axis=-1)
        return soft, ops.take(ops.convert_to_tensor(self.weights), ops.argmin(d2, axis=-1))

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "weights": self.weights.tolist(),
                "sigma": self.sigma}


@register("colorizer", "L", "ab_bins", stride=8, data_kwargs=_colorizer_4_data_kwargs)
def colorizer_4(input_shape=(32, 32, 1), bins=None, prior=None) -> keras.Model:
    """Classification over quantised ab (Zhang et al. 2016, "Colorful Image Colorization"): the
    U-Net trunk of colorizer_3 -> softmax over the Q in-gamut ab bins (grid of 10) seen in the
    training data, trained with class-rebalanced cross-entropy (λ=0.5, σ=5), decoded by annealed
    mean (T=0.38) in predict_rgb. Without `bins`/`prior` it uses every sRGB-gamut bin with a
    uniform prior. Any H, W divisible by 8."""
    if bins is None:
        bins = gamut_bins()
    if prior is None:
        prior = np.full(len(bins), 1.0 / len(bins))
    inputs = keras.Input(input_shape, name="colorizer_4_input")
    x = unet_trunk(inputs, UNET_WIDTHS, "unet")
    logits = layers.Conv2D(len(bins), 1, name="ab_logits")(x)
    outputs = ABBins(bins, name="ab_bins", dtype="float32")(logits)
    model = keras.Model(inputs, outputs, name="colorizer_4")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=RebalancedBinLoss(bins, rebalance_weights(bins, prior)))
    return model

# ----------------------------------------------------------------------------- colorizer_5 (pix2pix)


def patch_discriminator(input_shape, name="discriminator"):
    """PatchGAN (Isola et al. 2017) on (L, ab): one real/fake logit per overlapping patch."""
    L = keras.Input(input_shape[:2] + (1,), name=f"{name}_L")
    ab = keras.Input(input_shape[:2] + (2,), name=f"{name}_ab")
    x = layers.Concatenate(name=f"{name}_concat")([L, ab])
    for i, f in enumerate((64, 128, 256)):
        x = layers.Conv2D(f, 4, strides=2 if i < 2 else 1, padding="same", name=f"{name}_conv{i}")(x)
        if i:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"{name}_lrelu{i}")(x)
    out = layers.Conv2D(1, 4, padding="same", name=f"{name}_logits", dtype="float32")(x)
    return keras.Model([L, ab], out, name=name)


@keras.saving.register_keras_serializable(package="colorizers")
class Pix2Pix(keras.Model):
    """Conditional GAN colorizer (Isola et al. 2017; Nazeri et al. 2018 on CIFAR-10): a U-Net
    generator L -> ab and a PatchGAN discriminator, generator loss = adversarial + l1_weight * L1.
    Calling the model runs the generator. The reported `loss` is the L1 part (also on validation),
    so it is comparable across epochs and with colorizer_3."""

    def __init__(self, image_shape=(32, 32, 1), l1_weight=100.0, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.l1_weight = tuple(image_shape), float(l1_weight)
        inputs = keras.Input(self.image_shape, name="generator_input")
        x = unet_trunk(inputs, UNET_WIDTHS, "gen")
        ab = layers.Conv2D(2, 1, activation="tanh", name="gen_ab", dtype="float32")(x)
        self.generator = keras.Model(inputs, ab, name="generator")
        self.discriminator = patch_discriminator(self.image_shape)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "g_adv", "d_loss")}
        self.built = True  # both halves are built functional models (BackupAndRestore requires it)

    @property
    def input_shape(self):
        return (None,) + self.image_shape

    @property
    def output_shape(self):
        return self.generator.output_shape

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(self, optimizer=None, d_optimizer=None, **kwargs):
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5), **kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)

    def get_compile_config(self):
        return {}  # default optimizers; a loaded model is ready to predict or to train on

    def compile_from_config(self, config):
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, batch):
        import tensorflow as tf
        L, ab = batch
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(L, training=True)
            d_real = self.discriminator([L, ab], training=True)
            d_fake = self.discriminator([L, fake], training=True)
            g_adv = bce(tf.ones_like(d_fake), d_fake)
            l1 = tf.reduce_mean(tf.abs(ab - fake))
            g_loss = g_adv + self.l1_weight * l1
            d_loss = 0.5 * (bce(tf.ones_like(d_real), d_real) + bce(tf.zeros_like(d_fake), d_fake))
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
        for k, v in (("loss", l1), ("g_adv", g_adv), ("d_loss", d_loss)):
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def test_step(self, batch):
        L, ab = batch
        fake = self.generator(L, training=False)
        self.trackers["loss"].update_state(keras.ops.mean(keras.ops.abs(ab - fake)))
        return {"loss": self.trackers["loss"].result()}

    def get_config(self):
        return {"image_shape": list(self.image_shape), "l1_weight": self.l1_weight, "name": self.name}


@register("colorizer", "L", "ab", stride=8)
def colorizer_5(input_shape=(32, 32, 1)) -> keras.Model:
    """pix2pix conditional GAN (see Pix2Pix): U-Net generator L -> ab (tanh), PatchGAN
    discriminator, adversarial + 100 * L1. Any H, W divisible by 8."""
    model = Pix2Pix(input_shape, name="colorizer_5")
    model.compile()
    return model

# ----------------------------------------------------------------------------- colorizer_6 (regression + classification)


def space_to_depth(x, block):
    """(B, H, W, C) -> (B, H/block, W/block, block*block*C): each block's pixels as channels."""
    h, w, c = x.shape[1:]  # static: models are built for a size
    x = keras.ops.reshape(x, (-1, h // block, block, w // block, block, c))
    x = keras.ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return keras.ops.reshape(x, (-1, h // block, w // block, block * block * c))


@keras.saving.register_keras_serializable(package="colorizers")
class ABMix(layers.Layer):
    """Output of colorizer_6: the regression head's ab (2 channels, data.py scale, full resolution)
    followed by the softmax over the Q ab bins, computed at half resolution and repeated to full
    (Q channels: chroma is smooth, and Q maps at full size would cost more than the whole trunk).
    Holds the bin centres and the decoding settings (`mix`, `temperature`, `gain`) that
    `decode_mix` uses; calibration after training sets them."""

    def __init__(self, centers, mix=1.0, temperature=0.38, gain=0.0, **kwargs):
        super().__init__(**kwargs)
        self.centers = np.asarray(centers, np.float32)
        self.mix, self.temperature, self.gain = float(mix), float(temperature), float(gain)

    def call(self, inputs, training=False):
        ab, logits_half = inputs
        if training:
            # What the loss needs, at half resolution (TRAINING_LAYOUT): each 2x2 block's ab as 8
            # channels, then the raw logits. Repeating Q probabilities to full size only for the loss
            # to take every second pixel back cost more than the whole U-Net (benchmarks/profile_step.py).
            return keras.ops.concatenate([space_to_depth(ab, 2), logits_half], axis=-1)
        probs = keras.ops.softmax(logits_half, axis=-1)
        probs = keras.ops.repeat(keras.ops.repeat(probs, 2, axis=1), 2, axis=2)
        return keras.ops.concatenate([ab, probs], axis=-1)

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "mix": self.mix,
                "temperature": self.temperature, "gain": self.gain}


@keras.saving.register_keras_serializable(package="colorizers")
class MixLoss(keras.losses.Loss):
    """colorizer_6's loss: L1 on the regression head (colorizer_3's loss) + `cls_weight` x
    colorizer_4's rebalanced soft-encoded cross-entropy on the classification head."""

    def __init__(self, centers, weights, cls_weight=0.3, sigma=5.0, cls_stride=2, name="l1_plus_bin_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cls = RebalancedBinLoss(centers, weights, sigma)
        self.cls_weight, self.cls_stride = float(cls_weight), int(cls_stride)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        s = self.cls_stride
        if y_pred.shape[-1] == 4 * 2 + len(self.cls.centers):  # ABMix's training layout, half resolution
            # split, not y_pred[..., 8:]: a strided slice's gradient over Q channels costs more than the loss
            ab_blocks, logits = ops.split(y_pred, [8], axis=-1)
            l1 = ops.mean(ops.abs(space_to_depth(y_true, 2) - ab_blocks))
            ce = ops.mean(self.cls.from_logits(y_true[:, ::s, ::s], logits))
            return l1 + self.cls_weight * ce
        # the inference layout (evaluate, validation): full resolution, probabilities repeated 2x2
        l1 = ops.mean(ops.abs(y_true - y_pred[..., :2]))
        # The class head predicts at half resolution (ABMix repeats each value 2x2): the cross-
        # entropy is taken once per 2x2 block, on its top-left pixel (random crops move the grid).
        ce = ops.mean(self.cls.call(y_true[:, ::s, ::s], y_pred[:, ::s, ::s, 2:]))
        return l1 + self.cls_weight * ce

    def get_config(self):
        return {**super().get_config(), "centers": self.cls.centers.tolist(), "weights": self.cls.weights.tolist(),
                "cls_weight": self.cls_weight, "sigma": self.cls.sigma, "cls_stride": self.cls_stride}


# The decoding grid (a first sweep over mix 0-2, gain 0-3 and T 0.2/0.38 on the landscapes showed T
# barely matters and gains above 0.5 always lose to gray: the grid is kept where the choice is made).
MIX_GRID = (0.0, 1.0, 1.25, 1.5, 1.75, 2.0)
TEMPERATURE_GRID = (0.2,)
GAIN_GRID = (0.0, 0.15, 0.3)
CALIBRATION_IMAGES = 1000  # at most this many validation photos (a seeded sample) score each setting


def calibrate_colorizer_6(model, photos, seed=0):
    """Choose colorizer_6's decoding (`mix`, `temperature`, `gain`) on validation photos only (uint8
    RGB, at the resolution it will be judged at; each is colorized as colorize.py does: predicted
    at the model's size, the photo's own L kept). Rule (metrics.vivid_and_accurate): the most
    colourful setting of the grid that beats `gray` on PSNR, SSIM, MAE, acc@2 and AuC at once on
    these photos, in at least 95% of bootstrap resamples of them; if none does, the setting with the
    best PSNR. Sets the choice in the model's ABMix layer; returns the sweep."""
    import metrics
    layer = _bin_layer(model)
    if len(photos) > CALIBRATION_IMAGES:
        photos = photos[np.sort(np.random.default_rng(seed).choice(len(photos), CALIBRATION_IMAGES, replace=False))]
    h, w = model.input_shape[1:3]
    small = data.resize_batch(photos, h, w) if photos.shape[1:3] != (h, w) else photos
    ab = {(m, T, g): [] for T in TEMPERATURE_GRID for m in MIX_GRID for g in GAIN_GRID}
    for i in range(0, len(photos), 32):
        y = np.asarray(model(data.model_inputs(small[i:i + 32], "L"), training=False))
        for T in TEMPERATURE_GRID:
            ab_cls = data.annealed_mean(y[..., 2:], layer.centers, T)  # shared by every mix and gain
            for m in MIX_GRID:
                for g in GAIN_GRID:
                    ab[m, T, g].append(data.decode_mix(y, layer.centers, m, T, g, ab_cls=ab_cls))
    gray_pred = metrics.baseline(photos)
    gray_images = metrics.per_image_scores(gray_pred, photos)
    gray = metrics.mean_scores(gray_images, gray_pred)
    means, per_image = {}, {}
    for i, ((m, T, g), parts) in enumerate(ab.items()):
        pred = data.recombine_full(photos, np.concatenate(parts))
        per_image[i] = metrics.per_image_scores(pred, photos)
        s = metrics.mean_scores(per_image[i], pred)
        means[i] = dict(mix=m, temperature=T, gain=g, **s, beats_gray=metrics.beats(s, gray),
                        surely_beats_gray=metrics.surely_beats(per_image[i], gray_images))
    sweep = list(means.values())
    chosen = sweep[metrics.vivid_and_accurate(means, per_image, gray_images)[0]]
    layer.mix, layer.temperature, layer.gain = chosen["mix"], chosen["temperature"], chosen["gain"]
    return {"chosen": chosen, "gray": gray, "sweep": sweep, "images": len(photos),
            "rule": "most colourful setting beating gray on PSNR, SSIM, MAE, acc@2 and AuC on validation, in at "
                    "least 95% of 1000 paired bootstrap resamples of the photos (else the best PSNR)"}


@register("colorizer", "L", "ab_mix", stride=8, data_kwargs=_colorizer_4_data_kwargs,
          calibrate=calibrate_colorizer_6)
def colorizer_6(input_shape=(32, 32, 1), bins=None, prior=None, mix=1.0, temperature=0.38,
                gain=0.0) -> keras.Model:
    """Vivid *and* accurate: one U-Net trunk (colorizer_3's), two 1x1 heads, decoded by confidence.

    Why: a regression head trained with L1 (colorizer_3) is accurate but hedges: where a colour is
    uncertain its best guess is the muted middle of the possibilities (sepia). A classifier over
    ab bins with class rebalancing (colorizer_4) keeps a vivid mode but, decoded everywhere, paints
    confident-looking colours where it is guessing, which costs accuracy. colorizer_6 trains both
    heads on one trunk (loss = L1 + 0.3 x rebalanced cross-entropy; Adam makes each head learn at
    its own scale, the weight only sets how much the colour classes shape the shared features) and
    uses the classifier to know *where* colour is predictable: per pixel, with c the probability
    mass of its 5 most likely bins, the regression ab moves towards the classifier's annealed-mean
    colour by min(1, mix x c) and its chroma is scaled by 1 + gain x c. Sky, foliage and water
    (sure) become vivid; what the classifier cannot tell stays cautious. The classifier runs at
    half resolution (chroma is smooth; Q maps at full size cost more than the trunk), so the
    model trains nearly as fast as colorizer_3. `mix`, `temperature` and `gain` are decoding
    settings chosen after training on the validation photos alone (`calibrate_colorizer_6`:
    the most colourful setting still beating gray on all five accuracy metrics), never on the
    test set. The trunk is colorizer_3's, so comparisons with colorizer_3 and colorizer_4 measure
    the heads and the decoding, not the size.
    Any H, W divisible by 8."""
    if bins is None:
        bins = gamut_bins()
    if prior is None:
        prior = np.full(len(bins), 1.0 / len(bins))
    inputs = keras.Input(input_shape, name="colorizer_6_input")
    levels = {}
    x = unet_trunk(inputs, UNET_WIDTHS, "unet", levels)
    ab = layers.Conv2D(2, 1, activation="tanh", name="ab_reg", dtype="float32")(x)
    # half resolution; in the training precision (bfloat16 fills the matrix units), ABMix takes them in float32
    logits = layers.Conv2D(len(bins), 1, name="ab_logits")(levels[1])
    outputs = ABMix(bins, mix, temperature, gain, name="ab_mix", dtype="float32")([ab, logits])
    model = keras.Model(inputs, outputs, name="colorizer_6")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=MixLoss(bins, rebalance_weights(bins, prior)))
    return model

# ----------------------------------------------------------------------------- inference


def _bin_layer(model):
    for layer in model.layers:
        if isinstance(layer, (ABBins, ABMix)):
            return layer
    raise ValueError(f"Model '{model.name}' returns ab bins but has no ABBins/ABMix layer to decode them")


def _decode_settings(model):
    """What a model with bin outputs decodes with, read from its ABBins/ABMix layer, named as its
    builder takes them: {"bins": centres} (+ mix, temperature, gain for ab_mix); {} otherwise."""
    outputs = _builder(model.name).outputs
    if outputs not in ("ab_bins", "ab_mix"):
        return {}
    layer = _bin_layer(model)
    if outputs == "ab_bins":
        return {"bins": layer.centers}
    return {"bins": layer.centers, "mix": layer.mix, "temperature": layer.temperature, "gain": layer.gain}


def codec(model):
    """The codec (`data.codec`) of a built or trained model: its contract's, with the bin centres and
    decoding settings read from its ABBins/ABMix layer. Encoding and decoding go through it."""
    b = _builder(model.name)
    params = {("centers" if k == "bins" else k): v for k, v in _decode_settings(model).items()}
    return data.codec(b.inputs, b.outputs, **params)


def at_size(model, height, width):
    """The same trained model rebuilt for inputs of `height` x `width` (fully convolutional
    models only; height and width must be multiples of the model's stride)."""
    builder = _builder(model.name)
    if tuple(model.input_shape[1:3]) == (height, width):
        return model
    if builder.stride is None:
        raise ValueError(f"Model '{model.name}' has a fixed input size {model.input_shape[1:3]}; "
                         f"it cannot run at {height}x{width}")
    if height % builder.stride or width % builder.stride:
        raise ValueError(f"Model '{model.name}' needs height and width divisible by {builder.stride}, "
                         f"got {height}x{width}")
    # a resized copy decodes like the original
    resized = builder(input_shape=(height, width, model.input_shape[-1]), **_decode_settings(model))
    resized.set_weights(model.get_weights())
    return resized


CHUNK_PIXELS = 2 ** 18  # images are predicted this many pixels at a time: a colour-bin model's Q
                        # probabilities per pixel never exist for a whole test set at once


def predict(model, images, decode, batch_size=256, codec_=None):
    """Encode uint8 RGB or gray images for `model` (its codec, or `codec_`), run it, and
    `decode(outputs, encoded)` -> concatenated results, CHUNK_PIXELS at a time."""
    codec_ = codec_ or codec(model)
    images = np.asarray(images)
    chunk = max(1, CHUNK_PIXELS // int(np.prod(images.shape[1:3])))
    out = []
    for i in range(0, len(images), chunk):
        x = codec_.encode(images[i:i + chunk])
        # one small batch (a photo): a direct call skips predict()'s per-call setup
        y = np.asarray(model(x, training=False)) if len(x) <= batch_size else \
            model.predict(x, batch_size=batch_size, verbose=0)
        out.append(decode(y, x))
    return np.concatenate(out)


def predict_ab(model, images, batch_size=256, codec_=None):
    """Chroma a colorizer predicts for uint8 RGB or gray images: CIE ab `(N,H,W,2)` in ab
    units, whatever its contract (RGB outputs are converted to Lab)."""
    codec_ = codec_ or codec(model)
    return predict(model, images, lambda y, x: codec_.ab(y), batch_size, codec_)


MAX_SATURATION = 5.0


def check_saturation(saturation):
    """`saturation` as a float in [0, MAX_SATURATION], or a ValueError naming the value."""
    try:
        s = float(saturation)
    except (TypeError, ValueError):
        s = float("nan")
    if not 0 <= s <= MAX_SATURATION:  # also rejects NaN
        raise ValueError(f"saturation must be a number from 0 to {MAX_SATURATION:g} (1 = as trained), got {saturation!r}")
    return s


def predict_rgb(model, images, batch_size=256, saturation=1.0):
    """uint8 RGB `(N,H,W,3)` or gray `(N,H,W[,1])` images -> uint8 RGB `(N,H,W,3)` from any
    registered autoencoder or colorizer, through its codec (input conversion, Lab scaling, bin
    decoding, recombination with the input's own L). `saturation` multiplies the predicted
    chroma (a*, b*) at decoding time: 1 is the model as trained, above 1 more vivid, 0 gray."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"predict_rgb expects uint8 images in [0, 255], got dtype {images.dtype}")
    saturation = check_saturation(saturation)
    codec_ = codec(model)
    return predict(model, images, lambda y, x: codec_.decode(y, x, saturation), batch_size, codec_)


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
