"""I/O contracts: what a model takes and returns, and the codec that converts for it.

    contract = contracts.get("L", "ab")          # a Contract: inputs, outputs, channel counts
    x, y = contract.codec().pair(uint8_images)    # model input and training target
    rgb = contract.codec().decode(outputs, x)     # uint8 RGB from what the model returned

A codec is the only place where images become model inputs and training targets, and model
outputs become chroma or uint8 RGB. A new contract is one `Codec` subclass with `inputs`,
`outputs` and the channel counts, passed to `register`.
"""

import dataclasses

import numpy as np

from colour import (AB_SCALE, as_rgb, lab_to_rgb, resize_batch, rgb_to_lab, scale_ab, scale_chroma, scale_l, to_float,
                    to_grayscale, to_uint8, unscale_ab, unscale_l)

INPUT_CHANNELS = {"rgb": 3, "gray": 1, "L": 1}


def model_inputs(images, inputs, size=None):
    """uint8 RGB (or gray `(...,H,W)` / `(...,H,W,1)`) images -> the model input `inputs` ('rgb',
    'gray' or 'L'; value ranges: colour.py), resized to `size` = (h, w) first if given."""
    if size is not None and tuple(np.shape(images)[1:3]) != tuple(size):
        images = resize_batch(images, *size)  # before as_rgb: a gray photo is resized as one channel
    images = as_rgb(images)
    if inputs == "rgb":
        return to_float(images)
    if inputs == "gray":
        return to_grayscale(images)
    if inputs == "L":
        return scale_l(rgb_to_lab(images)[..., :1])
    raise ValueError(f"Unknown input kind '{inputs}'; choose one of: rgb, gray, L")


# -----------------------------------------------------------------------------
# Contracts and their codecs


@dataclasses.dataclass(frozen=True)
class Contract:
    """One I/O contract: the input kind a model takes, the output it returns, the codec class that
    converts for it and the channel counts of model input and training target."""
    inputs: str
    outputs: str
    codec_class: type

    @property
    def input_channels(self):
        return self.codec_class.input_channels

    @property
    def target_channels(self):
        return self.codec_class.target_channels

    def codec(self, **settings):
        """A codec of this contract; `settings` (bin centres, decoding settings) decode bins."""
        return self.codec_class(**settings)


CONTRACTS = {}  # (inputs, outputs) -> Contract


def register(codec_class):
    """Class decorator: the contract of a Codec subclass, from its `inputs`, `outputs` and channel
    counts. A new contract is defined by this one class."""
    CONTRACTS[codec_class.inputs, codec_class.outputs] = Contract(codec_class.inputs, codec_class.outputs,
                                                                  codec_class)
    return codec_class


def get(inputs, outputs):
    """The Contract of (`inputs`, `outputs`), or a ValueError naming it and listing the known ones."""
    if (inputs, outputs) not in CONTRACTS:
        raise ValueError(f"Unknown I/O contract ({inputs!r}, {outputs!r}); choose one of: {sorted(CONTRACTS)}")
    return CONTRACTS[inputs, outputs]



@register
class Codec:
    """The `rgb -> rgb` contract (autoencoders); the other codecs change what differs.

    encode(images, size) -> model input (resized to `size` first if given); target(images) -> training target; pair(images) -> both, from one
    colour conversion; ab(outputs) -> predicted CIE a*, b* in ab units; chroma(outputs, encoded) -> the
    a*, b* to show (ab's, unless the input itself gives colour: hints); decode(outputs, encoded,
    saturation) -> uint8 RGB (Lab contracts keep the encoded input's L, so one RGB -> Lab conversion
    serves a whole predicted batch)."""
    inputs, outputs = "rgb", "rgb"
    input_channels, target_channels = 3, 3

    def encode(self, images, size=None):
        return model_inputs(images, self.inputs, size)

    def target(self, images):
        return to_float(as_rgb(images))

    def pair(self, images):
        return self.encode(images), self.target(images)

    def ab(self, y):
        return rgb_to_lab(np.clip(y, 0, 1))[..., 1:]

    def chroma(self, y, x):
        return self.ab(y)

    def decode(self, y, x, saturation=1.0):
        rgb = to_uint8(y)
        return rgb if saturation == 1 else scale_chroma(rgb, saturation)


@register
class GrayCodec(Codec):
    """gray -> rgb (colorizer_1, colorizer_2)."""
    inputs, input_channels = "gray", 1


