"""Colour science: value ranges, grayscale, CIE Lab, and the fast full-resolution Lab of photos.

Value ranges used everywhere in the project:

- stored images: uint8 RGB `(N, H, W, 3)` in [0, 255];
- `rgb`  (autoencoder input/output, colorizer_1/2 output): float32 in [0, 1];
- `gray` (colorizer_1/2 input): float32 `(..., H, W, 1)` in [0, 1], ITU-R BT.601 luma;
- `L`    (Lab models' input): float32 `(..., H, W, 1)`, CIE L* / 50 - 1, in [-1, 1];
- `ab`   (Lab models' output): float32 `(..., H, W, 2)`, CIE a*, b* / 110, about [-1, 1].

Lab is CIE L*a*b* under D65 as computed by `skimage.color.rgb2lab`.
"""

import warnings

import numpy as np
from PIL import Image

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
L_SCALE, AB_SCALE = 50.0, 110.0

# -----------------------------------------------------------------------------
# Conversions

def to_float(images):
    """uint8 [0,255] -> float32 [0,1]; float input is taken to be in [0,1] already."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def to_uint8(images):
    """float [0,1] -> uint8 [0,255], rounded and clipped."""
    return np.clip(np.asarray(images, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_grayscale(images):
    """RGB `(..., H, W, 3)` (uint8 or float in [0,1]) -> float32 `(..., H, W, 1)` in [0,1], BT.601 luma."""
    rgb = to_float(images)
    if rgb.shape[-1] != 3:
        raise ValueError(f"to_grayscale expects RGB images with 3 channels, got shape {rgb.shape}")
    return (rgb @ np.asarray(LUMA_WEIGHTS, np.float32))[..., None].astype(np.float32)


def rgb_to_lab(images):
    """RGB `(..., 3)` (uint8 or float in [0,1]) -> float32 CIE Lab (L in [0,100], a,b about ±110)."""
    from skimage.color import rgb2lab
    return rgb2lab(to_float(images)).astype(np.float32)


def lab_to_rgb(lab):
    """CIE Lab `(..., 3)` -> float32 RGB in [0,1]. Out-of-gamut colours are clipped (never NaN)."""
    from skimage.color import lab2rgb
    lab = np.nan_to_num(np.asarray(lab, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    lab[..., 1:] = np.clip(lab[..., 1:], -128, 127)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z before clipping it
        rgb = lab2rgb(lab)
    return np.clip(np.nan_to_num(rgb), 0, 1).astype(np.float32)


def scale_l(L):
    """CIE L* in [0,100] -> model input in [-1,1]."""
    return np.asarray(L, np.float32) / L_SCALE - 1.0


def unscale_l(x):
    return (np.asarray(x, np.float32) + 1.0) * L_SCALE


def scale_ab(ab):
    """CIE a*, b* -> model target, about [-1,1]."""
    return np.asarray(ab, np.float32) / AB_SCALE


def unscale_ab(x):
    return np.asarray(x, np.float32) * AB_SCALE



def as_rgb(images):
    """uint8 images `(N,H,W,3)`, gray ones `(N,H,W)` or `(N,H,W,1)` replicated to three channels."""
    images = np.asarray(images)
    if images.ndim == 3 or images.shape[-1] == 1:
        return np.repeat(images.reshape(images.shape[:3] + (1,)) if images.ndim == 3 else images, 3, axis=-1)
    return images

def hint_ab(colour):
    """A colour hint ('#rrggbb', a Matplotlib colour name, or an RGB triple in [0, 1]) -> its CIE
    (a*, b*); a ValueError naming it when it is not a colour."""
    from matplotlib.colors import to_rgb
    try:
        rgb = np.asarray(to_rgb(colour), np.float64)
        if not np.all(np.isfinite(rgb)):  # to_rgb lets a NaN through its range check
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError(f"hint colour {colour!r} is not a colour; use #rrggbb, a Matplotlib colour name "
                         f"(e.g. 'turquoise') or an RGB triple in [0, 1]") from None
    a, b = rgb_to_lab((rgb * 255 + 0.5).astype(np.uint8)[None, None, None])[0, 0, 0, 1:]
    return float(a), float(b)


def scale_chroma(rgb, saturation):
    """uint8 RGB with its CIE a*, b* multiplied by `saturation` (L* kept)."""
    lab = rgb_to_lab(rgb)
    lab[..., 1:] *= saturation
    return to_uint8(lab_to_rgb(lab))


# -----------------------------------------------------------------------------
# Full-resolution photos: the same CIE Lab (D65, sRGB) as skimage.color, in float32 with lookup
# tables for the sRGB curves (skimage, in float64 without tables, is many times slower on a large photo).

_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]], np.float32)  # skimage's sRGB matrix
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB).astype(np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)
_c = np.arange(256) / 255.0
_LINEAR = np.where(_c > 0.04045, ((_c + 0.055) / 1.055) ** 2.4, _c / 12.92).astype(np.float32)  # uint8 -> linear
_LUT_SIZE = 65536
_l = np.linspace(0, 1, _LUT_SIZE)
_ENCODE = np.clip(255 * np.where(_l > 0.0031308, 1.055 * _l ** (1 / 2.4) - 0.055, 12.92 * _l) + 0.5, 0, 255).astype(np.uint8)


def resize_batch(images, height, width):
    """uint8 RGB images (N, H, W, 3) resized to (N, height, width, 3) as colorize.py does: area
    averaging (BOX) when shrinking, bicubic when enlarging."""
    images = np.asarray(images)
    method = Image.Resampling.BOX if width < images.shape[2] else Image.Resampling.BICUBIC
    gray = images.ndim == 3 or images.shape[-1] == 1  # (N, H, W) or (N, H, W, 1): resized as one channel
    out = np.stack([np.asarray(Image.fromarray(im.reshape(im.shape[:2]) if gray else im).resize((width, height), method))
                    for im in images])
    return out[..., None] if gray and images.ndim == 4 else out


def recombine_full(images, ab_small, tile=1 << 20):
    """Full-resolution uint8 RGB (or gray) photos (N, H, W, 3) + chroma a*, b* predicted at a small size
    (N, h, w, 2) -> uint8 RGB (N, H, W, 3): the chroma upsampled bilinearly (it is smooth) and
    recombined with each photo's own full-resolution L*, one tile of at most `tile` pixels at a time
    (stripes of rows, cut into columns too when a row is long), so the working memory beyond the
    input and output photos does not grow with their size or shape."""
    images = as_rgb(images)
    out = np.empty_like(images)
    for i in range(len(images)):
        for (r, c), rgb in recombine_tiles(images[i], ab_small[i], tile):
            out[i, r:r + rgb.shape[0], c:c + rgb.shape[1]] = rgb
    return out


def recombine_tiles(photo, ab_small, tile=1 << 20):
    """recombine_full for one photo (H, W, 3) or gray (H, W, 1) and its chroma (h, w, 2), a tile at a time: yields
    ((row, col), uint8 RGB tile), so that a caller can write the tiles where it wants (a Pillow
    image for colorize.py: the full-size result then exists once, not twice)."""
    H, W = photo.shape[:2]
    rows = max(1, min(H, tile // W))
    cols = max(1, min(W, tile // rows))
    planes = [Image.fromarray(np.ascontiguousarray(ab_small[..., k], np.float32)) for k in range(2)]
    h, w = planes[0].height, planes[0].width
    for r in range(0, H, rows):
        r1 = min(H, r + rows)
        for c in range(0, W, cols):
            c1 = min(W, c + cols)
            box = (c * w / W, r * h / H, c1 * w / W, r1 * h / H)  # this tile in the small image
            ab = np.stack([np.asarray(p.resize((c1 - c, r1 - r), Image.Resampling.BILINEAR, box=box))
                           for p in planes], -1)
            yield (r, c), photo_lab_to_rgb(photo_L(as_rgb(photo[None, r:r1, c:c1])[0]), ab)


def photo_L(rgb):
    """CIE L* (float32, [0,100]) of a uint8 RGB photo `(H, W, 3)` of any size (only luminance is needed)."""
    lin = _LINEAR[np.asarray(rgb)]
    y = lin @ _XYZ_FROM_RGB[1]
    return np.where(y > 0.008856, 116 * np.cbrt(y) - 16, 903.3 * y).astype(np.float32)


def photo_lab_to_rgb(L, ab):
    """float32 L* `(H, W)` and a*, b* `(H, W, 2)` -> uint8 RGB `(H, W, 3)`, out-of-gamut clipped
    (matches skimage.color.lab2rgb within one level)."""
    fy = (np.asarray(L, np.float32) + 16) / 116
    ab = np.asarray(ab, np.float32)
    f = np.stack([fy + ab[..., 0] / 500, fy, np.maximum(fy - ab[..., 1] / 200, 0)], axis=-1)  # skimage clips fz
    xyz = np.where(f > 0.2068966, f ** 3, (f - 16 / 116) / 7.787) * _WHITE_D65
    lin = np.clip(xyz @ _RGB_FROM_XYZ.T, 0, 1)
    return _ENCODE[(lin * (_LUT_SIZE - 1) + 0.5).astype(np.int32)]
