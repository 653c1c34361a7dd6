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


def test_time_to_quality_counts_the_epochs_to_the_target():
    ttq = _load("time_to_quality")
    assert ttq.epochs_to({"val_loss": [1.2, 1.0, 0.98, 0.979, 0.97]}, 0.979) == 4
    assert ttq.epochs_to({"val_loss": [1.2, 1.1]}, 0.979) is None


def test_profile_groups_ops_by_the_layer_they_belong_to():
    prof = _load("profile_step")
    totals = {("m/unet_down0a_bn_1/FusedBatchNormV3", "FusedBatchNormV3"): 5.0,
              ("gradient_tape/m/unet_up0a_conv_1/convolution/Conv2DBackpropFilter", "Conv2DBackpropFilter"): 7.0,
              ("compile_loss/l1_plus_bin_ce/LogSoftmax", "LogSoftmax"): 3.0,
              ("m/ab_mix_1/concat", "ConcatV2"): 2.0, ("m/Cast_1", "Cast"): 1.0,
              ("m/unet_up0a_relu_1/Relu", "Relu"): 4.0, ("adam/ResourceApplyAdam", "ResourceApplyAdam"): 0.5}
    assert dict(prof.group(totals)) == {"batch norm": 5.0, "convolution": 7.0, "loss": 3.0, "class head": 2.0,
                                        "dtype casts": 1.0, "ReLU": 4.0, "optimizer": 0.5}
    assert prof._op_type("_MklNativeConv2DBackpropFilter") == "Conv2DBackpropFilter"


def test_tta_benchmark_scores_both_ways_on_the_same_photos(tmp_path):
    tta = _load("tta")
    model = models.get_model("colorizer_3")
    kernel = model.get_layer("ab").kernel
    kernel.assign(np.random.default_rng(0).normal(0, 0.5, kernel.shape).astype(np.float32))
    model.save(tmp_path / "colorizer_3.keras")
    rows = tta.compare("colorizer_3", synthetic_images(6, 40), str(tmp_path), warm=2)
    assert set(rows) == {False, True}
    for scores, means, ms in rows.values():
        assert len(scores["psnr"]) == 6 and np.isfinite(means["psnr"]) and ms > 0
    assert rows[True][1]["psnr"] != rows[False][1]["psnr"]  # the mirror changed the prediction


def test_conv_efficiency_counts_each_convolution_as_throughput_counts_the_model():
    eff, tp = _load("conv_efficiency"), _load("throughput")
    model = models.get_model("colorizer_3", input_shape=(16, 16, 1))
    layers = eff.conv_layers(model)
    assert len(layers) == 18 and sum(tp.conv_flops(layer) for layer in layers) == tp.forward_flops(model)
    first = model.get_layer("unet_down0a_conv")  # 16x16 pixels, 3x3 kernel, 1 -> 16 channels
    assert tp.conv_flops(first) == 2 * 16 * 16 * 9 * 1 * 16
    r = eff.measure("colorizer_3", 16, batch=2, repeats=1, peak=100.0)
    assert [row["layer"] for row in r["layers"]] == [layer.name for layer in layers]
    rows = {row["layer"]: row for row in r["layers"]}
    # the first layer's input gradient is never computed in training: forward and kernel gradient only
    assert rows["unet_down0a_conv"]["flop"] == 2 * 2 * tp.conv_flops(first)  # batch 2, x2
    assert rows["unet_up0a_conv"]["flop"] == 2 * 3 * tp.conv_flops(model.get_layer("unet_up0a_conv"))
    assert rows["unet_up0a_conv"]["input"] == [16, 16, 32] and rows["unet_up0a_conv"]["output"] == [16, 16, 16]
    # a transposed conv scatters each of its input pixels (16x16 out of 8x8 at 32 -> 16 channels)
    assert rows["unet_up0_upconv"]["flop"] == 2 * 3 * (2 * 8 * 8 * 9 * 32 * 16)
    assert all(row["ms"] > 0 for row in r["layers"]) and r["step_ms"] > 0 and 0 < r["conv_share_of_step"]
    flop = sum(row["flop"] for row in r["layers"])
    assert r["conv_peak_share"] == pytest.approx(flop / (r["conv_ms"] / 1e3) / 1e9 / 100.0, rel=0.05, abs=1e-3)
    assert r["model_peak_share"] == pytest.approx(flop / (r["step_ms"] / 1e3) / 1e9 / 100.0, rel=0.05, abs=1e-3)


