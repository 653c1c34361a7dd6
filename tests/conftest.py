"""Shared fixtures: small synthetic images so tests never need a download."""
import os
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import data  # noqa: E402


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """$CIFAR10_DIR when set, else a small CIFAR-10-shaped folder of synthetic images."""
    if os.environ.get("CIFAR10_DIR"):
        return os.environ["CIFAR10_DIR"]
    root = tmp_path_factory.mktemp("cifar")
    for split, n in (("train", 40), ("test", 10)):
        for k, c in enumerate(data.CIFAR10_CLASSES):
            (root / split / c).mkdir(parents=True)
            for i, img in enumerate(synthetic_images(n, seed=k)):
                Image.fromarray(img).save(root / split / c / f"{i:04d}.png")
    return str(root)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def synthetic_images(n=64, size=32, seed=0):
    """uint8 RGB images whose colour is a function of luminance (so it can be learned from gray):
    horizontal gradients of v -> (v, v^2, 1 - v), blue when dark, yellow when bright; luma
    0.114 + 0.185 v + 0.587 v^2 rises with v."""
    r = np.random.default_rng(seed)
    t = np.linspace(0, 1, size, dtype=np.float32)
    v = (r.uniform(0, 1, (n, 1, 1)) + 0.6 * t[None, None, :]) % 1.0  # (n, 1, W)
    v = np.broadcast_to(v, (n, size, size)).astype(np.float32)
    rgb = np.stack([v, v * v, 1 - v], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def assert_images_match(actual, desired, err_msg=""):
    """8-bit model outputs agree up to what another CPU can change: oneDNN picks other kernels (and
    summation orders) on hosts with and without AMX, so a pixel in tens of thousands may round one
    level away. At most one level apart, on at most 0.01 % of the values, mean difference under 0.01
    levels: a changed decoding, chroma or channel still moves far more than that."""
    a, d = np.asarray(actual), np.asarray(desired)
    assert a.shape == d.shape, f"{err_msg}: shape {a.shape} != {d.shape}"
    diff = np.abs(a.astype(np.int64) - d.astype(np.int64))
    off = np.count_nonzero(diff)
    assert diff.max(initial=0) <= 1, f"{err_msg}: values differ by up to {diff.max()} levels (allowed 1)"
    assert off <= 1e-4 * diff.size, f"{err_msg}: {off} of {diff.size} values differ (allowed 0.01 %)"
    assert diff.mean() < 0.01, f"{err_msg}: mean difference {diff.mean():.4f} levels (allowed < 0.01)"


@pytest.fixture
def images():
    return synthetic_images()
