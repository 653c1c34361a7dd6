"""Custom layers and losses: the fused batch norm of the U-Nets, and the output heads and losses of
the colour-class colorizers (colorizer_4, colorizer_6).

Registered with Keras under the package "colorizers" with the class names that saved `.keras`
files name, so importing this module (models.py and store.py do) is what lets them load.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import numpy as np
import keras
from keras import layers

from colour import AB_SCALE, L_SCALE


NEUTRAL_CHROMA = 12.0  # ab units: the bins of near-neutral colours (rock, haze, snow, cloud) for `neutral_weight`


def rebalance_weights(centers, prior, lam=0.5, sigma=5.0, neutral_weight=1.0):
    """Zhang et al. 2016 eq. 4: w ∝ ((1-λ) p̃ + λ/Q)^-1 with p̃ the prior smoothed by a Gaussian
    of σ ab units, normalised so that E_p̃[w] = 1. `neutral_weight` multiplies the weights of the
    bins within NEUTRAL_CHROMA of gray before the normalisation: rebalancing makes common colours
    cheap to miss, and the near-neutral ones are where the landscapes' acc@2 is lost."""
    centers, prior = np.asarray(centers, np.float64), np.asarray(prior, np.float64)
    d2 = ((centers[:, None] - centers[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma ** 2))
    smooth = k @ prior
    smooth /= smooth.sum()
    w = 1.0 / ((1 - lam) * smooth + lam / len(prior))
    w = np.where(np.hypot(centers[:, 0], centers[:, 1]) <= NEUTRAL_CHROMA, w * float(neutral_weight), w)
    return (w / (smooth * w).sum()).astype(np.float32)


# CIE Lab (D65, 2° observer) -> sRGB as skimage.color.lab2rgb computes it, in tensor ops (differentiable)
_D65 = (0.95047, 1.0, 1.08883)
_RGB_FROM_XYZ = np.array([[3.24048134, -1.53715152, -0.49853633],
                          [-0.96925495, 1.87599, 0.04155593],
                          [0.05564664, -0.20404134, 1.05731107]], np.float32)


def lab_to_rgb_tensor(L, a, b):
    """sRGB in [0, 1] (..., 3) of CIE L*, a*, b* tensors of one shape: skimage's lab2rgb (colour.lab_to_rgb)
    in Keras ops, so that a loss can take gradients through the decoded colours."""
    ops = keras.ops
    a, b = ops.clip(a, -128.0, 127.0), ops.clip(b, -128.0, 127.0)
    fy = (L + 16.0) / 116.0
    f = ops.stack([fy + a / 500.0, fy, ops.maximum(fy - b / 200.0, 0.0)], axis=-1)  # skimage clips z below 0
    xyz = ops.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.asarray(_D65, np.float32)
    lin = ops.clip(ops.matmul(xyz, ops.convert_to_tensor(_RGB_FROM_XYZ.T)), 0.0, 1.0)
    srgb = ops.where(lin > 0.0031308, 1.055 * ops.power(ops.maximum(lin, 0.0031308), 1 / 2.4) - 0.055, 12.92 * lin)
    return ops.clip(srgb, 0.0, 1.0)


def colourfulness_loss(rgb):
    """DDColor's colourfulness loss (Kang et al., ICCV 2023) per image of a batch of sRGB (B, ..., 3) in
    [0, 1]: 1 - (σ_rgyb + 0.3 μ_rgyb) / 100, the Hasler & Süsstrunk colourfulness (metrics.colorfulness)
    on the 0-255 scale; lower for a more colourful batch."""
    ops = keras.ops
    x = rgb * 255.0
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    axes = tuple(range(1, len(rg.shape)))
    sigma = ops.sqrt(ops.var(rg, axis=axes) + ops.var(yb, axis=axes) + 1e-6)  # eps: no NaN gradient at gray
    mu = ops.sqrt(ops.mean(rg, axis=axes) ** 2 + ops.mean(yb, axis=axes) ** 2 + 1e-6)
    return 1.0 - (sigma + 0.3 * mu) / 100.0


@keras.saving.register_keras_serializable(package="colorizers")
class FusedBatchNorm(layers.BatchNormalization):
    """BatchNormalization whose training step is TensorFlow's fused kernel (one op for the batch
    moments, the normalisation and the moving averages, in the input's bfloat16): Keras's generic
    version spends a third of a U-Net step on element-wise ops (benchmarks/profile_step.py).
    Inference, masks and other backends take Keras's own path, so a model behaves as with
    BatchNormalization once trained (the weights are the same four)."""

    def call(self, inputs, training=None, mask=None):
        # the fused kernel takes 4-D NHWC inputs with both gamma and beta and float32 statistics
        if not (training and self.trainable) or mask is not None or self.renorm or self.axis not in (-1, 3) \
                or len(inputs.shape) != 4 or not (self.center and self.scale) or self.synchronized \
                or self.variable_dtype != "float32" or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf
        y, mean, var, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, "float32"), offset=tf.cast(self.beta, "float32"),
            mean=tf.convert_to_tensor(self.moving_mean), variance=tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon, exponential_avg_factor=1.0 - self.momentum, data_format="NHWC", is_training=True)
        self.moving_mean.assign(mean)
        self.moving_variance.assign(var)
        return keras.ops.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="colorizers")
