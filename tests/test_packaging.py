"""The project installs as one package, grdr: its folders (theory/, sim/, ...) import as grdr.theory,
grdr.sim, ... (pyproject's package-dir), and no module imports them under a top-level name, which would
work only from the repository's root and load a second copy of the module there: neither in an import
statement, nor by a literal name given to __import__ or importlib.import_module, nor in code that a test
hands to `python -c` or writes out to run (a string holding `import <folder>` or `from <folder> import`)."""
import ast
import re
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


_NAMES = "|".join(FOLDERS)
_CODE_IMPORT = re.compile(rf"(?:^|[\s;:(])(?:import\s+(?:\w+\s*,\s*)*(?:{_NAMES})\b(?![/-])"
                          rf"|from\s+(?:{_NAMES})(?:\.\w+)*\s+import\b)")
_IMPORTERS = {"__import__", "import_module", "find_spec"}


def _bare_names_in_code(tree) -> list[tuple[int, str]]:
    """(line, name) of every folder imported by its top-level name in a string of code, or named by a
    literal to __import__ / importlib.import_module / importlib.util.find_spec."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in _IMPORTERS and node.args[0].value.split(".")[0] in FOLDERS:
                found.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, m.group(0).strip(" ;:(")) for m in _CODE_IMPORT.finditer(node.value)]
    return found


def test_no_test_runs_code_that_imports_a_folder_by_its_top_level_name():
    """`python -c "import experiments.registry"` and __import__("experiments.registry") work only from the
    repository's root; a test's code strings and literal imports name grdr.<folder> like its imports do."""
    wrong = []
    for folder in ("grdr", *FOLDERS, "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():  # its own samples of what the check catches
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            wrong += [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in _bare_names_in_code(tree)]
    assert not wrong, "import these as grdr.<folder>: " + "; ".join(wrong)


def test_the_code_string_check_catches_bare_names_and_passes_installed_ones():
    bad = ast.parse("subprocess.run([sys.executable, '-c', 'import sys; import experiments.registry as r'])\n"
                    "code = 'from figures.common import plt'\n"
                    "__import__('experiments.registry')\n"
                    "importlib.import_module('sim.corpus')\n")
    assert sorted(_bare_names_in_code(bad)) == [(1, "import experiments"), (2, "from figures.common import"),
                                                (3, "experiments.registry"), (4, "sim.corpus")]
    good = ast.parse("subprocess.run([sys.executable, '-c', 'import grdr.experiments.registry'])\n"
                     "code = 'from grdr.figures.common import plt'\n"
                     "__import__('grdr.experiments.registry')\n"
                     "text = 'records read from experiments/ and figures/; import json'\n")
    assert _bare_names_in_code(good) == []
