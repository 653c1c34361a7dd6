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
LAYERS = ["setup_tf", "machine", "colour", "photos", "pipelines", "contracts", "metrics", "data", "heads", "blocks", "gan", "models", "store",
          "distribute", "colorizer", "calibration", "plots", "evaluation", "callbacks", "training", "colorize"]


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
