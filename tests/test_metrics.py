"""Tests for metrics.py against values worked out by hand."""
import numpy as np
import pytest

import colour
import metrics


def _const(value, n=2, size=16):
    return np.full((n, size, size, 3), value, np.uint8)


def test_identical_images():
    x = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert metrics.psnr(x, x) == pytest.approx(148.1308, abs=1e-4) == pytest.approx(metrics.PSNR_CAP)
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert metrics.mae(x, x) == 0
    assert metrics.lab_accuracy(x, x) == 1.0
    assert metrics.ab_auc(x, x) == 1.0


def test_known_shift():
    true, pred = _const(100), _const(105)
    # MSE 25 -> 10 log10(255^2 / 25) = 34.1514 dB; MAE 5
    assert metrics.psnr(pred, true) == pytest.approx(10 * np.log10(65025 / 25), abs=1e-9)
    assert metrics.psnr(pred, true) == pytest.approx(34.1514, abs=1e-4)
    assert metrics.mae(pred, true) == 5
    # constant images: SSIM = (2·100·105 + C1) / (100² + 105² + C1), C1 = (0.01·255)²
    c1 = (0.01 * 255) ** 2
    assert metrics.ssim(pred, true) == pytest.approx((2 * 100 * 105 + c1) / (100 ** 2 + 105 ** 2 + c1), abs=1e-5)


def test_psnr_mean_over_images():
    true = np.concatenate([_const(100, 1), _const(100, 1)])
    pred = np.concatenate([_const(105, 1), _const(110, 1)])  # MSE 25 and 100
    expected = np.mean([10 * np.log10(65025 / 25), 10 * np.log10(65025 / 100)])
    assert metrics.psnr(pred, true) == pytest.approx(expected, abs=1e-9)


def test_lab_accuracy_half_right():
    true = _const(128, 1)
    pred = true.copy()
    pred[:, :8] = (255, 0, 0)  # half the pixels far off
    assert metrics.lab_accuracy(pred, true) == 0.5
    # within threshold: a one-level change in gray moves L by < 0.5, so it still counts at t=2
    assert metrics.lab_accuracy(_const(129, 1), true, threshold=2) == 1.0
    assert metrics.lab_accuracy(_const(140, 1), true, threshold=2) == 0.0  # ΔL ≈ 4.4 > 2


def test_ab_auc_constant_error():
    true, pred = _const((200, 60, 60), 1), _const((128, 128, 128), 1)  # reddish vs gray
    err = np.linalg.norm(colour.rgb_to_lab(true)[0, 0, 0, 1:] - colour.rgb_to_lab(pred)[0, 0, 0, 1:])
    assert 20 < err < 150
    # the share within threshold is 0 below err and 1 from it on: area = (151 - ceil(err)) / 151
    assert metrics.ab_auc(pred, true) == pytest.approx((151 - np.ceil(err)) / 151, abs=1e-9)


def test_colorfulness_known_values():
    assert metrics.colorfulness(_const(77)) == 0.0  # gray has no colour
    # pure red: rg = 255, yb = 127.5, no variance -> 0.3·sqrt(255² + 127.5²) = 85.5296
    assert metrics.colorfulness(_const((255, 0, 0))) == pytest.approx(0.3 * np.hypot(255, 127.5), abs=1e-9)
    assert metrics.colorfulness(_const((255, 0, 0))) == pytest.approx(85.5296, abs=1e-4)
    half = _const(0, 1)
    half[:, :, :8] = (255, 0, 0)  # σ_rg = 127.5, σ_yb = 63.75, μ_rg = 127.5, μ_yb = 63.75
    assert metrics.colorfulness(half) == pytest.approx(1.3 * np.hypot(127.5, 63.75), abs=1e-9)


def test_evaluate_keys_and_ranges():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    pred = np.clip(true.astype(int) + rng.integers(-20, 21, true.shape), 0, 255).astype(np.uint8)
    m = metrics.evaluate(pred, true)
    assert set(m) == {"psnr", "ssim", "mae", "acc2", "auc", "colorfulness"}
    assert 15 < m["psnr"] < 40 and 0 < m["ssim"] < 1 and 0 < m["mae"] < 20
    assert 0 <= m["acc2"] <= 1 and 0 < m["auc"] <= 1 and m["colorfulness"] > 0


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"\(2, 16, 16, 3\) and \(1, 16, 16, 3\)"):
        metrics.mae(_const(1), _const(1, n=1))
    with pytest.raises(ValueError, match="float64"):
        metrics.psnr(_const(1).astype(np.float64), _const(1))


def test_baselines_on_known_images():
    red = _const((200, 30, 30), 1)
    gray = metrics.baseline(red, "gray")
    assert np.ptp(gray.astype(int), axis=-1).max() <= 1  # R = G = B
    L_in, L_out = colour.rgb_to_lab(red)[..., 0], colour.rgb_to_lab(gray)[..., 0]
    assert np.abs(L_in - L_out).max() < 0.5  # the input's L is kept
    assert metrics.colorfulness(gray) < 1
    ab = metrics.mean_ab(red)
    np.testing.assert_allclose(ab, colour.rgb_to_lab(red)[0, 0, 0, 1:], atol=1e-3)
    back = metrics.baseline(red, "mean_chroma", ab=ab)  # one colour: its mean chroma is itself
    assert np.abs(back.astype(int) - red.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="'sepia'.*gray, mean_chroma"):
        metrics.baseline(red, "sepia")
    with pytest.raises(ValueError, match="mean_ab"):
        metrics.baseline(red, "mean_chroma")


