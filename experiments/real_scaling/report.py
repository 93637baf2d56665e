"""real_scaling's report section, verdicts and paired significance tables (kept apart from the
experiment so that it stays one screenful of protocol).

Significance: per collection and sweep, at the largest corpus (and, on a D / H sweep, the largest
width), every model and outside run against BM25 and every pair of them, on nDCG@10 and Success@1
(and R@2 on a D / H sweep), over the collection's evaluation queries. A model's per-query value is
its mean over the seeds of one configuration (so a pair is compared query by query, with the seeds'
noise averaged out; the record says how many seeds). Each (collection, measure) table is one family
for Holm's correction, applied to the randomisation test's p (experiments.verdict.significance). The
per-query values are read from <out>/real_scaling/perquery/<run_id>.csv; records written before
those files existed are left out of the tests, and the report says so.

A measure deeper than a run (R@100 of a run that ranks 20 documents per query) is reported as what
it is, "R@100 (run depth 20)": documents below the run's depth count as not retrieved. A model that
ranks its whole corpus (Config.k >= N) is complete at every depth.
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pandas as pd

from grdr.experiments.verdict import significance
from grdr.experiments.real_scaling.config import BM25_SETTINGS, MEASURES, NAME
from grdr.experiments.verdict.seeds import one_config_per_cell
from grdr.experiments.variants import VARIANTS, label
from grdr.sim.metrics import parse_measure

__all__ = ["SIGNIFICANCE_MEASURES", "findings", "report", "significance_table", "write_significance", "measure_label",
           "run_depth"]

SIGNIFICANCE_MEASURES = ("nDCG@10", "Success@1")
_CELL = ["model", "path", "sweep", "n_docs", "dim"]
# seeds: the runs a system's per-query values average; depth: documents per query its run ranks (inf: all)
CONTEXT = ["collection", "path", "sweep", "n_docs", "width", "measure", "measure_label", "seeds_a", "seeds_b",
           "depth_a", "depth_b"]


def bm25_label(record) -> str:
    """"BM25" for grdr's default settings, else the settings, so that two settings are not averaged together."""
    values = [record.get(f"bm25_{k}") for k in ("k1", "b", "stemmer", "stopwords")]
    values = [v for v in values if isinstance(v, str) or (v is not None and v == v)]  # NaN: older records
    settings = dict(zip(("k1", "b", "stemmer", "stopwords"), values)) if len(values) == 4 else {}
    default = {k.removeprefix("bm25_"): v for k, v in BM25_SETTINGS["bm25s"].items()}
    if not settings or settings == default:
        return "BM25"
    if settings == {k.removeprefix("bm25_"): v for k, v in BM25_SETTINGS["pyserini"].items()}:
        return "BM25 (pyserini)"
    return (f"BM25 (k1 {settings['k1']:g}, b {settings['b']:g}, {settings['stemmer']}, "
            f"stopwords {settings['stopwords']})")


def _label(record) -> str:
    return bm25_label(record) if record["model"] == "bm25" else label(record["model"])


def run_depth(record) -> float:
    """How deep a record's run ranks: an outside run's most documents per query; a model's or BM25's
    min(k, N), or infinity when that is the whole corpus (no measure is deeper than it)."""
    if record.get("kind") == "run":
        return float(record["k"])
    k, n = record.get("k"), record.get("n_docs")
    if k is None or n is None or k != k:
        return math.inf
    return math.inf if k >= n else float(k)


def measure_label(measure: str, depths) -> str:
    """`measure`, or "R@100 (run depth 20)" when a run among `depths` stops above its cutoff."""
    cutoff = parse_measure(measure).cutoff
    short = [d for d in depths if cutoff is not None and d < cutoff]
    return f"{measure} (run depth {int(min(short))})" if short else measure


def _depth_note(d: pd.DataFrame) -> str | None:
    """The records' measures that are deeper than their runs, named for what they are, with the systems."""
    shallow: dict[str, list[str]] = {}
    for _, r in d.drop_duplicates("model").iterrows():
        for m in MEASURES:
            if (named := measure_label(m, [run_depth(r)])) != m:
                shallow.setdefault(named, []).append(_label(r))
    if not shallow:
        return None
    return ("Deeper than the runs (documents below a run's depth count as not retrieved; Config.k sets the models' "
            "and BM25's depth): " + " ".join(f"{k}: {'; '.join(v)}." for k, v in shallow.items()))


