"""critical_n's unit of work: one search per point (galloping, binary search, then the optional
sweep around n*), each probe a free-embedding training stored as its own record, so an interrupted
search resumes at its first unstored probe."""
from __future__ import annotations

import numpy as np

from grdr.experiments.critical_n.config import NAME, Config, _bounds, _probe_point, _side_params, pad_n
from grdr.experiments.limit_search import WELLER_TABLE6, critical_from, gallop_reach, next_n, non_monotone, weller_cubic
from grdr.sim.free_embedding import STOP_REASONS, FreeEmbeddingConfig, train_free_embedding

__all__ = ["run_group"]


def _train_probe(cfg: Config, q: dict, reach: int | None = None):
    """Train one probe (one model, d, n and seed), padded to its search's reach (pad_n); its (metrics,
    derived) and seconds."""
    fe_cfg = FreeEmbeddingConfig(dim=q["dim"], kind=q["kind"], temperature=cfg.temperature,
                                 learning_rate=q["learning_rate"], max_steps=q["max_steps"], patience=q["patience"],
                                 min_delta=q["min_delta"], eval_every=q["eval_every"], success=q["success"],
                                 docid_vocab=cfg.docid_vocab, decoder_depth=cfg.decoder_depth, matmul=q["matmul"],
                                 vectors=q.get("vectors", 1), doc_vectors=q.get("doc_vectors", 1))
    n = q["n_docs"]
    r = train_free_embedding(fe_cfg, n, [q["seed"]], pad_to=pad_n(cfg, q["kind"], n, reach),
                             docid_seed=q.get("docid_seed", 0))
    stop = STOP_REASONS[int(r.stop_S[0])]
    metrics = {"top2_accuracy": r.accuracy_S[0], "margin": r.margin_S[0], "solved": float(r.solved_S[0]),
               "solved_topk": float(r.solved_topk_S[0]), "solved_margin": float(r.solved_margin_S[0]),
               "steps": r.steps_S[0], "stopped_by_patience": float(stop == "patience"),
               "stopped_by_max_steps": float(stop == "max_steps"), "final_loss": r.loss_S[0], **_bounds(n)}
    return metrics, {"params": r.params, "n_padded": r.n_padded, **_side_params(q)}, r.seconds


def _search(cfg: Config, point: dict, out) -> tuple[dict[int, bool], dict[int, int], float]:
    """Run one seed's search to its end: its own draws, its own galloping, binary search and sweep,
    decided by its own outcomes only. With `out`, every probe's record is read from / written to the
    store, so an interrupted search resumes at its first unstored probe. Returns the outcome and the
    steps of every probed n, and the seconds its probes took."""
    from grdr.experiments.sweep import store

    outcomes: dict[int, bool] = {}
    steps: dict[int, int] = {}
    seconds = 0.0
    args = (point["n0"], point["n_max"], 2, point["sweep_below"], point["sweep_above"])
    while (n := next_n(outcomes, *args)) is not None:
        q = _probe_point(cfg, point["model"], point["dim"], n, point["seed"])
        if out is not None and store.exists(out, NAME, q):
            metrics = store.read_record(store.record_path(out, NAME, store.run_id(NAME, q)))["metrics"]
        else:
            metrics, derived, secs = _train_probe(cfg, q, gallop_reach(point["n0"], n, point["n_max"]))
            seconds += secs
            if out is not None:
                store.write_record(out, NAME, q, metrics, secs, derived)
        outcomes[n] = metrics["solved"] > 0
        steps[n] = int(metrics["steps"])
    return outcomes, steps, seconds


def run_group(cfg: Config, points, out=None):
    """Run the search of each point (the seeds of one (model, d)), one after another, and return each
    critical-n record's metrics. Seeds run one at a time, each probe through the compiled program of
    its search's reach: on 2 CPU cores, vmapping the seeds of a probe saved little at the n that
    dominate the cost (the steps cost scales with the seeds) and lost more to the slowest seed's steps
    and to compiling per number of seeds (see the module docstring)."""
    results, seconds = [], 0.0
    for point in (p.record() for p in points):
        outcomes, steps, secs = _search(cfg, point, out)
        seconds += secs
        args = (point["n0"], point["n_max"], 2, point["sweep_below"], point["sweep_above"])
        crit = critical_from(outcomes, *args)
        b = _bounds(max(crit, 3))
        solved_n = sorted(n for n, ok in outcomes.items() if ok)
        bumps = non_monotone(outcomes)
        metrics = {"critical_n": crit, "censored": float(crit >= point["n_max"]), "probes": len(outcomes),
                   "max_solved_n": max(solved_n, default=2), "non_monotone": len(bumps),
                   "steps_total": sum(steps.values()), "steps_max": max(steps.values(), default=0),
                   "weller_cubic": float(weller_cubic(point["dim"])),
                   "weller_table6": float(WELLER_TABLE6.get(point["dim"], np.nan)), **_side_params(point),
                   **{f"{k}_at_critical": v for k, v in b.items()}}
        results.append((metrics, {"probed_n": sorted(outcomes), "solved_n": solved_n, "non_monotone_n": bumps,
                                  "steps_by_n": {str(n): s for n, s in sorted(steps.items())},
                                  "probe_seconds": secs}))
    return results, seconds


# ---------------------------------------------------------------------------------------------
# Fit, comparisons and report. Every comparison between models reads one effect per seed.
