"""The registry is the one list of experiments: every module, figure and fit it names exists and
agrees with it, and nothing outside it names an experiment or a figure of its own."""
import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest

from grdr.experiments import catalog, registry

ROOT = Path(__file__).resolve().parents[2]


def _assigned(module_name: str, name: str):
    """A module-level constant read from the source (figure modules import matplotlib)."""
    tree = ast.parse(Path(importlib.util.find_spec(module_name).origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module_name} has no {name}")


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_each_entry_names_a_module_whose_name_is_its_own(entry):
    spec = importlib.util.find_spec(f"grdr.experiments.{entry.name}")
    assert spec is not None and spec.origin is not None
    assert registry.claim_of(entry.name)  # every experiment states its claim


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_each_figure_reads_the_records_of_its_entry(entry):
    for figure in entry.figures:
        assert _assigned(f"grdr.figures.{figure}", "EXPERIMENT") == entry.name


def test_every_figure_module_is_registered_once():
    modules = {p.stem for p in (ROOT / "figures").glob("*.py")} - {"__init__", "common"}
    assert sorted(registry.FIGURES) == sorted(modules)


def test_derived_lists_follow_the_entries():
    assert registry.EXPERIMENTS == tuple(e.name for e in registry.ENTRIES)
    assert len(set(registry.EXPERIMENTS)) == len(registry.EXPERIMENTS)
    assert sorted(registry.DEMO_ORDER) == sorted(registry.EXPERIMENTS)
    ranks = [registry.entry(n).demo_rank for n in registry.DEMO_ORDER]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert {f.experiment for f in registry.FITS} <= set(registry.EXPERIMENTS)


def test_an_entry_refuses_another_experiments_fit():
    with pytest.raises(ValueError, match="another experiment"):
        registry.Entry("a", 0, fits=(registry.Fit("b", "n_docs", "kl_true"),))


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match="known: drift_corpus"):
        catalog.load("no_such_experiment")


def test_the_consumers_read_the_registry():
    from grdr.experiments import fits, report
    from grdr import figures

    assert figures.FIGURES is registry.FIGURES
    assert fits.FITS is registry.FITS
    assert report.EXPERIMENTS is registry.EXPERIMENTS
    assert dataclasses.is_dataclass(fits.Fit) and fits.Fit is registry.Fit
