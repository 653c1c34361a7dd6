"""The notebooks as a person uses them in JupyterLab: opening and saving one changes nothing in git,
and a Run All's outputs and the kernel's version stay out of it (the nbstripout filter of the README's
setup line)."""
import copy
import json
import pathlib
import subprocess
import sys

import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ["model_train.ipynb", "experiments.ipynb"]
EXTRA_KEYS = "metadata.language_info.version"  # the kernel's Python version: differs between users


def jupyterlab_saves(nb, path, run_all=False):
    """Write `nb` as JupyterLab does after opening it with the ipykernel kernel (its kernelspec and the
    kernel's language_info), optionally after a Run All (outputs and execution counts)."""
    nb = copy.deepcopy(nb)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = copy.deepcopy(IPythonKernel.language_info)
    if run_all:
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {i}\n")]
    nbformat.write(nb, str(path))  # what jupyter_server's contents manager calls
    return path.read_text()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_opening_and_saving_in_jupyterlab_changes_nothing_but_the_kernel_version(name, tmp_path):
    committed = (ROOT / name).read_text()
    saved = json.loads(jupyterlab_saves(nbformat.reads(committed, 4), tmp_path / name))
    assert saved["metadata"]["language_info"].pop("version")
    assert saved == json.loads(committed)
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in saved["cells"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_git_filter_gives_back_the_committed_notebook_after_a_run_all(name, tmp_path):
    committed = (ROOT / name).read_text()
    jupyterlab_saves(nbformat.reads(committed, 4), tmp_path / name, run_all=True)
    cleaned = subprocess.run([sys.executable, "-m", "nbstripout", "--extra-keys", EXTRA_KEYS, "-t", str(tmp_path / name)],
                             capture_output=True, text=True, check=True).stdout
    assert cleaned.rstrip("\n") == committed.rstrip("\n")


def test_the_filter_is_declared_and_the_readme_installs_it():
    attributes = (ROOT / ".gitattributes").read_text().splitlines()
    assert "*.ipynb filter=nbstripout" in attributes
    readme = (ROOT / "README.md").read_text()
    assert "nbstripout --install" in readme and f'git config filter.nbstripout.extrakeys "{EXTRA_KEYS}"' in readme
    assert any(line.startswith("nbstripout==") for line in (ROOT / "requirements.txt").read_text().splitlines())