class ABBins(layers.Layer):
    """Softmax over quantised ab bins; holds the bin centres (ab units) used to decode them. With
    `repeat` > 1 the logits come at 1/repeat of the output's resolution (colorizer_4's class head at
    half resolution, as in Zhang et al.): inference repeats each pixel's probabilities repeat x repeat;
    training gets the raw logits at their own resolution (RebalancedBinLoss takes the cross-entropy
    from them on the matching pixels: two passes over Q where log(softmax) takes five). Models saved
    before `repeat` existed (full-resolution logits) load with 1 and behave as they did."""

    def __init__(self, centers, repeat=1, **kwargs):
        super().__init__(**kwargs)
        self.centers = np.asarray(centers, np.float32)
        self.repeat = int(repeat)

    def call(self, logits, training=False):
        if self.repeat == 1:
            return keras.ops.softmax(logits, axis=-1)
        if training:
            return keras.ops.cast(logits, "float32")
        probs = keras.ops.softmax(logits, axis=-1)
        return keras.ops.repeat(keras.ops.repeat(probs, self.repeat, axis=1), self.repeat, axis=2)

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "repeat": self.repeat}


AB_TABLE_LIMIT = 110.0  # the soft-encoding table covers a*, b* in [-limit, limit] (ab units)...
AB_TABLE_STEP = 1.0     # ...in cells this wide: a target moves at most half a unit, a tenth of σ
AB_TABLE_CELLS = int(round(2 * AB_TABLE_LIMIT / AB_TABLE_STEP)) + 1


