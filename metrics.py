"""Colorization metrics and baselines: uint8 RGB `(N, H, W, 3)` in, floats out.

Each metric is averaged over images (per-image value first), so a few bad images weigh what
they weigh in the test set. `evaluate(pred, true)` returns them all. Each metric is registered
once (`register(Metric(...))`): `evaluate`, the per-image scores, the accuracy rule and the tables
of evaluation.py are built from METRICS.
"""

import dataclasses
from typing import Callable, Optional

import numpy as np

import colour

MSE_FLOOR = 1e-10  # identical images (MSE 0) score 10·log10(255² / 1e-10) = 148.1 dB, not inf
PSNR_CAP = 10 * np.log10(255.0 ** 2 / MSE_FLOOR)


def _validate(pred, true):
    if pred.shape != true.shape or pred.ndim != 4 or pred.shape[-1] != 3:
        raise ValueError(f"Expected two uint8 RGB batches (N,H,W,3) of one shape, got {pred.shape} and {true.shape}")
    if pred.dtype != np.uint8 or true.dtype != np.uint8:
        raise ValueError(f"Expected uint8 images in [0, 255], got {pred.dtype} and {true.dtype}")


def _check(pred, true):
    pred, true = np.asarray(pred), np.asarray(true)
    _validate(pred, true)
    return pred.astype(np.float64), true.astype(np.float64)


def psnr_per_image(pred, true):
    """PSNR of each image on RGB 0-255, 10·log10(255² / MSE), MSE floored at 1e-10 (see `psnr`)."""
    return _psnr(*_check(pred, true))


def _psnr(p, t):
    mse = ((p - t) ** 2).mean(axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, MSE_FLOOR))


def psnr(pred, true):
    """Peak signal-to-noise ratio on RGB 0-255, 10·log10(255² / MSE) per image, mean over images.
    MSE is floored at 1e-10, so an identical image scores 148.1 dB instead of inf (CIFAR-10's
    test set has 113 images that are gray already, which the `gray` baseline gets exactly)."""
    return float(psnr_per_image(pred, true).mean())


def is_gray(images):
    """Per image: True where every pixel has R == G == B (a photo that was gray already)."""
    x = np.asarray(images)
    return np.all((x[..., 0] == x[..., 1]) & (x[..., 1] == x[..., 2]), axis=(1, 2))


def psnr_colour_images(pred, true):
    """`psnr` over the images of `true` that have colour (not `is_gray`). The `gray` baseline
    reproduces an already-gray image exactly (148.1 dB): CIFAR-10's 113 such test images (1.1 %)
    add 1.4 dB to its mean PSNR that no colorizer, which cannot tell them apart from their gray
    input, can earn; this column shows the comparison without them. NaN if every image is gray."""
    keep = ~is_gray(true)
    if not keep.any():
        return float("nan")
    return float(psnr_per_image(np.asarray(pred)[keep], np.asarray(true)[keep]).mean())


SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5  # Wang et al.'s 11-tap Gaussian window, as skimage sets it
SSIM_PAD = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # its radius: the border strip left out of the mean
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim_per_image(pred, true):
    """`ssim` of each image."""
    return _ssim(*_check(pred, true))


def _window(x):
    """skimage's Gaussian window (`filters.gaussian`, mode reflect) over each image's rows and
    columns of a float64 batch (N, H, W, C): images and channels are filtered apart."""
    from scipy import ndimage
    return ndimage.gaussian_filter(x, sigma=(0, SSIM_SIGMA, SSIM_SIGMA, 0), truncate=SSIM_TRUNCATE, mode="reflect")


SCORE_CHUNK = 128  # images scored at once by per_image_scores (memory: their float copies and Lab)
SSIM_CHUNK_VALUES = 1 << 22  # values per chunk of `_ssim` (about ten float64 temporaries of 32 MB each)


