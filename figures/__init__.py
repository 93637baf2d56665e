"""Figures read stored records only (never recompute). One module per figure, named by its
experiment's entry in experiments.registry, each with EXPERIMENT (the records it reads), plot(DataFrame) -> matplotlib Figure and, for the report's caption,
CAPTION (what is drawn and what each line means; the module docstring's first paragraph where absent)."""
from __future__ import annotations

import importlib
from pathlib import Path

__all__ = ["FIGURES", "render_all", "caption_of"]

from grdr.experiments.registry import FIGURES  # every experiment's figures, in the registry's order


def render_all(out, only=None, quarantine: bool = False) -> list[Path]:
    """Render every figure (or those named in `only`) whose experiment has records under `out`, as
    <out>/figures/<name>.png and, for papers, <name>.pdf (vector) beside it; return the PNG paths.
    An unreadable record raises experiments.store.StoreError (naming it), or with quarantine is
    moved aside."""
    from grdr.experiments.sweep.store import StoreError, load
    from grdr.figures.common import plt

    paths = []
    for name in FIGURES if only is None else [f for f in FIGURES if f in only]:
        module = importlib.import_module(f"grdr.figures.{name}")
        df = load(out, module.EXPERIMENT, missing_ok=True, quarantine=quarantine)
        if df.empty:
            continue
        try:
            fig = module.plot(df)
        except KeyError as err:  # records that passed the schema but lack what this figure draws
            raise StoreError(f"{Path(out) / module.EXPERIMENT}: the records lack the field {err} that the figure "
                             f"{name} draws (written by another version of grdr, or edited by hand?)") from None
        path = Path(out) / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        fig.savefig(path.with_suffix(".pdf"))
        plt.close(fig)
        paths.append(path)
    return paths


def caption_of(name: str) -> str:
    """A figure's caption, read from its module's source without importing it (a figure module may
    import the theory, and the report needs only the text): its CAPTION, else the first paragraph of
    its docstring."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(f"grdr.figures.{name}")
    if spec is None or spec.origin is None:
        return ""
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CAPTION" for t in node.targets):
            try:
                return " ".join(str(ast.literal_eval(node.value)).split())
            except ValueError:
                break
    doc = ast.get_docstring(tree) or ""
    return " ".join(doc.split("\n\n")[0].split())
