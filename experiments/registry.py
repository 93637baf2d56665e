"""The one list of experiments: each entry names an experiment module, the figure modules that draw
its records, the power laws fitted to them and its place in the demo. The sweep runner, the report,
`grdr figures`, `grdr fit` and `grdr demo` all read it, so adding an experiment is its module, its
figure, its test and one Entry here.

No JAX and no experiment module: `grdr list` and `grdr --help` read it, an experiment's claim is read
from its source, and what the experiments themselves import (the fits, say) may read it without a loop.
experiments.catalog loads the modules it names.
"""
from __future__ import annotations

import dataclasses

__all__ = ["Fit", "Entry", "ENTRIES", "EXPERIMENTS", "FIGURES", "FITS", "DEMO_ORDER", "entry", "claim", "claim_of"]


@dataclasses.dataclass(frozen=True)
class Fit:
    """One family of fits: `metric` against config field `x`, one curve per value of `by`.

    With `pairs` ((model, reference) names), the law is fitted to the paired gap instead: per seed (one
    corpus) and x, metric(model) - metric(reference), one curve per pair (named "model - reference"; the
    fitted metric is `fitted_metric`, "<metric>_gap", unbounded)."""
    experiment: str
    x: str
    metric: str
    by: tuple[str, ...] = ("model",)
    pairs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not self.by:
            raise ValueError("Fit.by: expected at least one config field naming a curve")
        if self.pairs and (self.by[0] != "model" or any(len(p) != 2 or p[0] == p[1] for p in self.pairs)):
            raise ValueError(f"Fit.pairs={self.pairs}: expected (model, reference) pairs of two models, with the "
                             "curves named by model first (by[0] == 'model')")

    @property
    def fitted_metric(self) -> str:
        """The metric of the fitted rows: `metric`, or its paired gap."""
        return f"{self.metric}_gap" if self.pairs else self.metric


@dataclasses.dataclass(frozen=True)
class Entry:
    """An experiment: the module experiments.<name>, the modules figures.<f> for f in `figures`, the
    laws fitted to its records, and `demo_rank` (the demo starts lower ranks first: the longest at
    `quick` first, so that a pool of workers finishes together)."""
    name: str
    demo_rank: int
    figures: tuple[str, ...] = ()
    fits: tuple[Fit, ...] = ()

    def __post_init__(self):
        for fit in self.fits:
            if fit.experiment != self.name:
                raise ValueError(f"Entry({self.name!r}).fits: {fit} fits another experiment's records")


# drift_corpus's paired gaps (sampled minus full softmax, the same architecture; experiments.drift_corpus's
# first two COMPARISONS): the tower and the free table
DRIFT_PAIRS = (("dr_local_uniform", "dr_global"), ("dr_table_local_uniform", "dr_table_global"))

ENTRIES = (
    Entry("drift_corpus", 0, ("drift_corpus",), (Fit("drift_corpus", "n_docs", "Success@1"),
                                                 Fit("drift_corpus", "n_docs", "kl_true"),
                                                 Fit("drift_corpus", "n_docs", "kl_true", pairs=DRIFT_PAIRS))),
    Entry("drift_mechanism", 1, ("drift_mechanism",)),
    Entry("negatives", 5, ("negatives",), (Fit("negatives", "n_docs", "kl_true", by=("model", "corpus_zipf")),)),
    Entry("capacity_dim", 6, ("capacity_dim",),
          (Fit("capacity_dim", "dim", "kl_true", by=("model", "corpus_latent_rank", "corpus_zipf")),)),
    Entry("model_scale", 7, ("model_scale",), (Fit("model_scale", "params", "kl_true", by=("model", "depth")),
                                               Fit("model_scale", "params", "Success@1", by=("model", "depth")))),
    Entry("critical_n", 2, ("critical_n",)),
    Entry("real_scaling", 3, ("real_scaling",)),
    Entry("theory_curves", 8, ("theory_deficit", "theory_gradient", "theory_fixed_point", "theory_rank")),
    Entry("similarity", 4, ("similarity",)),
)

EXPERIMENTS = tuple(e.name for e in ENTRIES)
FIGURES = tuple(f for e in ENTRIES for f in e.figures)
FITS = tuple(fit for e in ENTRIES for fit in e.fits)
DEMO_ORDER = tuple(e.name for e in sorted(ENTRIES, key=lambda e: e.demo_rank))


def entry(name: str) -> Entry:
    for e in ENTRIES:
        if e.name == name:
            return e
    raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")


def claim(module) -> str:
    return (module.__doc__ or "").strip().splitlines()[0]


def claim_of(name: str) -> str:
    """An experiment's claim (its docstring's first line) read from its source, without importing it
    (an experiment imports JAX, which `grdr list` and `grdr --help` do not need)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(f"grdr.experiments.{entry(name).name}")
    if spec is None or spec.origin is None:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    with open(spec.origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