def findings(df) -> list:
    """Per collection swept over N: does each sampled-softmax DR fall further behind (Success@1)?"""
    from grdr.experiments.verdict.findings import slope_finding

    found = []
    sized = df[df["sweep"] == "size"]
    for path, d in sized.groupby("path", sort=True):
        if d["n_docs"].nunique() < 2:
            continue
        models = set(d["model"])
        for local in [m for m in VARIANTS if VARIANTS[m].objective == "local" and m in models]:
            for ref in [m for m in ("dr_global", "atomic_gr", "seq_gr") if m in models]:
                title = f"{d['collection'].iloc[0]}: {label(local)} vs {label(ref)}"
                found.append(slope_finding(NAME, d, local, ref, "Success@1", title, higher_is_better=True,
                                           negligible=0.02))
    return found


def _per_query(folder: Path, run_id: str, cache: dict) -> pd.DataFrame | None:
    """A record's per-query values as a query_id x measure frame (None: no file, an older record)."""
    if run_id not in cache:
        path = folder / "perquery" / f"{run_id}.csv"
        cache[run_id] = None
        if path.is_file():
            long = pd.read_csv(path, dtype={"query_id": str, "measure": str}, keep_default_na=False)
            cache[run_id] = long.pivot(index="query_id", columns="measure", values="value")
    return cache[run_id]


def _groups(df: pd.DataFrame):
    """(path, sweep, N, width, the rows compared) per collection and sweep: the largest N (and width)."""
    for path, d in df.groupby("path", sort=True):
        kinds = [k for k in ("size", "dim") if (d["sweep"] == k).any()] or ["baseline"]
        for kind in kinds:
            g = d[d["sweep"] == kind]
            n = int(g["n_docs"].max())
            g = g[g["n_docs"] == n]
            width = None
            if kind == "dim":
                width = int(g["dim"].max())
                g = g[g["dim"] == width]
            bm25 = d[(d["model"] == "bm25") & (d["n_docs"] == n)]
            outside = d[d["kind"] == "run"]  # the same queries and qrels at any N
            rows = pd.concat([g[g["model"] != "bm25"] if kind == "baseline" else g, bm25, outside])
            yield path, kind, n, width, rows.drop_duplicates("run_id")


def significance_table(df: pd.DataFrame, out,
                       permutations: int = significance.PERMUTATIONS) -> tuple[pd.DataFrame, list]:
    """Every comparison of every collection (CONTEXT + significance.COLUMNS), and the systems left out
    for want of per-query files."""
    df, _ = one_config_per_cell(df, _CELL)
    folder, cache, tables, missing = Path(out) / NAME, {}, [], []
    for path, kind, n, width, rows in _groups(df):
        systems, depths, seeds = {}, {}, {}
        order = [m for m in VARIANTS if m in set(rows["model"])] + sorted(
            m for m in set(rows["model"]) if m not in VARIANTS and m != "bm25") + ["bm25"]
        for model in order:
            r = rows[rows["model"] == model]
            if r.empty:
                continue
            name = _label(r.iloc[0])
            frames = [_per_query(folder, rid, cache) for rid in r["run_id"]]
            if any(f is None for f in frames):
                missing.append(f"{r['collection'].iloc[0]}: {name}")
                continue
            systems[name], depths[name], seeds[name] = frames, run_depth(r.iloc[0]), len(frames)
        bm25 = next((s for s in systems if s.startswith("BM25")), None)
        others = [s for s in systems if s != bm25]
        pairs = [(a, bm25) for a in others if bm25] + list(itertools.combinations(others, 2))
        if not pairs:
            continue
        measures = SIGNIFICANCE_MEASURES + (("R@2",) if kind == "dim" else ())
        for measure in measures:
            values = {s: pd.concat([f[measure] for f in frames], axis=1).mean(axis=1).to_dict()
                      for s, frames in systems.items()}
            table = significance.comparison_table(values, pairs, permutations).assign(
                collection=rows["collection"].iloc[0], path=path, sweep=kind, n_docs=n, width=width, measure=measure,
                measure_label=[measure_label(measure, (depths[a], depths[b])) for a, b in pairs],
                seeds_a=[seeds[a] for a, _ in pairs], seeds_b=[seeds[b] for _, b in pairs],
                depth_a=[depths[a] for a, _ in pairs], depth_b=[depths[b] for _, b in pairs])
            tables.append(table[CONTEXT + significance.COLUMNS])
    columns = CONTEXT + significance.COLUMNS
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)), missing