def test_psnr_colour_images_leaves_out_the_gray_ones():
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    gray = np.repeat(rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    true = np.concatenate([colour, gray])
    assert metrics.is_gray(true).tolist() == [False, False, False, True, True]
    pred = np.clip(true.astype(int) + 4, 0, 255).astype(np.uint8)  # error on every image
    pred[3:] = true[3:]                                              # the gray ones exact: 148 dB each
    assert metrics.psnr(pred, true) > 60
    assert metrics.psnr_colour_images(pred, true) == pytest.approx(metrics.psnr(pred[:3], true[:3]))
    assert metrics.psnr_colour_images(pred, true) < 40
    assert np.isnan(metrics.psnr_colour_images(gray, gray))


def test_beats_and_the_vivid_and_accurate_rule():
    gray = dict(psnr=22.0, ssim=0.9, mae=14.0, acc2=0.24, auc=0.89, colorfulness=0.1)
    good = dict(gray, psnr=23.0, ssim=0.91, mae=13.0, acc2=0.25, auc=0.90, colorfulness=20.0)
    wild = dict(good, psnr=22.5, acc2=0.23, colorfulness=40.0)  # more colourful, worse than gray on acc@2
    assert metrics.beats(good, gray) and not metrics.beats(wild, gray) and not metrics.beats(gray, gray)
    r = np.random.default_rng(0)
    sign = metrics.ACCURACY_METRICS
    gray_images = {k: gray[k] + r.normal(0, 0.01, 200) for k in sign}
    sure = {k: v + sign[k] * 0.01 for k, v in gray_images.items()}  # better on every image
    edge = dict(sure, acc2=gray_images["acc2"] + r.normal(0.0005, 0.02, 200))  # acc@2: a coin toss
    assert metrics.surely_beats(sure, gray_images) and not metrics.surely_beats(edge, gray_images)
    means = {"sure": good, "edge": dict(good, colorfulness=30.0), "wild": wild}
    per_image = {"sure": sure, "edge": edge, "wild": dict(sure, acc2=gray_images["acc2"] - 0.01)}
    assert metrics.vivid_and_accurate(means, per_image, gray_images) == ("sure", True)
    del means["sure"]
    assert metrics.vivid_and_accurate(means, per_image, gray_images) == ("edge", False)  # none sure: best PSNR


def test_per_image_scores_average_to_evaluate():
    r = np.random.default_rng(0)
    true = r.integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
    pred = np.clip(true.astype(int) + r.integers(-9, 10, true.shape), 0, 255).astype(np.uint8)
    means = metrics.mean_scores(metrics.per_image_scores(pred, true), pred)
    for k, v in metrics.evaluate(pred, true).items():
        assert means[k] == pytest.approx(v, rel=1e-6), k


def test_delta_cf_is_the_distance_to_the_originals_colourfulness():
    r = np.random.default_rng(0)
    true = r.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    gray = metrics.baseline(true, "gray")
    dcf = metrics.METRICS["delta_cf"].pooled
    assert dcf(true, true) == 0
    assert dcf(gray, true) == pytest.approx(metrics.colorfulness(true) - metrics.colorfulness(gray))
    assert "delta_cf" in metrics.table_scores(gray, true) and "delta_cf" not in metrics.evaluate(gray, true)


def test_difference_intervals_cover_the_true_difference():
    r = np.random.default_rng(1)
    ref = {k: r.normal(0, 1, 400) for k in metrics.ACCURACY_METRICS}
    shifted = {k: v + 1.0 for k, v in ref.items()}
    d = metrics.difference_intervals(shifted, ref)
    assert d["psnr"] == pytest.approx((1.0, 1.0, 1.0))
    noisy = {k: v + 0.5 + r.normal(0, 1, 400) for k, v in ref.items()}
    mean, lo, hi = metrics.difference_intervals(noisy, ref)["ssim"]
    assert lo < 0.5 < hi and lo < mean < hi and hi - lo < 0.5


def test_differences_markdown_ticks_only_intervals_on_the_better_side():
    import evaluation
    diffs = {"m": {k: ((0.5, 0.1, 0.9) if k != "mae" else (-0.5, -0.9, -0.1)) for k in metrics.ACCURACY_METRICS},
             "w": {k: (0.1, -0.1, 0.3) for k in metrics.ACCURACY_METRICS}}
    text = evaluation.differences_markdown(diffs)
    m_row = next(line for line in text.splitlines() if line.startswith("| `m`"))
    w_row = next(line for line in text.splitlines() if line.startswith("| `w`"))
    assert m_row.count("✓") == len(metrics.ACCURACY_METRICS) and "✓" not in w_row
    assert "+0.500 [+0.100, +0.900] ✓" in m_row


def test_tradeoff_plot_marks_each_setting_and_the_chosen_one():
    import plots
    s = lambda cf, p, sure: dict(colorfulness=cf, psnr=p, surely_beats_gray=sure, mix=1.0, gain=0.0)  # noqa: E731
    cal = dict(sweep=[s(20, 25.0, True), s(30, 24.0, True), s(40, 22.0, False)], chosen=s(30, 24.0, True),
               gray=dict(psnr=22.5))
    ax = plots.plot_tradeoff(cal, 40.0).axes[0]
    offsets = [tuple(map(tuple, c.get_offsets())) for c in ax.collections]
    assert offsets == [((20.0, 25.0), (30.0, 24.0)), ((40.0, 22.0),), ((30.0, 24.0),)]
    assert [ln.get_ydata()[0] for ln in ax.lines[:2]] == [22.5, 24.5] and ax.lines[2].get_xdata()[0] == 36.0


def test_ssim_is_skimages_image_by_image():
    """metrics.ssim scores a whole batch at once: each image's value is skimage's structural_similarity
    with the paper's settings (Gaussian σ 1.5, population covariances), to rounding."""
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(3)
    smooth = np.linspace(0, 255, 23 * 17 * 3).reshape(1, 23, 17, 3)
    true = np.clip(smooth + rng.normal(0, 20, (4, 23, 17, 3)), 0, 255).astype(np.uint8)
    pred = np.clip(true + rng.normal(0, 15, true.shape), 0, 255).astype(np.uint8)
    expected = [structural_similarity(p.astype(float), t.astype(float), data_range=255, channel_axis=-1,
                                      gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
                for p, t in zip(pred, true)]
    got = metrics.ssim_per_image(pred, true)
    assert got.shape == (4,) and len(set(np.round(got, 6))) == 4  # four different scores
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # in chunks of images, and against the moments of a Reference (chunks of 3 across 4 images)
    p, t = pred.astype(np.float64), true.astype(np.float64)
    np.testing.assert_allclose(metrics._ssim(p, t, chunk=3), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(metrics._ssim(p, t, metrics.Reference(true).moments, chunk=3), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 11x11 pixels, got 10x17"):
        metrics.ssim(pred[:, :10], true[:, :10])


def test_a_reference_scores_as_the_plain_truths():
    """Scoring many predictions against one metrics.Reference (its Lab and SSIM moments computed once)
    gives each the scores it gets against the plain arrays."""
    rng = np.random.default_rng(4)
    true = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    ref = metrics.Reference(true)
    for shift in (5, 40):
        pred = np.clip(true.astype(int) + rng.integers(-shift, shift + 1, true.shape), 0, 255).astype(np.uint8)
        plain, reused = metrics.per_image_scores(pred, true), metrics.per_image_scores(pred, ref)
        assert plain.keys() == reused.keys() == metrics.ACCURACY_METRICS.keys()
        for k in plain:
            np.testing.assert_array_equal(reused[k], plain[k])
        # ...and each metric's own function, which shares nothing (SSIM's moments of t are the Reference's)
        np.testing.assert_array_equal(reused["ssim"], metrics.ssim_per_image(pred, true))
        np.testing.assert_array_equal(reused["psnr"], metrics.psnr_per_image(pred, true))
        assert reused["acc2"].mean() == pytest.approx(metrics.lab_accuracy(pred, true), abs=1e-12)
        assert reused["auc"].mean() == pytest.approx(metrics.ab_auc(pred, true), abs=1e-6)
    assert metrics.per_image_scores(true, ref)["psnr"][0] == pytest.approx(metrics.PSNR_CAP)
    with pytest.raises(ValueError, match=r"uint8 RGB batch \(N,H,W,3\) of ground truths, got float32 \(3, 16, 16, 3\)"):
        metrics.Reference(true.astype(np.float32))
    with pytest.raises(ValueError, match="of one shape"):
        metrics.per_image_scores(true[:2], ref)


def test_per_image_scores_in_chunks_are_the_scores_at_once(monkeypatch):
    """per_image_scores scores a large batch SCORE_CHUNK images at a time (memory): the same scores
    as all at once, against the plain truths or a Reference (whose parts share its Lab and moments)."""
    rng = np.random.default_rng(5)
    true = rng.integers(0, 256, (5, 13, 12, 3), dtype=np.uint8)
    pred = np.clip(true.astype(int) + rng.integers(-30, 31, true.shape), 0, 255).astype(np.uint8)
    whole = metrics.per_image_scores(pred, true)
    monkeypatch.setattr(metrics, "SCORE_CHUNK", 2)
    for truth in (true, metrics.Reference(true)):
        chunked = metrics.per_image_scores(pred, truth)
        for k in whole:
            assert chunked[k].shape == (5,)
            np.testing.assert_array_equal(chunked[k], whole[k])
    with pytest.raises(ValueError, match="of one shape"):
        metrics.per_image_scores(pred, true[:4])