def soft_encoding_table(centers, weights, sigma):
    """(soft (G², Q), weight (G²,)) float32 for the ab value at each cell centre of the G x G grid
    (G = AB_TABLE_CELLS, row a*, column b*): Zhang et al.'s soft encoding, a Gaussian of σ ab units
    over every bin (beyond the few nearest its weights are < 2 % of the nearest one's), and the
    rebalancing weight of the nearest bin."""
    centers = np.asarray(centers, np.float32)
    grid = np.linspace(-AB_TABLE_LIMIT, AB_TABLE_LIMIT, AB_TABLE_CELLS, dtype=np.float32)
    ab = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    d2 = (ab ** 2).sum(-1, keepdims=True) - 2 * ab @ centers.T + (centers ** 2).sum(-1)
    logits = -d2 / (2 * sigma ** 2)
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    return soft.astype(np.float32), np.asarray(weights, np.float32)[d2.argmin(-1)]


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
        self._tables = None  # soft_encoding_table as tensors, built at the first training step (tables)

    def call(self, y_true, y_pred):
        if y_pred.shape[1] is not None and y_true.shape[1] is not None and y_pred.shape[1] < y_true.shape[1]:
            # the training layout of ABBins(repeat=s): raw logits, one per s x s block (its top-left pixel)
            s = y_true.shape[1] // y_pred.shape[1]
            return self.from_logits(y_true[:, ::s, ::s], y_pred)
        soft, w = self.soft_targets(y_true)
        # probabilities are at most 1: only the floor matters (a clip costs four more passes over Q)
        log_probs = keras.ops.log(keras.ops.maximum(keras.ops.cast(y_pred, "float32"), 1e-7))
        return -keras.ops.sum(soft * log_probs, axis=-1) * w

    def from_logits(self, y_true, logits):
        """The same per-pixel loss from logits (B,H,W,Q): Σ soft·(logsumexp − logit), two passes
        over Q where log(softmax) takes five (and as many in the gradient). The training layouts
        come here, with their soft targets looked up (table_targets)."""
        soft, w = self.table_targets(y_true)
        logits = keras.ops.cast(logits, "float32")
        return (keras.ops.logsumexp(logits, axis=-1) - keras.ops.sum(soft * logits, axis=-1)) * w

    def soft_targets(self, y_true):
        """Soft-encoded targets (B,H,W,Q) of ab targets (B,H,W,2), and each pixel's rebalancing
        weight, computed at the target's own ab (the validation loss: comparable across versions)."""
        ops = keras.ops
        ab = ops.cast(y_true, "float32") * AB_SCALE                       # (B,H,W,2)
        c = ops.convert_to_tensor(self.centers)
        # |ab - c|^2 as a matmul: no (B,H,W,Q,2) intermediate
        d2 = ops.sum(ab ** 2, -1, keepdims=True) - 2 * ops.matmul(ab, ops.transpose(c)) + ops.sum(c ** 2, -1)
        # Gaussian soft-encoding (σ=5) over every bin: beyond the few nearest bins the weights
        # are < 2 % of the nearest one's, and it avoids a slow top_k over Q.
        soft = ops.softmax(-d2 / (2 * self.sigma ** 2), axis=-1)
        return soft, ops.take(ops.convert_to_tensor(self.weights), ops.argmin(d2, axis=-1))

    def table_targets(self, y_true):
        """soft_targets looked up in `soft_encoding_table` at the target's cell of the ab grid (the
        target moved by at most half an ab unit). Why: computing them per pixel (distances to every
        bin, a softmax over Q, an argmin) took a third of colorizer_6's training step
        (benchmarks/profile_step.py); the lookup is one pass over Q (README, Performance)."""
        ops = keras.ops
        soft_table, weight_table = self.tables()
        ab = ops.cast(y_true, "float32") * AB_SCALE
        # A NaN target (a corrupt photo) has no cell of the grid: look up cell 0's, and give the pixel
        # a NaN weight, so that the loss is NaN (TerminateOnNaN) rather than an index outside the table.
        nan = ops.isnan(ab)
        ab = ops.where(nan, 0.0, ab)
        cells = ops.cast(ops.round((ops.clip(ab, -AB_TABLE_LIMIT, AB_TABLE_LIMIT) + AB_TABLE_LIMIT) / AB_TABLE_STEP),
                         "int32")                                                          # (B,H,W,2)
        cell = cells[..., 0] * AB_TABLE_CELLS + cells[..., 1]
        weight = ops.where(ops.any(nan, axis=-1), float("nan"), ops.take(weight_table, cell, axis=0))
        return ops.take(soft_table, cell, axis=0), weight

    def tables(self):
        """soft_encoding_table of this loss's bins, built once (at the first call, not when a model
        loads) and held as tensors outside any traced graph."""
        if self._tables is None:
            soft, weight = soft_encoding_table(self.centers, self.weights, self.sigma)
            import tensorflow as tf
            with tf.init_scope():  # eager constants, captured by a traced step rather than copied into it
                self._tables = (tf.constant(soft), tf.constant(weight))
        return self._tables

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "weights": self.weights.tolist(),
                "sigma": self.sigma}


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
    Holds the bin centres and the decoding settings (`mix`, `temperature`, `gain`, `chroma_min`) that
    `decode_mix` uses; calibration after training sets them."""

    def __init__(self, centers, mix=1.0, temperature=0.38, gain=0.0, chroma_min=0.0, **kwargs):
        super().__init__(**kwargs)
        self.centers = np.asarray(centers, np.float32)
        self.mix, self.temperature, self.gain = float(mix), float(temperature), float(gain)
        self.chroma_min = float(chroma_min)  # models saved before it existed load with 0: as they decoded

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
                "temperature": self.temperature, "gain": self.gain, "chroma_min": self.chroma_min}


@keras.saving.register_keras_serializable(package="colorizers")
class MixLoss(keras.losses.Loss):
    """colorizer_6's loss: L1 on the regression head (colorizer_3's loss) + `cls_weight` x
    colorizer_4's rebalanced soft-encoded cross-entropy on the classification head, + with
    `colourfulness_weight` > 0 that weight x DDColor's colourfulness loss of the regression head's
    colours (the regression head's ab with the photo's L*: the class head's colours come from an
    annealed mean and a confidence that calibration chooses after training). That term needs each
    pixel's L* with its target (`takes_luma`: training appends the input's L as a third target
    channel, pipelines.with_luma), so such a run's val_loss includes it and compares only with runs
    of the same weight; without the L* (evaluate() on plain targets) the term is left out."""

    def __init__(self, centers, weights, cls_weight=0.3, sigma=5.0, cls_stride=2, colourfulness_weight=0.0,
                 name="l1_plus_bin_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cls = RebalancedBinLoss(centers, weights, sigma)
        if int(cls_stride) != 2:  # ABMix's class head (and its training layout) is at half resolution
            raise ValueError(f"MixLoss cls_stride must be 2 (the class head's resolution), got {cls_stride!r}")
        self.cls_weight, self.cls_stride = float(cls_weight), int(cls_stride)
        self.colourfulness_weight = float(colourfulness_weight)
        self.takes_luma = self.colourfulness_weight > 0

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        luma = None
        if y_true.shape[-1] == 3:  # ab and the input's L (takes_luma)
            y_true, luma = y_true[..., :2], y_true[..., 2:]
        s = self.cls_stride
        if y_pred.shape[-1] == 4 * 2 + len(self.cls.centers):  # ABMix's training layout, half resolution
            # split, not y_pred[..., 8:]: a strided slice's gradient over Q channels costs more than the loss
            ab, logits = ops.split(y_pred, [8], axis=-1)
            l1 = ops.mean(ops.abs(space_to_depth(y_true, 2) - ab))
            ce = ops.mean(self.cls.from_logits(y_true[:, ::s, ::s], logits))
            if luma is not None:  # each 2x2 block's pixels as channels, in the order of ab's
                luma = space_to_depth(luma, 2)
                ab = ops.reshape(ab, (-1, *ab.shape[1:3], 4, 2))
        else:
            # the inference layout (evaluate, validation): full resolution, probabilities repeated 2x2
            ab = y_pred[..., :2]
            l1 = ops.mean(ops.abs(y_true - ab))
            # The class head predicts at half resolution (ABMix repeats each value 2x2): the cross-
            # entropy is taken once per 2x2 block, on its top-left pixel (random crops move the grid).
            ce = ops.mean(self.cls.call(y_true[:, ::s, ::s], y_pred[:, ::s, ::s, 2:]))
            if luma is not None:
                luma = luma[..., 0]
        loss = l1 + self.cls_weight * ce
        if luma is not None and self.colourfulness_weight:
            rgb = lab_to_rgb_tensor((luma + 1.0) * L_SCALE, ab[..., 0] * AB_SCALE, ab[..., 1] * AB_SCALE)
            loss = loss + self.colourfulness_weight * ops.mean(colourfulness_loss(rgb))
        return loss

    def get_config(self):
        return {**super().get_config(), "centers": self.cls.centers.tolist(), "weights": self.cls.weights.tolist(),
                "cls_weight": self.cls_weight, "sigma": self.cls.sigma, "cls_stride": self.cls_stride,
                "colourfulness_weight": self.colourfulness_weight}
