"""The code's shape, as issues 14 and 21 ask it to stay: modules in layers (none imports one above
it), short functions, no module reaching into another's private names, saved-model paths built in
store.py only, figures drawn in plots.py only."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = sorted(p for p in ROOT.glob("*.py"))
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500  # issue 21: no module over ~450 lines
# The modules from the bottom up, one concern each: a module imports only modules listed before it.
LAYERS = ["machine", "setup_tf", "colour", "photos", "pipelines", "contracts", "metrics", "data", "heads", "blocks", "gan", "models", "store",
          "runfiles", "distribute", "colorizer", "calibration", "plots", "evaluation", "callbacks", "settings", "training", "colorize"]


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def test_every_module_has_its_layer():
    assert sorted(LAYERS) == sorted(p.stem for p in LIBRARY), "add the new module to LAYERS, above what it imports"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_no_module_imports_upwards(path):
    below = set(LAYERS[:LAYERS.index(path.stem)])
    imported = {alias.name.split(".")[0] for node in ast.walk(_tree(path)) if isinstance(node, ast.Import)
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(_tree(path))
                                            if isinstance(node, ast.ImportFrom) and node.module}
    upward = sorted((imported & set(LAYERS)) - below)
    assert not upward, f"{path.name} imports {upward}, which are not below it in LAYERS"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_modules_are_short(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.name} has {n} lines; split it by concern"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_functions_are_short(path):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(_tree(path))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("path", LIBRARY + sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_no_module_uses_another_modules_private_names(path):
    modules = {p.stem for p in LIBRARY}
    used = [f"{node.value.id}.{node.attr} (line {node.lineno})" for node in ast.walk(_tree(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
            and node.value.id != path.stem and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not used, f"{path.name} uses private names of other modules: {used}"


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.name != "store.py"] + sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: p.name)
def test_saved_model_paths_are_built_in_store_only(path):
    """No '.keras' / '.json' file name is put together outside store.py (a temporary file aside)."""
    found = [f"line {node.lineno}" for node in ast.walk(_tree(path)) if isinstance(node, ast.JoinedStr)
             and any(isinstance(v, ast.Constant) and str(v.value).endswith((".keras", ".weights.h5"))
                     for v in node.values)]
    assert not found, f"{path.name} builds saved-model file names: {found}"


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.name != "plots.py"], ids=lambda p: p.name)
def test_figures_are_drawn_in_plots_only(path):
    src = path.read_text()
    drawing = ("matplotlib.pyplot", "import matplotlib\n", "matplotlib.figure", "visualkeras")  # colour names are not drawing
    assert not any(d in src for d in drawing), f"{path.name} draws figures; move it to plots.py"


def _project_module(filename):
    p = pathlib.Path(filename)
    return p.stem if p.suffix == ".py" and p.parent == ROOT else None


def test_a_photo_goes_down_through_the_modules(tmp_path):
    """Issue 21: colorize.py on one photo with the default model, loading included, crosses from one
    project module into another at most 10 times (counted as ../shared/tools/trace_path.py counts
    them: after a warm-up run, each call that enters another project module)."""
    import sys
    import numpy as np
    from PIL import Image
    import colorize
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(photo)
    assert colorize.main([str(photo), "-o", str(tmp_path / "warm")]) == 0
    path = []

    def profile(frame, event, arg):
        module = _project_module(frame.f_code.co_filename) if event == "call" else None
        if module and (not path or path[-1] != module):
            path.append(module)

    sys.setprofile(profile)
    try:
        rc = colorize.main([str(photo), "-o", str(tmp_path / "traced")])
    finally:
        sys.setprofile(None)
    assert rc == 0 and Image.open(tmp_path / "traced" / "p_color.png").size == (80, 60)
    assert path[0] == "colorize" and path[-1] == "machine" and "heads" in path, path
    assert len(path) - 1 <= 10, " > ".join(path)