@register
class LabCodec(Codec):
    """L -> ab (colorizer_3, colorizer_5): the model predicts a*, b* for the input's L*."""
    inputs, outputs = "L", "ab"
    input_channels, target_channels = 1, 2

    def target(self, images):
        return self.pair(images)[1]

    def pair(self, images):
        lab = rgb_to_lab(as_rgb(images))
        return scale_l(lab[..., :1]), scale_ab(lab[..., 1:])

    def ab(self, y):
        return unscale_ab(y)

    def decode(self, y, x, saturation=1.0):
        ab = scale_ab(self.chroma(y, x) * saturation)  # ab units -> model scale -> ab units, as before the codecs
        return to_uint8(lab_to_rgb(np.concatenate([unscale_l(x[..., :1]), unscale_ab(ab)], axis=-1)))


@register
class BinsCodec(LabCodec):
    """L -> ab_bins (colorizer_4): probabilities over ab bins, decoded by their annealed mean."""
    outputs = "ab_bins"

    def __init__(self, centers=None, temperature=0.38):
        self.centers, self.temperature = centers, temperature

    def ab(self, y):
        return per_pixel(lambda p: annealed_mean(p, self.bin_centers(), self.temperature), y)

    def bin_centers(self):
        if self.centers is None:
            raise ValueError(f"Decoding {self.outputs} needs the bin centres: build the codec from a trained "
                             f"model (colorizer.codec(model))")
        return self.centers


@register
class MixCodec(BinsCodec):
    """L -> ab_mix (colorizer_6): regression ab and bin probabilities, decoded by `decode_mix`."""
    outputs = "ab_mix"

    def __init__(self, centers=None, mix=1.0, temperature=0.38, gain=0.0, chroma_min=0.0):
        super().__init__(centers, temperature)
        self.mix, self.gain, self.chroma_min = mix, gain, chroma_min

    def ab(self, y):
        return per_pixel(lambda p: decode_mix(p, self.bin_centers(), self.mix, self.temperature, self.gain,
                                              chroma_min=self.chroma_min), y)


@register
class HintCodec(LabCodec):
    """L + colour hints -> ab (colorizer_7, user-guided; Zhang et al. 2017): the input is L*, the
    hinted chroma (a*, b* on a small square where a colour was given, 0 elsewhere) and a mask (1
    there). `encode(images, size, hints)` paints the user's hints; `pair` (training) simulates them
    from the ground truth (`simulate_hints`), so a model learns to follow them and to colorize alone."""
    inputs, outputs = "L+hints", "ab"
    input_channels, target_channels = 4, 2

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)  # the simulated hints of training: seeded, new each batch

    def encode(self, images, size=None, hints=None):
        L = model_inputs(images, "L", size)
        return np.concatenate([L, paint_hints(L.shape[:3], hints)], axis=-1)

    def pair(self, images):
        lab = rgb_to_lab(as_rgb(images))
        L, ab = scale_l(lab[..., :1]), scale_ab(lab[..., 1:])
        return np.concatenate([L, simulate_hints(ab, self.rng)], axis=-1), ab

    def chroma(self, y, x):
        """The predicted chroma, and on the hinted squares of the input `x` the hint's own: a hint is
        the user's word for that place (the model alone lands a few ab units off it)."""
        return np.where(x[..., 3:4] > 0.5, unscale_ab(x[..., 1:3]), self.ab(y))


HINT_PATCH = 3          # a user's hint covers this many model pixels square (training: 1 to 5)
NO_HINT_SHARE = 0.3     # simulated: the share of training photos without any hint (colorize alone)
MEAN_HINTS = 8          # simulated: otherwise a geometric number of hints with this mean


def paint_hints(shape, hints=None, patch=HINT_PATCH):
    """Hint channels (N, h, w, 3): scaled a*, b* and a mask, for `hints` = one list per image of
    (row, col, a, b) at the model's resolution (a*, b* in ab units), each painted on a `patch`-pixel
    square centred there; zeros (no hint) where None."""
    n, h, w = shape
    out = np.zeros((n, h, w, 3), np.float32)
    for i, points in enumerate(hints or []):
        for row, col, a, b in points:
            r0, c0 = int(row) - patch // 2, int(col) - patch // 2
            box = (i, slice(max(0, r0), max(0, r0 + patch)), slice(max(0, c0), max(0, c0 + patch)))
            out[box] = (a / AB_SCALE, b / AB_SCALE, 1.0)
    return out


def simulate_hints(ab, rng):
    """Training hints from the true chroma `ab` (N, h, w, 2, model scale): per photo none (a share
    NO_HINT_SHARE of them, and always for a photo without colour), else a geometric number of
    squares of 1 to 5 pixels at random places, each holding the mean chroma of its square."""
    n, h, w = ab.shape[:3]
    out = np.zeros((n, h, w, 3), np.float32)
    for i in range(n):
        if rng.random() < NO_HINT_SHARE or np.abs(ab[i]).max() * AB_SCALE < 2:
            continue
        for _ in range(min(rng.geometric(1 / MEAN_HINTS), 4 * MEAN_HINTS)):
            p = int(rng.integers(1, 6))
            r, c = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            out[i, r:r + p, c:c + p, :2] = ab[i, r:r + p, c:c + p].mean(axis=(0, 1))
            out[i, r:r + p, c:c + p, 2] = 1.0
    return out


