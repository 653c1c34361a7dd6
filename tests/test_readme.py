"""The README's front door: its quick-start commands, run as written in a fresh copy of the
repository, work and leave `git status` clean; the published results are what the notebook shows."""
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the small budget appended to a training command, so the test takes a minute, not 15
BUDGET = {"papermill": " -p epochs 1 -p subset 300", "training.py": " --epochs 1 --subset 300"}


def quick_start_commands():
    """The command lines of the README's first code block under '## Quick start', comments removed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def fresh_copy(dest):
    """The repository as a clone would have it: tracked files plus new files git would add."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    git = dict(cwd=dest, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], **git)
    subprocess.run(["git", "add", "-A"], **git)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], **git)


def test_quick_start_names_setup_main_job_and_tests():
    cmds = quick_start_commands()
    assert cmds[0] == "pip install -r requirements.txt"
    assert any("papermill model_train.ipynb runs/" in c for c in cmds)
    assert cmds[-1] == "python -m pytest"


def test_quick_start_runs_as_written_in_a_fresh_copy(cifar_dir, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    fresh_copy(repo)
    env = {**os.environ, "CIFAR10_DIR": cifar_dir}
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for cmd in quick_start_commands():
        if cmd == "python -m pytest":
            continue  # this test is part of that run
        if cmd.startswith("pip install"):
            cmd = f"{sys.executable} -m {cmd} --quiet --disable-pip-version-check"  # the same pip as the tests'
        cmd += next((b for key, b in BUDGET.items() if key in cmd), "")
        run = subprocess.run(cmd, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f"{cmd}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        if "papermill" in cmd:
            assert re.search(r"epoch 1/1: loss", run.stdout + run.stderr), "no per-epoch line in the headless log"
    assert (repo / "runs" / "models" / "colorizer_3.keras").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    assert status == "", status  # nothing tracked modified, nothing unignored created


def test_published_tables_shown_in_the_notebook_match_figures():
    """experiments.ipynb's first cells show the published tables (figures/**/metrics.md) and they are
    the numbers of figures/**/metrics.csv."""
    nb = json.loads((ROOT / "experiments.ipynb").read_text())
    published = next(c for c in nb["cells"] if "published" in c.get("metadata", {}).get("tags", []))
    text = "".join(published["source"])
    for md in (ROOT / "figures").rglob("metrics.md"):
        if md.parent.name == "autoencoders":
            continue
        assert md.read_text().strip() in text, md
        with open(md.with_suffix(".csv")) as f:
            for row in csv.DictReader(f):
                assert f"| `{row['model']}` | {float(row['psnr']):.2f} | {float(row['ssim']):.3f} |" in text


def test_records_name_their_data_without_local_paths():
    for rec in (ROOT / "saved_models").rglob("*.json"):
        text = rec.read_text()
        assert not re.search(r'"/(work|home|root|tmp|Users)/', text), rec
        assert json.loads(text)["data_source"].startswith(("CIFAR-10", "folder ")), rec
