"""Colour hints (issue 26): how much a few user points help. Scores the hint colorizer on the
landscape test photos (150x150, the colour ones) with 0, 1, 2, 5, 10 and 20 hints per photo drawn
from the ground truth with a fixed seed (evaluation.ground_truth_hints: a random pixel and the mean
colour of the 7x7 square around it, given as a user gives it: x, y and a colour), the default
automatic model beside it (no hints), and how close the hinted pixels come back to their colour.
Writes figures/landscapes/hints_curve.png, hints_examples.png and hints.md.

    python benchmarks/hints.py [--models-dir saved_models] [--photos N]
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import evaluation  # noqa: E402
import machine  # noqa: E402
import metrics  # noqa: E402
import plots  # noqa: E402
import store  # noqa: E402
from colorizer import DEFAULT_MODEL, Colorizer  # noqa: E402

EXAMPLE_COUNTS = (0, 3, 10)


def markdown(curve, default_name, default_scores, truth_colorfulness):
    """The curve as a Markdown table; ΔCF is each row's distance to the originals' colourfulness."""
    keys = ("psnr", "ssim", "mae", "acc2", "auc", "colorfulness")
    head = ["hints per photo"] + [metrics.METRICS[k].heading for k in keys] + [metrics.METRICS["delta_cf"].heading,
            "hinted pixels within 3 ab (reachable)", "model's own chroma within 3 ab", "median ab error"]

    def scores(s):
        values = [metrics.METRICS[m].fmt.format(s[m]) for m in keys]
        return " | ".join(values + [metrics.METRICS["delta_cf"].fmt.format(abs(s["colorfulness"] - truth_colorfulness))])

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, s in curve.items():
        extra = ["-"] * 3 if k == 0 else [f"{s['hints_within_3']:.0%} ({s['reachable_within_3']:.0%})",
                                           f"{s['model_within_3']:.0%}", f"{s['hint_error_median']:.1f}"]
        lines.append(f"| {k} | {scores(s)} | " + " | ".join(extra) + " |")
    lines.append(f"| {default_name}, no hints | {scores(default_scores)} | - | - | - |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="landscapes/colorizer_7")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--default", default=DEFAULT_MODEL, help="the automatic model compared at 0 hints (from saved_models)")
    p.add_argument("--data", default="landscapes")
    p.add_argument("--photos", type=int, default=None, help="the first N colour test photos (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "figures" / "landscapes"))
    args = p.parse_args()
    images = evaluation.folder_test_set(args.data)[0][:args.photos]
    print(f"{len(images)} colour test photos at {images.shape[1]}x{images.shape[2]}; host: {machine.describe(peak=False)}")
    hinted = Colorizer.load(args.model, args.models_dir)
    curve = evaluation.hint_curve(hinted, images, seed=args.seed)
    default = Colorizer.load(args.default, ROOT / "saved_models").colorize_array(images)
    default_scores = metrics.mean_scores(metrics.per_image_scores(default, images), default)
    print(f"{args.default}, no hints: PSNR {default_scores['psnr']:.2f} dB, acc@2 {default_scores['acc2']:.3f}")
    print(f"10 hints vs none: {curve[10]['psnr'] - curve[0]['psnr']:+.2f} dB; "
          f"no hints vs {args.default}: {curve[0]['psnr'] - default_scores['psnr']:+.2f} dB")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.model.rsplit("/", 1)[-1]
    truth_cf = metrics.colorfulness(images)
    (out / "hints.md").write_text(markdown(curve, args.default.rsplit("/", 1)[-1], default_scores, truth_cf))
    store.write_json(out / "hints.json", {"model": args.model, "photos": len(images), "seed": args.seed,
                                          "machine": machine.describe(peak=False), "curve": curve,
                                          "truth_colorfulness": truth_cf,
                                          "default": {args.default: default_scores}})
    plots.save(plots.plot_hint_curve({f"{name} with hints": curve}, {f"{args.default} (no hints)": default_scores}),
               out / "hints_curve.png")
    pick = sorted({min(len(images) - 1, i * len(images) // 4 + 17) for i in range(4)})  # one per class (sorted by class)
    hints = {k: evaluation.ground_truth_hints(images[pick], k, args.seed, ids=pick) for k in EXAMPLE_COUNTS}
    by_count = {k: hinted.colorize_array(images[pick], hints=hints[k] if k else None) for k in EXAMPLE_COUNTS}
    plots.save(plots.plot_hint_examples(images[pick], by_count, hints), out / "hints_examples.png")
    print(f"wrote {out}/hints.md, hints.json, hints_curve.png, hints_examples.png")


if __name__ == "__main__":
    main()
