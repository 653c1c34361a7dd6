"""Reproduce the results: train every registered model at equal compute, then run experiments.ipynb.

    python benchmarks/train_all.py                       # autoencoders 8 min each, colorizers 15 min each
    python benchmarks/train_all.py --max-minutes 15 --ae-minutes 8 --models-dir saved_models

    python benchmarks/train_all.py colorizer_6 colorizer_3 colorizer_4 --data landscapes --max-minutes 20

Models are trained in the order given (registry order by default, so autoencoder_1 exists before
colorizer_2), each with the training defaults (its own batch; `--batch-size 128` trains every model at
the batch the published ones were trained at) and a wall-clock budget (`max_minutes`): it stops
after the epoch in which its budget runs out. A model already trained with the same arguments is
skipped; an interrupted run resumes. This script publishes: models go to saved_models/, and
experiments.ipynb is executed with publish=True (figures/, the metrics tables, and the notebook's
published-results cell).
"""
import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import models  # noqa: E402
import training  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=list(models.MODELS))
    p.add_argument("--max-minutes", type=float, default=15.0, help="budget of each colorizer")
    p.add_argument("--ae-minutes", type=float, default=8.0, help="budget of each autoencoder")
    p.add_argument("--epochs", type=int, default=1000, help="upper bound; the budget stops training first")
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's own")
    p.add_argument("--models-dir", default=str(ROOT / "saved_models"))
    p.add_argument("--figures-dir", default=str(ROOT / "figures"))
    p.add_argument("--data-dir", default=None, help="a CIFAR-10 folder (default $CIFAR10_DIR or the Keras download)")
    p.add_argument("--data", default="cifar10", help="cifar10, landscapes ($LANDSCAPES_DIR) or a folder of photos")
    p.add_argument("--image-size", type=int, default=None, help="training size (default 32 for cifar10, 64 for folders)")
    p.add_argument("--overwrite", action="store_true", help="retrain models that already exist")
    p.add_argument("--skip-experiments", action="store_true")
    args = p.parse_args()
    for name in args.models:
        if name not in models.MODELS:
            p.error(f"Unknown model '{name}'; choose one of: {', '.join(models.MODELS)}")
    for name in args.models:
        minutes = args.ae_minutes if models.MODELS[name].family == "autoencoder" else args.max_minutes
        print(f"=== {name}: {minutes:g} minutes", flush=True)
        try:
            training.train(name, epochs=args.epochs, max_minutes=minutes, data=args.data, image_size=args.image_size,
                           data_dir=args.data_dir, models_dir=args.models_dir, overwrite=args.overwrite, verbose="lines",
                           batch_size=args.batch_size)
        except training.RunExists as e:  # kept as it is; the others still train
            print(f"skipped {name}: {e}", flush=True)
    if not args.skip_experiments:
        import papermill as pm
        out = ROOT / "runs" / "experiments.ipynb"
        out.parent.mkdir(exist_ok=True)
        params = dict(models_dir=args.models_dir, publish=True, figures_dir=args.figures_dir)
        if args.data_dir:
            params["data_dir"] = args.data_dir
        pm.execute_notebook(str(ROOT / "experiments.ipynb"), str(out), parameters=params, cwd=str(ROOT))
        import evaluation
        evaluation.sync_published_cell(str(ROOT / "experiments.ipynb"), args.figures_dir)
        print(f"Figures in {args.figures_dir} (published); executed notebook in {out}")


if __name__ == "__main__":
    main()
