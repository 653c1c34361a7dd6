"""Inference: a trained colorizer with its I/O contract, run on photos of any size.

    colorizer = Colorizer.load()                        # the default, landscapes/colorizer_6
    colorizer.colorize_image(PIL.Image.open("photo.jpg")).save("photo_color.png")
    rgb = colorizer.predict_rgb(uint8_images)           # at the images' own size
    big = colorizer.at(480, 640)                        # the model rebuilt for 480x640 inputs (cached)

A photo keeps its own full-resolution luminance (CIE L*); the model predicts the chroma (a*, b*)
at a small working size (never more than MAX_MODEL_PIXELS), which is upsampled and recombined with
that L* a stripe of rows at a time. colorize.py is the command line over this class.
"""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import numpy as np
from PIL import Image

import data
import models
import store

DEFAULT_MODEL = "landscapes/colorizer_6"  # the best landscape colorizer (README, Landscapes)
MAX_WORKING_SIZE = 1024          # a working size (short side) above this is refused
MAX_MODEL_PIXELS = 512 * 512     # the model never runs on more pixels than this, whatever the photo's shape
MAX_PHOTO_PIXELS = 200_000_000  # larger photos are refused: memory grows with the photo (README, Performance)
MAX_SIZES = 8                    # rebuilt sizes kept per colorizer: a folder of same-sized photos builds one once


def check_working_size(working_size):
    """None, or a whole number of pixels from 1 to MAX_WORKING_SIZE; else a ValueError naming it."""
    if working_size is None:
        return None
    if not isinstance(working_size, (int, np.integer)) or not 1 <= working_size <= MAX_WORKING_SIZE:
        raise ValueError(f"working size must be a whole number of pixels from 1 to {MAX_WORKING_SIZE}, "
                         f"got {working_size!r}")
    return int(working_size)


class PhotoTooLarge(ValueError):
    pass


def check_photo_size(width, height):
    """A PhotoTooLarge error naming the size when a photo has more than MAX_PHOTO_PIXELS pixels."""
    if width * height > MAX_PHOTO_PIXELS:
        raise PhotoTooLarge(f"a {width}x{height} photo ({width * height:,} pixels) is larger than the "
                            f"{MAX_PHOTO_PIXELS:,} pixels colorized at most (memory grows with the photo)")


class Colorizer:
    """A trained colorizer (a Keras model of a registered colorizer), its registry entry and codec."""

    def __init__(self, model):
        self.model, self.spec, self.codec = model, models.spec(model.name), models.codec(model)
        if self.spec.kind != "colorizer":
            raise ValueError(f"'{model.name}' is an {self.spec.kind}, not a colorizer")
        self._sized = {}  # (h, w) -> the model rebuilt for that input size

    @classmethod
    def load(cls, name_or_path=DEFAULT_MODEL, models_dir=store.MODELS_DIR):
        """`colorizer_3` (CIFAR-10), `landscapes/colorizer_6` (dataset/name) or a `.keras` path."""
        return cls(store.load(name_or_path, models_dir, kind="colorizer"))

    @classmethod
    def of(cls, model_or_colorizer):
        return model_or_colorizer if isinstance(model_or_colorizer, cls) else cls(model_or_colorizer)

    @property
    def name(self):
        return self.model.name

    def at(self, height, width):
        """The model rebuilt for `height` x `width` inputs (models.at_size), kept for the next photo."""
        key = (int(height), int(width))
        if key not in self._sized:
            if len(self._sized) >= MAX_SIZES:
                self._sized.pop(next(iter(self._sized)))
            self._sized[key] = models.at_size(self.model, *key)
        return self._sized[key]

    def working_shape(self, height, width, working_size=None):
        """(h, w) the model runs at for a `height` x `width` photo: the short side is `working_size`
        (default: the trained size), the aspect ratio kept and rounded to the model's stride, and at
        most MAX_MODEL_PIXELS in all (a very long strip is shrunk further, so memory stays bounded);
        a fixed-size model runs at its size."""
        trained, stride = tuple(self.model.input_shape[1:3]), self.spec.stride
        working_size = check_working_size(working_size)
        if stride is None:
            if working_size not in (None, min(trained)):
                raise ValueError(f"{self.name} has a fixed input size {trained[0]}x{trained[1]}; "
                                 f"--working-size {working_size} is not possible")
            return trained
        scale = (working_size or min(trained)) / min(height, width)
        scale = min(scale, (MAX_MODEL_PIXELS / (height * width)) ** 0.5)
        h, w = (max(stride, int(round(v * scale / stride)) * stride) for v in (height, width))
        if h * w > MAX_MODEL_PIXELS:  # a strip a few pixels wide: rounding up its short side to the stride
            if h >= w:
                h = max(stride, MAX_MODEL_PIXELS // w // stride * stride)
            else:
                w = max(stride, MAX_MODEL_PIXELS // h // stride * stride)
        return h, w

    def predict_rgb(self, images, saturation=1.0, batch_size=256):
        """uint8 RGB (or gray) images -> uint8 RGB at their own size (a multiple of the stride), the
        model run directly on them (models.predict_rgb on the model rebuilt for that size)."""
        h, w = np.asarray(images).shape[1:3]
        return models.predict_rgb(self.at(h, w), images, batch_size, saturation)

    def colorize_array(self, images, working_size=None, saturation=1.0):
        """Colorize uint8 RGB (or gray) photos `(N, H, W, 3)` of one size -> uint8 RGB of the same
        shape: each photo's own full-resolution L* is kept; the model predicts a*, b* at the
        working size (`working_shape`), which are upsampled bilinearly and recombined with that L*."""
        saturation = models.check_saturation(saturation)
        images = data.as_rgb(images)
        h, w = self.working_shape(*images.shape[1:3], working_size)
        ab = models.predict_ab(self.at(h, w), data.resize_batch(images, h, w), codec_=self.codec) * saturation
        return data.recombine_full(images, ab)

    def colorize_image(self, pil_image, working_size=None, saturation=1.0):
        """Colorize one Pillow image (any mode, any size) -> RGB (or RGBA when it had alpha) image of
        the same width and height. `saturation` multiplies the predicted chroma (1: as trained)."""
        return self.colorize_photo(*read_photo(pil_image), working_size, saturation)

    def colorize_photo(self, rgb, alpha=None, working_size=None, saturation=1.0):
        """`read_photo`'s uint8 RGB array (and alpha) -> the colorized Pillow image."""
        out = Image.fromarray(self.colorize_array(rgb[None], working_size, saturation)[0])
        if alpha is not None:
            out.putalpha(alpha)
        return out


def read_photo(pil_image):
    """A Pillow image (any mode; decoded here, so anything Pillow raises on a malformed file is
    raised here) -> (upright uint8 RGB array (H, W, 3), its alpha channel as a Pillow image or None)."""
    check_photo_size(*pil_image.size)
    img = data.upright(pil_image)
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
    return np.asarray(data.pil_to_rgb(img)), alpha