@pytest.mark.parametrize("argv, message", [(["colorizer_5"], "Cannot measure 'colorizer_5'; choose one of: colorizer_3"),
                                           (["--image-size", "60"], "--image-size must be a multiple of 8 (got 60)"),
                                           (["--precision", "float16"], "invalid choice: 'float16'")])
def test_conv_efficiency_refuses_what_it_cannot_measure(argv, message, monkeypatch, capsys):
    eff = _load("conv_efficiency")
    monkeypatch.setattr("sys.argv", ["conv_efficiency.py", *argv])
    with pytest.raises(SystemExit):
        eff.main()
    assert message in capsys.readouterr().err


def test_levers_names_the_machine_of_a_revision_that_did_not():
    """A "today" row (a revision whose throughput.py printed no machine) carries this host's CPU, cores
    and bfloat16 units, and the peak that revision measured; a row with its own machine keeps it."""
    levers = _load("levers")
    host = levers.host_description()
    assert {"cpu", "cores", "avx512_bf16", "amx"} <= set(host) and "matmul_gflops_float32" not in host
    today = levers.row_machine({"machine_gflops": 123.4, "tuned_train_images_per_s": 50.0}, host)
    assert today["cpu"] == host["cpu"] and today["matmul_gflops_float32"] == 123.4 and today["onednn"] is None
    bf16 = levers.row_machine({"machine_gflops": 300.0, "machine_gflops_tuned_precision": 1200.0,
                               "tuned_settings": {"precision": "bfloat16"}}, host)
    assert bf16["matmul_gflops_float32"] == 300.0 and bf16["matmul_gflops_bfloat16"] == 1200.0
    own = {"cpu": "Another CPU", "cores": 8, "matmul_gflops_float32": 999.0}
    assert levers.row_machine({"machine": own, "machine_gflops": 1.0}, host) == own


def test_guided_upsampling_follows_the_guide_and_keeps_flat_chroma():
    gu = _load("guided_upsampling")
    guide = np.zeros((1, 16, 16), np.float32)
    guide[:, :, 8:] = 1.0  # an edge down the middle
    flat = np.full((1, 16, 16), 0.3, np.float32)
    np.testing.assert_allclose(gu.guided_filter(guide, flat, 2, 1e-3), flat, atol=1e-5)  # nothing to move
    blurred = np.tile(np.linspace(-1, 1, 16, dtype=np.float32), (1, 16, 1))  # chroma smeared across the edge
    out = gu.guided_filter(guide, blurred, 3, 1e-4)
    # within a window on one side the guide is constant: chroma flattens there and steps at the edge
    assert np.ptp(out[0, :, :5]) < np.ptp(blurred[0, :, :5]) and out[0, 0, 8] - out[0, 0, 7] > blurred[0, 0, 8] - blurred[0, 0, 7]
    up = gu.upsample(np.zeros((2, 4, 6, 2), np.float32) + 0.5, 8, 12)
    assert up.shape == (2, 8, 12, 2) and np.allclose(up, 0.5)


def test_hints_table_puts_each_rows_distance_to_the_originals_colourfulness_beside_it():
    hints = _load("hints")
    s = dict(psnr=25.0, ssim=0.93, mae=10.0, acc2=0.3, auc=0.92)
    curve = {0: {**s, "colorfulness": 30.0},
             5: {**s, "colorfulness": 44.5, "hints_within_3": 0.9, "reachable_within_3": 0.95,
                 "model_within_3": 0.5, "hint_error_median": 0.2}}
    rows = hints.markdown(curve, "colorizer_6", {**s, "colorfulness": 38.0}, truth_colorfulness=40.0).splitlines()
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in rows[2:]}
    at = head.index("ΔCF ↓")
    assert head[at - 1] == "colorfulness" and len(head) == len(cells["0"]) == len(cells["5"])
    assert (cells["0"][at], cells["5"][at], cells["colorizer_6, no hints"][at]) == ("10.0", "4.5", "2.0")