def write_significance(table: pd.DataFrame, out) -> Path:
    """<out>/real_scaling/significance.csv: these collections' rows replace theirs, others' stay."""
    path = Path(out) / NAME / "significance.csv"
    if path.is_file() and path.stat().st_size:
        kept = pd.read_csv(path, dtype={"system_a": str, "system_b": str}, keep_default_na=False, na_values=[""])
        order = list(table.columns)
        table = pd.concat([kept[~kept["path"].isin(set(table["path"]))], table], ignore_index=True)
        table = table[order + [c for c in table.columns if c not in order]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def _significance_lines(table: pd.DataFrame, missing: list) -> list[str]:
    lines = []
    for (path, kind), t in table.groupby(["path", "sweep"], sort=False):
        r = t.iloc[0]
        where = f"N = {int(r['n_docs']):,}" + (f", width D = H = {int(r['width'])}" if kind == "dim" else "")
        seeds = int(t[["seeds_a", "seeds_b"]].max().max())
        lines += [f"**{r['collection']}**, paired tests over its {int(t['n_queries'].max()):,} queries at {where} "
                  f"(a model's per-query values averaged over its {seeds} seed{'s' if seeds > 1 else ''}; "
                  f"randomisation: {int(r['permutations']):,} sign flips, seed {significance.SEED}; Holm over the "
                  f"{len(t) // t['measure'].nunique()} comparisons of each table, on the randomisation p):", ""]
        for measure, m in t.groupby("measure", sort=False):
            cutoff = parse_measure(measure).cutoff or math.inf
            shallow = {f"{s} ({measure_label(measure, [d])})" for s, d in itertools.chain(
                zip(m["system_a"], m["depth_a"]), zip(m["system_b"], m["depth_b"])) if d < cutoff}
            lines += [measure + (f"; rows with {'; '.join(sorted(shallow))}" if shallow else "") + ":", "",
                      significance.markdown(m), ""]
    if missing:
        lines += [f"Left out of the tests (records written before per-query files were kept): {'; '.join(missing)}.",
                  ""]
    return lines


def report(df, out=None) -> str:
    """Report section: metrics against N per collection, and R@2 against D / H on the dim collections;
    given `out`, the significance tables (also written to significance.csv)."""
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.tables import mean_table

    df = df.assign(label=[_label(r) for _, r in df.iterrows()])
    lines = []
    dims = df[df["sweep"] == "dim"]
    for path, d in df[df["sweep"].isin(["size", "baseline"])].groupby("path", sort=True):
        sized = d["sweep"] == "size"
        if not sized.any() and path in set(dims["path"]):
            continue  # only the BM25 of a D / H sweep, reported below
        if sized.any():
            d = d[d["n_docs"].isin(set(d.loc[sized, "n_docs"]))]
        lines += [f"**{d['collection'].iloc[0]}** ({d['format'].iloc[0]}, trained on its {d['train_on'].iloc[0]} "
                  "queries), Success@1 and nDCG@10 against N (mean ± 95% interval over seeds):", "",
                  mean_table(d, "label", "n_docs", "Success@1"), "", mean_table(d, "label", "n_docs", "nDCG@10"), ""]
        if note := _depth_note(df[df["path"] == path]):
            lines += [note, ""]
    if not dims.empty:
        dims = dims.assign(dim=dims["dim"].astype(int))
    for path, d in dims.groupby("path", sort=True):
        name = d["collection"].iloc[0]
        lines += [f"**{name}**, R@2 against D (DR) and H (GR) at N = {int(d['n_docs'].iloc[0])} "
                  f"(trained on its {d['train_on'].iloc[0]} queries):", "", mean_table(d, "label", "dim", "R@2"), ""]
        base = df[(df["model"] == "bm25") & (df["path"] == path) & (df["n_docs"] == d["n_docs"].iloc[0])]
        if not base.empty:
            lines += [f"BM25: R@2 = {base['R@2'].iloc[0]:.3f}.", ""]
        for _, r in df[(df["kind"] == "run") & (df["path"] == path)].iterrows():
            lines += [f"{r['model']} (outside run, depth {int(r['k'])}): R@2 = {r['R@2']:.3f}.", ""]
        for model, m in d.groupby("label", sort=False):
            means = m.groupby("dim")["R@2"].mean()
            reach = means[means >= 0.9]
            lines.append(f"- {model}: best mean R@2 {means.max():.3f} (width {means.idxmax()}); "
                         + (f"0.9 reached at width {reach.index.min()}" if len(reach) else "0.9 not reached"))
        if note := _depth_note(df[df["path"] == path]):
            lines += ["", note]
        if "limit" in name.lower():
            lines += ["", "LIMIT-small: Weller, Boratko, Naim, Lee (2025), CC-BY 4.0."]
        lines.append("")
    if out is not None:
        table, missing = significance_table(df.drop(columns="label"), out)
        if not table.empty:
            write_significance(table, out)
        lines += _significance_lines(table, missing)
    found = findings(df)
    if found:
        lines += ["Verdicts: slope per decade of N of the paired Success@1 gap (> 0: the sampled DR falls further "
                  "behind as the collection grows):", ""] + finding_lines(found)
    return "\n".join(lines)
