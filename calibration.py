"""Calibration of decoding settings on validation photos after training (colorizer_6's mix,
temperature and gain), called by training.py by the name a model's spec gives."""

import concurrent.futures
import os

import numpy as np

import colorizer
import colour
import contracts
import metrics
import models
import store

# The decoding grid (a first sweep over mix 0-2, gain 0-3 and T 0.2/0.38 on the landscapes showed T
# barely matters and gains above 0.5 always lose to gray: the grid is kept where the choice is made).
MIX_GRID = (0.0, 1.0, 1.25, 1.5, 1.75, 2.0)
TEMPERATURE_GRID = (0.2,)
GAIN_GRID = (0.0, 0.15, 0.3)
CHROMA_MIN_GRID = (0.0, 8.0)  # the gain only where the predicted chroma is above this (ab units); 0: everywhere
# settings scored at once: each holds its photos' float copies and Lab (about 2 GB at the peak for 1000
# photos of 150x150), so no more than two, whatever the cores
SCORING_THREADS = max(1, min(2, os.cpu_count() or 1))
CALIBRATION_IMAGES = 1000  # at most this many validation photos (a seeded sample) score each setting


def calibrate_colorizer_6(model, photos, seed=0):
    """Choose colorizer_6's decoding (`mix`, `temperature`, `gain`, `chroma_min`) on validation photos only (uint8
    RGB, at the resolution it will be judged at; each is colorized as colorize.py does: predicted
    at the model's size, the photo's own L kept). Rule (metrics.vivid_and_accurate): the most
    colourful setting of the grid that beats `gray` on PSNR, SSIM, MAE, acc@2 and AuC at once on
    these photos, in at least 95% of bootstrap resamples of them; if none does, the setting with the
    best PSNR. Sets the choice in the model's ABMix layer; returns the sweep."""
    layer = colorizer.bin_layer(model)
    if len(photos) > CALIBRATION_IMAGES:
        photos = photos[np.sort(np.random.default_rng(seed).choice(len(photos), CALIBRATION_IMAGES, replace=False))]
    h, w = model.input_shape[1:3]
    small = colour.resize_batch(photos, h, w) if photos.shape[1:3] != (h, w) else photos
    ab = {(m, T, g, cm): [] for T in TEMPERATURE_GRID for m in MIX_GRID for g in GAIN_GRID
          for cm in (CHROMA_MIN_GRID if g else (0.0,))}  # without a gain chroma_min changes nothing
    for i in range(0, len(photos), 32):
        y = colorizer.predict(model, small[i:i + 32], decode=None)  # the raw outputs, decoded below
        confidence = contracts.mix_confidence(y[..., 2:])  # shared by every setting
        for T in TEMPERATURE_GRID:
            ab_cls = contracts.annealed_mean(y[..., 2:], layer.centers, T)  # shared by every mix and gain
            for (m, t, g, cm), parts in ab.items():
                if t == T:
                    parts.append(contracts.decode_mix(y, layer.centers, m, T, g, ab_cls=ab_cls, chroma_min=cm,
                                                      confidence=confidence))
    truth = metrics.Reference(photos)  # scored against 31 times: its Lab and SSIM moments once
    gray_pred = metrics.baseline(photos)
    gray_images = metrics.per_image_scores(gray_pred, truth)
    gray = metrics.mean_scores(gray_images, gray_pred)

    def score(setting):  # one setting's photos and scores (numpy and scipy release the GIL: threads share the work)
        pred = colour.recombine_full(photos, np.concatenate(ab[setting]))
        scores = metrics.per_image_scores(pred, truth)
        return scores, metrics.mean_scores(scores, pred), metrics.surely_beats(scores, gray_images)

    with concurrent.futures.ThreadPoolExecutor(SCORING_THREADS) as pool:
        scored = dict(zip(ab, pool.map(score, ab)))
    means, per_image = {}, {}
    for i, ((m, T, g, cm), (scores, s, surely)) in enumerate(scored.items()):
        per_image[i] = scores
        means[i] = dict(mix=m, temperature=T, gain=g, chroma_min=cm, **s, beats_gray=metrics.beats(s, gray),
                        surely_beats_gray=surely)
    sweep = list(means.values())
    chosen = sweep[metrics.vivid_and_accurate(means, per_image, gray_images)[0]]
    layer.mix, layer.temperature, layer.gain = chosen["mix"], chosen["temperature"], chosen["gain"]
    layer.chroma_min = chosen["chroma_min"]
    return {"chosen": chosen, "gray": gray, "sweep": sweep, "images": len(photos),
            "rule": "most colourful setting beating gray on PSNR, SSIM, MAE, acc@2 and AuC on validation, in at "
                    "least 95% of 1000 paired bootstrap resamples of the photos (else the best PSNR)"}



CALIBRATIONS = {"calibrate_colorizer_6": calibrate_colorizer_6}  # ModelSpec.calibrate -> function


def calibrate(spec, model, photos):
    """Run the calibration `spec` (a ModelSpec) names on `model` with validation `photos`; None when
    it names none."""
    if spec.calibrate is None:
        return None
    if spec.calibrate not in CALIBRATIONS:
        raise ValueError(f"Unknown calibration '{spec.calibrate}' of {spec.name}; choose one of: {', '.join(CALIBRATIONS)}")
    return CALIBRATIONS[spec.calibrate](model, photos)


def calibrate_saved(path, dataset):
    """Calibrate a saved model on its own validation photos (the split its record's config names, of
    `dataset`: a data.Dataset), in place: its decoding settings and record are updated, its weights
    untouched. Returns the updated record (unchanged when its spec names no calibration)."""
    model, record = store.load(path), store.record(path)
    spec, cfg = models.MODELS[model.name], record["config"]
    sets = dataset.training_sets(spec.contract, cfg["image_size"], cfg["subset"], cfg["seed"], cfg["val_fraction"],
                                 cfg["batch_size"])
    cal = calibrate(spec, model, sets.calib_images())
    if cal is not None:
        record["calibration"] = cal
        store.save_model(model, path)
        store.save_record(path, record)
    return record