DECODE_PIXELS = 2 ** 15  # bin probabilities are decoded this many pixels at a time: their float64
                         # temporaries stay small, whatever the size the model ran at


def per_pixel(fn, y):
    """`fn` applied to the pixels of `y` (..., C) DECODE_PIXELS at a time -> (..., C')."""
    flat = np.asarray(y).reshape(-1, y.shape[-1])
    out = np.concatenate([fn(flat[i:i + DECODE_PIXELS]) for i in range(0, len(flat), DECODE_PIXELS)])
    return out.reshape(y.shape[:-1] + out.shape[-1:])



def annealed_mean(probs, centers, T=0.38):
    """Zhang et al. 2016 eq. 5: ab = Σ_q f_T(z)_q c_q with f_T(z) = exp(log z / T) / Σ exp(log z / T)."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / T
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(-1, keepdims=True)
    return (p @ np.asarray(centers, np.float64)).astype(np.float32)


def mix_confidence(probs, k=5):
    """How sure the classifier is of a pixel's colour: the probability mass of its k most likely
    bins (neighbouring bins of one colour share the mass), from about k/Q (no idea) to 1."""
    # the k largest by a partition, then sorted (as a full sort would leave them: the same sum to the bit)
    probs = np.asarray(probs, np.float32)
    k = min(k, probs.shape[-1])
    top = np.partition(probs, -k, axis=-1)[..., -k:]
    return np.sort(top, axis=-1).sum(-1, keepdims=True)


def decode_mix(y, centers, mix=1.0, temperature=0.38, gain=0.0, ab_cls=None, chroma_min=0.0, confidence=None):
    """colorizer_6 outputs (..., 2 + Q) -> ab (..., 2) in ab units. With c = mix_confidence:
    the regression ab moves towards the classifier's annealed-mean colour by w = clip(mix x c, 0, 1),
    and its chroma is scaled by 1 + gain x c: more vivid exactly where the classifier is sure, and
    (with `chroma_min` > 0) only where that chroma is already above `chroma_min` ab units, so that
    near-neutral pixels (rock, haze, snow) stay as neutral as predicted.
    (`ab_cls`: the annealed mean, when already computed for this temperature; `confidence`: c, when
    already computed for these outputs.)"""
    y = np.asarray(y, np.float32)
    ab_reg, probs = y[..., :2] * AB_SCALE, y[..., 2:]
    if ab_cls is None:
        ab_cls = annealed_mean(probs, centers, temperature)
    c = mix_confidence(probs) if confidence is None else np.asarray(confidence, np.float32)
    if c.shape != probs.shape[:-1] + (1,):
        raise ValueError(f"confidence must have shape {probs.shape[:-1] + (1,)} (mix_confidence of these outputs), "
                         f"got {c.shape}")
    w = np.clip(mix * c, 0.0, 1.0)
    ab = ab_reg + w * (ab_cls - ab_reg)
    if chroma_min > 0:
        c = c * (np.linalg.norm(ab, axis=-1, keepdims=True) > chroma_min)
    return ab * (1.0 + gain * c)

# ----------------------------------------------------------------------------- ab bins

AB_GRID = 10.0  # ab bin size (Zhang et al. 2016)


def gamut_bins(grid=AB_GRID):
    """Centres (Q, 2), in ab units, of the grid bins that some sRGB colour falls in."""
    v = np.linspace(0, 1, 64, dtype=np.float32)
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(1, -1, 3)
    ab = rgb_to_lab(cube)[0, :, 1:]
    return np.unique(np.round(ab / grid), axis=0).astype(np.float32) * grid


def ab_bin_stats(ab, grid=AB_GRID):
    """From training ab values (..., 2) in ab units: (centres (Q, 2) of the occupied grid bins,
    their empirical probabilities (Q,))."""
    q = np.round(np.asarray(ab, np.float32).reshape(-1, 2) / grid).astype(np.int32)
    keys, counts = np.unique(q, axis=0, return_counts=True)
    return keys.astype(np.float32) * grid, counts / counts.sum()


def bin_kwargs(images):
    """The builder arguments of the bin colorizers computed from training images: the centres of
    the ab bins they occupy and their empirical prior."""
    centers, prior = ab_bin_stats(rgb_to_lab(images)[..., 1:])
    return {"centers": centers, "prior": prior}