def _chunk(shape):
    """Images per chunk of a batch of `shape` (N, H, W, C): at least one, SSIM_CHUNK_VALUES values."""
    return max(1, SSIM_CHUNK_VALUES // max(1, int(np.prod(shape[1:]))))


def _ssim(p, t, t_moments=None, chunk=None):
    """skimage.metrics.structural_similarity's formula with `ssim`'s settings, for a whole batch at
    once (its per-image, per-channel calls cost more than the filtering), `chunk` images at a time to
    bound the memory (default: `_chunk`); `t_moments` (the window means of t and t²,
    Reference.moments) when known."""
    if min(p.shape[1:3]) < 2 * SSIM_PAD + 1:
        raise ValueError(f"SSIM needs images of at least {2 * SSIM_PAD + 1}x{2 * SSIM_PAD + 1} pixels, got "
                         f"{p.shape[1]}x{p.shape[2]}")
    chunk, out = chunk or _chunk(p.shape), []
    for i in range(0, len(p), chunk):
        x, y = p[i:i + chunk], t[i:i + chunk]
        uy, uyy = _moments(y) if t_moments is None else (t_moments[0][i:i + chunk], t_moments[1][i:i + chunk])
        ux, uxx, uxy = _window(x), _window(x * x), _window(x * y)
        vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # population (co)variances
        s = ((2 * ux * uy + SSIM_C1) * (2 * vxy + SSIM_C2)) / ((ux ** 2 + uy ** 2 + SSIM_C1) * (vx + vy + SSIM_C2))
        r = SSIM_PAD
        out.append(s[:, r:-r, r:-r].mean(axis=(1, 2), dtype=np.float64).mean(axis=-1))
    return np.concatenate(out) if out else np.zeros(0)


def _moments(t):
    """SSIM's window means of t and t² (float64 batch), a chunk of images at a time."""
    mean, square = np.empty_like(t), np.empty_like(t)
    chunk = _chunk(t.shape)
    for i in range(0, len(t), chunk):
        mean[i:i + chunk], square[i:i + chunk] = _window(t[i:i + chunk]), _window(t[i:i + chunk] ** 2)
    return mean, square


def ssim(pred, true):
    """Structural similarity (Wang et al. 2004, IEEE TIP 13(4)): Gaussian window σ = 1.5,
    k1 = 0.01, k2 = 0.03, data range 255, population covariances, averaged over RGB channels and
    pixels, then over images (`skimage.metrics.structural_similarity`, whose settings match the
    paper's formula to the letter; `tf.image.ssim` drifts from it on flat regions)."""
    return float(np.mean(ssim_per_image(pred, true)))


def mae(pred, true):
    """Mean absolute error on RGB 0-255 (as Nazeri et al. 2018 report it on CIFAR-10)."""
    p, t = _check(pred, true)
    return float(np.abs(p - t).mean())


def lab_accuracy(pred, true, threshold=2):
    """Nazeri et al. 2018 ("Image Colorization using Generative Adversarial Networks") pixel
    accuracy: both images to CIE Lab, rounded; a pixel is right when |ΔL| ≤ t and |Δa|, |Δb| ≤ 2.2·t."""
    _check(pred, true)
    return float(_lab_pixels_right(colour.rgb_to_lab(pred), colour.rgb_to_lab(true), threshold).mean())


def _lab_pixels_right(lab_pred, lab_true, threshold):
    d = np.abs(np.round(lab_pred) - np.round(lab_true))
    return (d[..., 0] <= threshold) & (d[..., 1] <= 2.2 * threshold) & (d[..., 2] <= 2.2 * threshold)


def ab_auc(pred, true, max_threshold=150):
    """Zhang et al. 2016 ("Colorful Image Colorization") AuC: the share of pixels whose ab
    error (L2 in CIE ab) is within a threshold, averaged over thresholds 0, 1, ..., 150, i.e. the
    area under that cumulative curve normalised to [0, 1]."""
    _check(pred, true)
    err = _ab_error(colour.rgb_to_lab(pred), colour.rgb_to_lab(true)).ravel()
    thresholds = np.arange(max_threshold + 1)
    return float(np.searchsorted(np.sort(err), thresholds, side="right").mean() / err.size)


def _ab_error(lab_pred, lab_true):
    return np.linalg.norm(lab_pred[..., 1:] - lab_true[..., 1:], axis=-1)


def colorfulness(images):
    """Hasler & Süsstrunk 2003 ("Measuring colourfulness in natural images") M3 per image, mean
    over images: rg = R - G, yb = (R + G)/2 - B, M = sqrt(σ_rg² + σ_yb²) + 0.3·sqrt(μ_rg² + μ_yb²)."""
    x = np.asarray(images, np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    axes = tuple(range(1, rg.ndim))
    sigma = np.sqrt(rg.var(axis=axes) + yb.var(axis=axes))
    mu = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    return float((sigma + 0.3 * mu).mean())


# ----------------------------------------------------------------------------- the metric registry


class Reference:
    """Ground truths (a uint8 RGB batch (N, H, W, 3)) that many predictions are scored against, with
    what every scoring shares computed once: the float copy, CIE Lab, SSIM's window means of t and
    t². Calibration scores 30 decoding settings and gray against the same photos: recomputing these
    each time took about a sixth of its time (README, Performance). Score one prediction against it
    before threads share it: that fills what it holds."""

    def __init__(self, true):
        self.true = np.asarray(true)
        if self.true.ndim != 4 or self.true.shape[-1] != 3 or self.true.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 RGB batch (N,H,W,3) of ground truths, got {self.true.dtype} "
                             f"{self.true.shape}")
        self.t = self.true.astype(np.float64)
        self._lab = self._moments = None

    @property
    def lab(self):
        # plain lazy attributes, not functools.cached_property: on Python 3.11 its one lock per
        # property would make threads that score other predictions wait for each other
        if self._lab is None:
            self._lab = colour.rgb_to_lab(self.true)
        return self._lab

    @property
    def moments(self):
        if self._moments is None:
            self._moments = _moments(self.t)
        return self._moments

    def part(self, start, stop):
        """The Reference of images start:stop, sharing (views of) what this one holds."""
        part = Reference.__new__(Reference)
        part.true, part.t = self.true[start:stop], self.t[start:stop]
        part._lab, part._moments = self.lab[start:stop], tuple(m[start:stop] for m in self.moments)
        return part


class Pair:
    """Predictions and ground truths (uint8 RGB batches of one shape; the truths may be a
    Reference), with what several per-image metrics share (float copies, CIE Lab of both)
    computed once."""

    def __init__(self, pred, true):
        self.shared = isinstance(true, Reference)  # SSIM's moments of the truths are kept only then
        self.ref = true if self.shared else Reference(true)
        self.pred, self.true = np.asarray(pred), self.ref.true
        _validate(self.pred, self.true)
        self.p, self.t = self.pred.astype(np.float64), self.ref.t
        self._lab = None

    @property
    def lab(self):
        if self._lab is None:  # see Reference.lab
            self._lab = colour.rgb_to_lab(self.pred), self.ref.lab
        return self._lab

    @property
    def t_moments(self):
        return self.ref.moments if self.shared else None


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric of the tables: `name` (key of `evaluate`'s dict and CSV column), `heading` and `fmt`
    (Markdown table), `direction` (+1 higher is better, -1 lower is better, 0 neither), `pooled(pred,
    true)` -> float, and for a metric with a direction `per_image(pair)` -> (N,) scores whose mean is
    the pooled value (the bootstrap of `surely_beats` needs them). `in_evaluate`: False for a column
    of the tables that `evaluate` leaves out."""
    name: str
    heading: str
    fmt: str
    direction: int
    pooled: Callable
    per_image: Optional[Callable] = None
    in_evaluate: bool = True


METRICS = {}           # name -> Metric, in table order
ACCURACY_METRICS = {}  # name -> direction (+1: higher is better) of the metrics that have one


def register(metric):
    """Add a Metric to METRICS (and to ACCURACY_METRICS when it has a direction); a new metric is
    defined by this one call, and the tables, `evaluate` and the per-image scores follow."""
    if metric.direction and metric.per_image is None:
        raise ValueError(f"Metric '{metric.name}' has direction {metric.direction} but no per_image function")
    METRICS[metric.name] = metric
    if metric.direction:
        ACCURACY_METRICS[metric.name] = metric.direction
    return metric


def _auc_per_image(pair):
    # AuC per pixel: the share of the thresholds 0, 1, ..., 150 its ab error is within
    within = np.maximum(0, 151 - np.ceil(_ab_error(*pair.lab))) / 151
    return within.mean(axis=(1, 2))


for _metric in (
        Metric("psnr", "PSNR dB ↑", "{:.2f}", 1, psnr, lambda s: _psnr(s.p, s.t)),
        Metric("ssim", "SSIM ↑", "{:.3f}", 1, ssim, lambda s: _ssim(s.p, s.t, s.t_moments)),
        Metric("mae", "MAE ↓", "{:.2f}", -1, mae, lambda s: np.abs(s.p - s.t).mean(axis=(1, 2, 3))),
        Metric("acc2", "acc@2 ↑", "{:.3f}", 1, lambda p, t: lab_accuracy(p, t, 2),
               lambda s: _lab_pixels_right(*s.lab, 2).mean(axis=(1, 2))),
        Metric("auc", "AuC ↑", "{:.3f}", 1, ab_auc, _auc_per_image),
        Metric("colorfulness", "colorfulness", "{:.1f}", 0, lambda p, t: colorfulness(p)),
        Metric("gt_colorfulness", "GT colorfulness", "{:.1f}", 0, lambda p, t: colorfulness(t), in_evaluate=False),
        # DDColor's ΔCF: how far the colourfulness is from the originals' (0 is right; gray scores the originals')
        Metric("delta_cf", "ΔCF ↓", "{:.1f}", 0, lambda p, t: abs(colorfulness(p) - colorfulness(t)), in_evaluate=False),
        Metric("psnr_colour", "PSNR, colour images", "{:.2f}", 0, psnr_colour_images, in_evaluate=False)):
    register(_metric)


def evaluate(pred, true):
    """The metrics of `pred` against `true` (METRICS that are `in_evaluate`: psnr, ssim, mae, acc2
    (lab_accuracy t=2), auc, colorfulness, and any registered since)."""
    return {m.name: m.pooled(pred, true) for m in METRICS.values() if m.in_evaluate}


def table_scores(pred, true):
    """Every registered metric of `pred` against `true`: a row of the metrics tables."""
    return {m.name: m.pooled(pred, true) for m in METRICS.values()}


def beats(scores, reference):
    """True when `scores` (of `evaluate`) are better than `reference`'s on all five accuracy metrics."""
    return all(sign * (scores[k] - reference[k]) > 0 for k, sign in ACCURACY_METRICS.items())


def per_image_scores(pred, true):
    """The accuracy metrics of each image: {psnr, ssim, mae, acc2, auc: (N,) arrays}, whose means
    are `evaluate`'s values for images of one size (the pooled pixel shares of acc@2 and AuC are then
    the means of the per-image shares). `true`: the ground truths, or their Reference when several
    predictions are scored against them. The images are scored SCORE_CHUNK at a time (every score is
    per image), so the float copies and Lab of a large batch never exist at once."""
    pred = np.asarray(pred)
    if len(pred) <= SCORE_CHUNK:
        pair = Pair(pred, true)
        return {name: METRICS[name].per_image(pair) for name in ACCURACY_METRICS}
    ref = true if isinstance(true, Reference) else None
    true = np.asarray(true) if ref is None else ref.true
    _validate(pred, true)
    parts = [per_image_scores(pred[i:i + SCORE_CHUNK], true[i:i + SCORE_CHUNK] if ref is None
                              else ref.part(i, i + SCORE_CHUNK)) for i in range(0, len(pred), SCORE_CHUNK)]
    return {name: np.concatenate([part[name] for part in parts]) for name in ACCURACY_METRICS}


def surely_beats(scores, reference, confidence=0.95, resamples=1000, seed=0):
    """True when per-image `scores` (of `per_image_scores`) beat `reference`'s on all five metrics in
    at least `confidence` of `resamples` paired bootstrap resamples of the images: a win that does
    not hang on which photos happened to be in the sample."""
    idx = np.random.default_rng(seed).integers(0, len(scores["psnr"]), (resamples, len(scores["psnr"])))
    wins = np.ones(resamples, bool)
    for k, sign in ACCURACY_METRICS.items():
        diff = sign * (np.asarray(scores[k]) - np.asarray(reference[k]))
        wins &= diff[idx].mean(axis=1) > 0
    return bool(wins.mean() >= confidence)


def difference_intervals(scores, reference, confidence=0.95, resamples=1000, seed=0):
    """{metric: (mean difference, low, high)} of per-image `scores` minus `reference`'s (both of
    `per_image_scores`, on the same images) for each accuracy metric, with the `confidence` interval
    of the mean difference from a paired bootstrap over the images (percentiles of `resamples`)."""
    idx = np.random.default_rng(seed).integers(0, len(scores["psnr"]), (resamples, len(scores["psnr"])))
    tail = 100 * (1 - confidence) / 2
    out = {}
    for k in ACCURACY_METRICS:
        diff = np.asarray(scores[k], np.float64) - np.asarray(reference[k], np.float64)
        lo, hi = np.percentile(diff[idx].mean(axis=1), [tail, 100 - tail])
        out[k] = (float(diff.mean()), float(lo), float(hi))
    return out


def mean_scores(per_image, pred):
    """`evaluate`'s dict from per-image scores (images of one size) and the predictions' colourfulness."""
    return {**{k: float(np.mean(v)) for k, v in per_image.items()}, "colorfulness": colorfulness(pred)}


def vivid_and_accurate(means, per_image, reference_per_image):
    """The project's choice rule, for decoding settings and for the default model alike: of the
    candidates ({key: mean scores} and {key: per-image scores}), the most colourful one that
    `surely_beats` the reference (gray) on all five accuracy metrics; if none does, the one with the
    best PSNR. Returns (key, whether it surely beats the reference)."""
    winners = [k for k in means if surely_beats(per_image[k], reference_per_image)]
    if winners:
        return max(winners, key=lambda k: means[k]["colorfulness"]), True
    return max(means, key=lambda k: means[k]["psnr"]), False

# ----------------------------------------------------------------------------- baselines


def mean_ab(images):
    """Mean CIE a*, b* over every pixel of (training) images: the `mean_chroma` baseline's colour."""
    return colour.rgb_to_lab(images)[..., 1:].reshape(-1, 2).mean(0)


def baseline(images, which="gray", ab=None):
    """Do-nothing colorizations of `images`, computed from their own L: `gray` (zero chroma) or
    `mean_chroma` (every pixel gets the training set's mean ab, passed as `ab`)."""
    if which not in ("gray", "mean_chroma"):
        raise ValueError(f"Unknown baseline '{which}'; choose one of: gray, mean_chroma")
    if which == "mean_chroma" and ab is None:
        raise ValueError("The mean_chroma baseline needs ab=mean_ab(training images)")
    lab = colour.rgb_to_lab(images)
    lab[..., 1:] = 0.0 if which == "gray" else np.asarray(ab, np.float32)
    return colour.to_uint8(colour.lab_to_rgb(lab))
