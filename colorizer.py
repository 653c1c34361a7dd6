"""Inference: any trained model through its codec, and a trained colorizer run on photos of any size.

    rgb = predict_rgb(model, uint8_images)              # any registered model, at the images' size
    colorizer = Colorizer.load()                        # the default, landscapes/colorizer_6
    colorizer.colorize_image(PIL.Image.open("photo.jpg")).save("photo_color.png")
    rgb = colorizer.predict_rgb(uint8_images)           # at the images' own size
    model = colorizer.at(480, 640)                      # the model that runs on 480x640 inputs

A photo keeps its own full-resolution luminance (CIE L*); the model predicts the chroma (a*, b*)
at a small working size (never more than MAX_MODEL_PIXELS), which is upsampled and recombined with
that L* a stripe of rows at a time. colorize.py, the notebooks, evaluation.py and calibration.py
all colorize through here (`predict`: encode, run, decode; `Colorizer.colorize_array` adds the
working size and the photo's own L*). colorize.py is the command line over this class.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import os

import numpy as np
from PIL import Image

import colour
import models
import store
from heads import ABBins, ABMix
from photos import MAX_PHOTO_PIXELS, PhotoTooLarge, image_batch, read_photo  # noqa: F401  (the photo side of the API)

DEFAULT_MODEL = "landscapes/colorizer_6"  # the best landscape colorizer (README, Landscapes)
MAX_WORKING_SIZE = 1024          # a working size (short side) above this is refused
MAX_MODEL_PIXELS = 512 * 512     # the model never runs on more pixels than this, whatever the photo's shape
STRIP_FACTOR = 4                 # nor on more than this many times working_size² (a long strip's share)
MAX_SIZES = 8                    # rebuilt sizes kept per colorizer (a model that cannot run at any size)


COLORIZERS = models.list_models("colorizer")  # the registry is complete once models.py is imported


def check_working_size(working_size):
    """None, or a whole number of pixels from 1 to MAX_WORKING_SIZE; else a ValueError naming it."""
    if working_size is None:
        return None
    if not isinstance(working_size, (int, np.integer)) or not 1 <= working_size <= MAX_WORKING_SIZE:
        raise ValueError(f"working size must be a whole number of pixels from 1 to {MAX_WORKING_SIZE}, "
                         f"got {working_size!r}")
    return int(working_size)


# ----------------------------------------------------------------------------- inference on a Keras model


def bin_layer(model):
    """The ABBins/ABMix layer of a model with bin outputs: it holds the centres and decoding settings."""
    for layer in model.layers:
        if isinstance(layer, (ABBins, ABMix)):
            return layer
    raise ValueError(f"Model '{model.name}' returns ab bins but has no ABBins/ABMix layer to decode them")


def decode_settings(model):
    """What a model with bin outputs decodes with, read from its ABBins/ABMix layer, named as its
    builder and its codec take them: {"centers"} (+ mix, temperature, gain, chroma_min for ab_mix); {} otherwise."""
    outputs = models.MODELS[model.name].contract.outputs
    if outputs not in ("ab_bins", "ab_mix"):
        return {}
    layer = bin_layer(model)
    if outputs == "ab_bins":
        return {"centers": layer.centers}
    return {"centers": layer.centers, "mix": layer.mix, "temperature": layer.temperature, "gain": layer.gain,
            "chroma_min": layer.chroma_min}


def codec(model):
    """The codec of a built or trained model: its contract's (contracts.py), with the bin centres
    and decoding settings read from its ABBins/ABMix layer. Encoding and decoding go through it."""
    return models.MODELS[model.name].contract.codec(**decode_settings(model))


def check_stride(model, height, width):
    """A ValueError naming the size when `height` x `width` is not a multiple of the model's stride."""
    stride = models.MODELS[model.name].stride
    if height % stride or width % stride:
        raise ValueError(f"Model '{model.name}' needs height and width divisible by {stride}, got {height}x{width}")


def at_size(model, height, width):
    """The same trained model rebuilt for inputs of `height` x `width` (fully convolutional
    models only; height and width must be multiples of the model's stride)."""
    spec = models.MODELS[model.name]
    if tuple(model.input_shape[1:3]) == (height, width):
        return model
    if spec.stride is None:
        raise ValueError(f"Model '{model.name}' has a fixed input size {model.input_shape[1:3]}; "
                         f"it cannot run at {height}x{width}")
    check_stride(model, height, width)
    # its own config first: a model saved under an older architecture of its builder keeps its own
    resized = store.resized(model, height, width)
    if resized is None:  # not functional (Pix2Pix), or nested: its builder, which decodes like the original
        resized = spec.builder(input_shape=(height, width, model.input_shape[-1]), **decode_settings(model))
        resized.set_weights(model.get_weights())
    return resized


