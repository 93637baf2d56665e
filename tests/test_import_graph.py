"""Imports run one way: the graph of the project's modules, read from their `import` statements
(module level and inside functions alike) and from what they load through importlib, has no cycle."""
import ast
from pathlib import Path

import pytest

from grdr.experiments.registry import EXPERIMENTS, FIGURES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "sim", "realdata", "experiments", "figures", "grdr", "benchmarks")  # folders; all import as grdr.*
# What a module loads by name at run time: an f-string prefix, or a call whose argument is a variable
# (the Ray executor re-imports, in a worker, the experiment module that the driver handed it).
DYNAMIC = {"grdr.experiments.": [f"grdr.experiments.{n}" for n in EXPERIMENTS],  # experiments.catalog
           "grdr.figures.": [f"grdr.figures.{n}" for n in FIGURES]}
DYNAMIC_BY_MODULE = {"grdr.experiments.sweep.ray_executor": DYNAMIC["grdr.experiments."]}


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[0] != "grdr":  # the folder theory/ installs as grdr.theory (pyproject's package-dir)
                parts = ["grdr", *parts]
            found[".".join(parts)] = path
    return found


def _resolve(name: str, known) -> str | None:
    """The project module that `name` (a module, or a name inside one) lives in, if any."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    graph = {m: set() for m in known}
    for mod, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_package else mod.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module
                targets = [f"{source}.{a.name}" for a in node.names]  # a submodule, or a name in `source`
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant):
                    targets = [arg.value]
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    prefix = arg.values[0].value
                    if prefix not in DYNAMIC:
                        raise AssertionError(f"{path}: loads modules named {prefix!r}... through importlib; "
                                             "declare what it loads in DYNAMIC")
                    targets = DYNAMIC[prefix]
                else:
                    if mod not in DYNAMIC_BY_MODULE:
                        raise AssertionError(f"{path}: loads a module named by a variable; declare it in DYNAMIC_BY_MODULE")
                    targets = DYNAMIC_BY_MODULE[mod]
            for target in targets:
                found = _resolve(target, known)
                if found and found != mod:
                    graph[mod].add(found)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_project_imports_have_no_cycle():
    graph = import_graph()
    assert len(graph) > 100 and "grdr.experiments.catalog" in graph["grdr.experiments.report"]
    assert "grdr.experiments.drift_corpus" in graph["grdr.experiments.catalog"]  # loaded by name, through importlib
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_imports_inside_functions_and_through_importlib(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "sim" / "a.py").write_text("def f():\n    from grdr.sim import b\n")
    (tmp_path / "sim" / "b.py").write_text("import grdr.sim.a\n")
    graph = import_graph(tmp_path)
    assert graph["grdr.sim.a"] == {"grdr.sim.b"} and graph["grdr.sim.b"] == {"grdr.sim.a"}
    assert find_cycle(graph) in (["grdr.sim.a", "grdr.sim.b", "grdr.sim.a"], ["grdr.sim.b", "grdr.sim.a", "grdr.sim.b"])

    (tmp_path / "sim" / "b.py").write_text("")
    (tmp_path / "experiments" / "loader.py").write_text(
        "import importlib\n\ndef load(name):\n    return importlib.import_module(f'grdr.experiments.{name}')\n")
    (tmp_path / "experiments" / f"{EXPERIMENTS[0]}.py").write_text("from grdr.experiments.loader import load\n")
    graph = import_graph(tmp_path)
    assert set(find_cycle(graph)) == {"grdr.experiments.loader", f"grdr.experiments.{EXPERIMENTS[0]}"}
    assert f"grdr.experiments.{EXPERIMENTS[0]}" in graph["grdr.experiments.loader"]
    assert find_cycle(graph) is not None


@pytest.mark.parametrize("figure", FIGURES)
def test_figures_do_not_load_the_training_stack(figure):
    """A figure reads records, names and labels: it never imports the models or the trainers."""
    import subprocess
    import sys

    code = f"import sys, grdr.figures.{figure}; print(sorted(m for m in ('flax', 'optax') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
