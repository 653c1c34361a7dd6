"""The logic inside benchmark scripts that the README's numbers rely on (not their timings)."""
import importlib.util
import pathlib

import numpy as np
import pytest

import models
from conftest import synthetic_images

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saturation_picks_smallest_factor_meeting_both_conditions():
    sat = _load("saturation")
    r = lambda c, m: dict(colorfulness=c, mae=m)  # noqa: E731
    results = [(1.0, r(11, 10)), (1.5, r(22.5, 12.5)), (2.0, r(22.1, 11.9)), (2.5, r(28, 11.0))]
    assert sat.smallest_reaching(results, gray_mae=12.4, target=22) == 2.0  # 1.5: MAE above gray's
    assert sat.smallest_reaching(results, gray_mae=12.4, target=30) is None


def test_saturation_sweep_scores_each_factor():
    sat = _load("saturation")
    model = models.get_model("colorizer_3")
    model.get_layer("ab").bias.assign(np.array([0.2, -0.1], np.float32))
    imgs = synthetic_images(8)
    out = sat.sweep(model, imgs, [0.0, 1.0, 2.0])
    assert [s for s, _ in out] == [0.0, 1.0, 2.0]
    colorf = [v["colorfulness"] for _, v in out]
    assert colorf[0] < 1 < colorf[1] < colorf[2]
    assert set(out[0][1]) == {"colorfulness", "mae", "psnr", "ssim", "acc2"}
    with pytest.raises(ValueError, match="saturation must be"):
        sat.sweep(model, imgs, [-1.0])
