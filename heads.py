"""Custom output heads and losses of the colour-class colorizers (colorizer_4, colorizer_6).

Registered with Keras under the package "colorizers" with the class names that saved `.keras`
files name, so importing this module (models.py and store.py do) is what lets them load.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import numpy as np
import keras
from keras import layers

from colour import AB_SCALE



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
        ops = keras.ops
        ab = ops.cast(y_true, "float32") * AB_SCALE                       # (B,H,W,2)
        c = ops.convert_to_tensor(self.centers)
        # |ab - c|^2 as a matmul: no (B,H,W,Q,2) intermediate
        d2 = ops.sum(ab ** 2, -1, keepdims=True) - 2 * ops.matmul(ab, ops.transpose(c)) + ops.sum(c ** 2, -1)
        # Gaussian soft-encoding (σ=5) over every bin: beyond the few nearest bins the weights
        # are < 2 % of the nearest one's, and it avoids a slow top_k over Q.
        soft = ops.softmax(-d2 / (2 * self.sigma ** 2), axis=-1)
        ce = -ops.sum(soft * ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)), axis=-1)
        w = ops.take(ops.convert_to_tensor(self.weights), ops.argmin(d2, axis=-1))
        return ce * w

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "weights": self.weights.tolist(),
                "sigma": self.sigma}



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

    def call(self, inputs):
        ab, logits_half = inputs
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
        y_pred = keras.ops.cast(y_pred, "float32")
        y_true = keras.ops.cast(y_true, "float32")
        l1 = keras.ops.mean(keras.ops.abs(y_true - y_pred[..., :2]))
        # The class head predicts at half resolution (ABMix repeats each value 2x2): the cross-
        # entropy is taken once per 2x2 block, on its top-left pixel (random crops move the grid).
        s = self.cls_stride
        ce = keras.ops.mean(self.cls.call(y_true[:, ::s, ::s], y_pred[:, ::s, ::s, 2:]))
        return l1 + self.cls_weight * ce

    def get_config(self):
        return {**super().get_config(), "centers": self.cls.centers.tolist(), "weights": self.cls.weights.tolist(),
                "cls_weight": self.cls_weight, "sigma": self.cls.sigma, "cls_stride": self.cls_stride}