CHUNK_PIXELS = 2 ** 18  # images are predicted this many pixels at a time: a colour-bin model's Q
                        # probabilities per pixel never exist for a whole test set at once


def predict(model, images, decode="ab", batch_size=256, codec_=None, size=None, saturation=1.0, hints=None,
            forward=None, flip=False):
    """Encode uint8 RGB or gray images for `model` (its codec, or `codec_`; resized to `size` = (h, w)
    first if given), run it, and decode its outputs CHUNK_PIXELS at a time: `decode` "ab" (chroma in
    ab units), "rgb" (uint8 RGB, chroma times `saturation`) or None (the raw outputs). `hints`: one
    list per image of (row, col, a, b) at the model's size, for a model with the L+hints contract.
    `forward`: the model's compiled any-size forward pass (store.load(any_size=True)), run instead
    of the model itself. `flip`: test-time augmentation, the outputs averaged with the mirror
    image's (mirrored back) before decoding: twice the model's time, a little more accurate."""
    if decode not in ("ab", "rgb", None):
        raise ValueError(f"Unknown decoding {decode!r}; choose one of: 'ab', 'rgb', None")
    check_takes_hints(model, hints)
    images = np.asarray(images)
    chunk = max(1, CHUNK_PIXELS // (2 if flip else 1) // int(np.prod(size or images.shape[1:3])))  # flip: 2 outputs
    codec_ = codec_ or codec(model)  # built here, just before encoding: one pass through contracts.py
    out = []
    for i in range(0, len(images), chunk):
        x = codec_.encode(images[i:i + chunk], size, **({} if hints is None else {"hints": hints[i:i + chunk]}))
        ys = []  # the outputs for x and, with flip, for its mirror image (hint maps flip with it)
        for xi in (x, np.ascontiguousarray(x[:, :, ::-1])) if flip else (x,):
            if forward is not None:  # a chunk is small enough to run at once (CHUNK_PIXELS)
                ys.append(np.asarray(forward(xi.astype(np.float32, copy=False))))
            else:  # one small batch (a photo): a direct call skips predict()'s per-call setup
                ys.append(np.asarray(model(xi, training=False)) if len(xi) <= batch_size else
                          model.predict(xi, batch_size=batch_size, verbose=0))
        # raw outputs averaged, the mirror's mirrored back: a class head's probabilities stay a distribution
        y = (ys[0] + ys[1][:, :, ::-1]) / 2 if flip else ys[0]
        out.append(y if decode is None else codec_.chroma(y, x) if decode == "ab" else codec_.decode(y, x, saturation))
    return np.concatenate(out)


def predict_ab(model, images, batch_size=256, codec_=None, size=None, hints=None, forward=None, flip=False):
    """Chroma a colorizer predicts for uint8 RGB or gray images (resized to `size` first if given):
    CIE ab `(N,h,w,2)` in ab units, whatever its contract (RGB outputs are converted to Lab)."""
    return predict(model, images, "ab", batch_size, codec_, size, hints=hints, forward=forward, flip=flip)


HINT_CONTRACT = "L+hints"


class HintError(ValueError):
    """A colour hint that cannot apply (outside the photo, not a colour, not a hint model)."""


class WorkingSizeError(ValueError):
    """A working size the model cannot run at (a fixed-size model): the command's mistake, not a photo's."""


def check_takes_hints(model, hints):
    """A ValueError naming the model and its contract when hints are given to a model without hints."""
    spec = models.MODELS[model.name]
    if hints is not None and any(hints) and spec.inputs != HINT_CONTRACT:
        takers = [n for n, s in models.MODELS.items() if s.inputs == HINT_CONTRACT]
        # the published ones by the name -m finds them under (landscapes/colorizer_7), not only the builder's
        shipped = [s for n in takers for s in store.published(n)]
        raise HintError(f"{model.name} does not take colour hints (its contract is {spec.inputs} -> {spec.outputs}); "
                        f"use a model with the {HINT_CONTRACT} contract: {', '.join(takers)}"
                        + (f" (published: {', '.join(f'-m {s}' for s in shipped)})" if shipped else ""))


def model_hints(hints, height, width, h, w):
    """User hints [(x, y, colour)] on a `height` x `width` photo (x, y: its own pixels from the top
    left; colour: '#rrggbb', a Matplotlib colour name or an RGB triple in [0, 1]) -> [(row, col, a,
    b)] at the model's `h` x `w`; a ValueError naming any hint outside the photo or any non-colour."""
    out = []
    for hint in hints or []:
        try:
            x, y, colour_ = hint
        except (TypeError, ValueError):
            raise HintError(f"a hint is (x, y, colour), got {hint!r}") from None
        if not all(isinstance(v, (int, np.integer)) for v in (x, y)) or not (0 <= x < width and 0 <= y < height):
            raise HintError(f"hint at x={x!r}, y={y!r} is outside the {width}x{height} photo (x from 0 to "
                             f"{width - 1}, y from 0 to {height - 1}, whole pixels)")
        try:
            a, b = colour.hint_ab(colour_)
        except ValueError as e:
            raise HintError(str(e)) from None
        out.append((int((y + 0.5) * h / height), int((x + 0.5) * w / width), a, b))
    return out


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


def predict_rgb(model, images, batch_size=256, saturation=1.0, forward=None, flip=False):
    """uint8 RGB `(N,H,W,3)` or gray `(N,H,W[,1])` images -> uint8 RGB `(N,H,W,3)` from any
    registered autoencoder or colorizer, through its codec (input conversion, Lab scaling, bin
    decoding, recombination with the input's own L). `saturation` multiplies the predicted
    chroma (a*, b*) at decoding time: 1 is the model as trained, above 1 more vivid, 0 gray.
    `forward`, `flip`: see `predict`."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"predict_rgb expects uint8 images in [0, 255], got dtype {images.dtype}")
    saturation = check_saturation(saturation)
    return predict(model, images, "rgb", batch_size, saturation=saturation, forward=forward, flip=flip)


class Colorizer:
    """A trained colorizer (a Keras model of a registered colorizer) and its registry entry.

    `model`: a Keras model, or a saved one's name or path (`load`), loaded here with its any-size
    `runner` and compiled `forward` pass (store.load(any_size=True)); a model given without them is
    rebuilt for each new input size (`at`). `tta`: each prediction averaged with the mirror image's
    (`predict`'s `flip`; README, Colorize your own photos)."""

    def __init__(self, model=DEFAULT_MODEL, runner=None, forward=None, models_dir=store.MODELS_DIR, tta=False):
        if isinstance(model, (str, os.PathLike)):
            model, runner, forward = store.load(model, models_dir, family="colorizer", any_size=True)
        self.model, self.spec = model, models.MODELS[model.name]
        if self.spec.family != "colorizer":
            raise ValueError(f"'{model.name}' is an {self.spec.family}, not a colorizer")
        self.trained_size = tuple(model.input_shape[1:3])
        self.runner, self.forward = runner, forward
        if not isinstance(tta, bool):
            raise ValueError(f"tta must be True or False, got {tta!r}")
        self.tta = tta
        self._sized = {}  # (h, w) -> the model rebuilt for that input size, when there is no runner

    @classmethod
    def load(cls, name_or_path=DEFAULT_MODEL, models_dir=store.MODELS_DIR, tta=False):
        """`colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or a `.keras` path."""
        return cls(name_or_path, models_dir=models_dir, tta=tta)

    @classmethod
    def of(cls, model_or_colorizer):
        return model_or_colorizer if isinstance(model_or_colorizer, cls) else cls(model_or_colorizer)

    @property
    def name(self):
        return self.model.name

    def at(self, height, width):
        """The model for `height` x `width` inputs: the any-size runner, else the model rebuilt for
        that size (at_size), kept for the next photo."""
        if self.runner is not None and self.trained_size != (height, width):
            check_stride(self.model, height, width)
            return self.runner
        key = (int(height), int(width))
        if key not in self._sized:
            if len(self._sized) >= MAX_SIZES:
                self._sized.pop(next(iter(self._sized)))
            self._sized[key] = at_size(self.model, *key)
        return self._sized[key]

    def runs_at(self, height, width):
        """(model, forward) that `predict` runs `height` x `width` inputs with: the model and its
        compiled any-size forward pass when loaded with one, else the model for that size (`at`)."""
        if self.forward is None:
            return self.at(height, width), None
        check_stride(self.model, height, width)
        return self.model, self.forward

    def working_shape(self, height, width, working_size=None):
        """(h, w) the model runs at for a `height` x `width` photo: the short side is `working_size`
        (default: the trained size), the aspect ratio kept and rounded to the model's stride, and at
        most MAX_MODEL_PIXELS in all, nor more than STRIP_FACTOR x working size² (a very long strip
        is shrunk further: the model's memory grows with its pixels, and chroma is smooth along a
        strip); a fixed-size model runs at its size."""
        trained, stride = self.trained_size, self.spec.stride
        working_size = check_working_size(working_size)
        if stride is None:
            if working_size not in (None, min(trained)):
                raise WorkingSizeError(f"{self.name} has a fixed input size {trained[0]}x{trained[1]}; "
                                       f"--working-size {working_size} is not possible")
            return trained
        short = working_size or min(trained)
        cap = min(MAX_MODEL_PIXELS, STRIP_FACTOR * short * short)
        scale = min(short / min(height, width), (cap / (height * width)) ** 0.5)
        h, w = (max(stride, int(round(v * scale / stride)) * stride) for v in (height, width))
        if h * w > cap:  # a strip a few pixels wide: rounding up its short side to the stride
            if h >= w:
                h = max(stride, cap // w // stride * stride)
            else:
                w = max(stride, cap // h // stride * stride)
        return h, w

    def predict_rgb(self, images, saturation=1.0, batch_size=256):
        """uint8 RGB (or gray) images -> uint8 RGB at their own size (a multiple of the stride), the
        model run directly on them (predict_rgb, through `runs_at`)."""
        h, w = np.asarray(images).shape[1:3]
        model, forward = self.runs_at(h, w)
        return predict_rgb(model, images, batch_size, saturation, forward, self.tta)

    def colorize_array(self, images, working_size=None, saturation=1.0, hints=None):
        """Colorize one photo `(H, W)` / `(H, W, C)` or a batch of one size `(N, H, W, C)`, C = 1
        (gray), 3 (RGB) or 4 (RGBA: alpha kept), uint8 or float in [0, 1] (photos.image_batch) ->
        uint8 RGB (RGBA) of the same form: each photo's own full-resolution L* is kept; the model
        predicts a*, b* at the working size (`working_shape`), upsampled and recombined with that L*.
        `hints` (a model with the L+hints contract): [(x, y, colour)] for one photo, or one such
        list per photo of a batch (model_hints)."""
        images, alpha, single = image_batch(images)
        ab = self.chroma(images, working_size, saturation, [hints] if single and hints is not None else hints)
        out = colour.recombine_full(images, ab)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=-1)
        return out[0] if single else out

    def chroma(self, images, working_size=None, saturation=1.0, hints=None):
        """The a*, b* the model predicts for a uint8 batch (N, H, W, 1 or 3) at the working size,
        times `saturation`; `hints`: one list of (x, y, colour) per photo, or None."""
        saturation = check_saturation(saturation)
        H, W = images.shape[1:3]
        h, w = self.working_shape(H, W, working_size)
        if hints is not None:
            check_takes_hints(self.model, hints)
            hints = [model_hints(p, H, W, h, w) for p in hints]
        model, forward = self.runs_at(h, w)
        # down through the modules once: resize and encode (contracts, colour), run, decode
        return predict_ab(model, images, size=(h, w), hints=hints, forward=forward, flip=self.tta) * saturation

    def colorize_image(self, pil_image, working_size=None, saturation=1.0, hints=None):
        """Colorize one Pillow image (any mode, any size) -> RGB (or RGBA when it had alpha) image of
        the same width and height. `saturation` multiplies the predicted chroma (1: as trained);
        `hints` [(x, y, colour)] guide a hint model (colorizer_7)."""
        return self.colorize_photo(*read_photo(pil_image), working_size, saturation, hints)

    def colorize_photo(self, rgb, alpha=None, working_size=None, saturation=1.0, hints=None):
        """`read_photo`'s uint8 RGB array (and alpha) -> the colorized Pillow image, recombined tile
        by tile straight into it (the full-size result exists once: colorize.py's memory)."""
        images = np.asarray(rgb)[None]  # read_photo's (H, W, 1 or 3) uint8 photo, as a batch of one
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
            raise ValueError(f"colorize_photo takes read_photo's uint8 (H, W, 1) or (H, W, 3) array, got shape "
                             f"{np.shape(rgb)} ({images.dtype}); colorize_array takes the other forms")
        ab = self.chroma(images, working_size, saturation, None if hints is None else [hints])
        out = Image.new("RGB", (images.shape[2], images.shape[1]))
        for (r, c), tile in colour.recombine_tiles(images[0], ab[0]):
            out.paste(Image.fromarray(tile), (c, r))
        if alpha is not None:
            out.putalpha(alpha)
        return out
