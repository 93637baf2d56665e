"""The project installs as one package, grdr: its folders (theory/, sim/, ...) import as grdr.theory,
grdr.sim, ... (pyproject's package-dir), and no module imports them under a top-level name, which would
work only from the repository's root and load a second copy of the module there."""
import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("theory", "sim", "realdata", "experiments", "figures", "benchmarks")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_with_an_init_is_an_installed_package():
    setuptools = _pyproject()
    assert setuptools["package-dir"] == {"grdr": "grdr", **{f"grdr.{f}": f for f in FOLDERS}}
    found = {"grdr"}
    for folder in ("grdr", *FOLDERS):
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            found.add(".".join(parts if parts[0] == "grdr" else ("grdr", *parts)))
    assert set(setuptools["packages"]) == found, "pyproject.toml's packages and the folders with an __init__.py differ"


def test_no_module_imports_a_folder_by_its_top_level_name():
    wrong = []
    for folder in ("grdr", *FOLDERS, "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else [])
                wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in FOLDERS]
    assert not wrong, "import these as grdr.<folder>: " + "; ".join(wrong)
