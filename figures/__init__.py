"""Figures read stored records only (never recompute). One module per figure, each with
EXPERIMENT (the records it reads) and plot(DataFrame) -> matplotlib Figure."""
from __future__ import annotations

import importlib
from pathlib import Path

__all__ = ["FIGURES", "render_all"]

FIGURES = ("drift_corpus", "drift_mechanism", "negatives", "capacity_dim", "model_scale", "critical_n", "real_scaling",
           "theory_deficit", "theory_gradient", "theory_fixed_point", "theory_rank", "similarity")


def render_all(out, only=None, quarantine: bool = False) -> list[Path]:
    """Render every figure (or those named in `only`) whose experiment has records under `out`, as
    <out>/figures/<name>.png and, for papers, <name>.pdf (vector) beside it; return the PNG paths.
    An unreadable record raises experiments.store.StoreError (naming it), or with quarantine is
    moved aside."""
    from experiments.store import load
    from figures.common import plt

    paths = []
    for name in FIGURES if only is None else [f for f in FIGURES if f in only]:
        module = importlib.import_module(f"figures.{name}")
        df = load(out, module.EXPERIMENT, missing_ok=True, quarantine=quarantine)
        if df.empty:
            continue
        fig = module.plot(df)
        path = Path(out) / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        fig.savefig(path.with_suffix(".pdf"))
        plt.close(fig)
        paths.append(path)
    return paths
