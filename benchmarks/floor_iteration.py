"""Seconds per L-BFGS iteration of model_scale's rank-D KL floor (sim.logprobs.low_rank_kl) at a preset's
corpus (seed 0): one start, every 1,000-iteration chunk run to its cap (stall 0), after a warm-up call that
compiles the objective; counts the objective's evaluations. The rows that experiments.work's floor_iter,
floor_cells and floor_work were fitted to (benchmarks/README.md, "KL floor per iteration"). With
`oracle:PRESET:H`, GR's oracle (sim.logprobs.seq_gr_oracle_kl) instead: 500 steps (the first call, which
compiles) then 1,000, `stall=-1` so that it runs them (oracle_program, oracle_work, oracle_cells).

    python -m grdr.benchmarks.floor_iteration smoke:2 quick:2 paper:2 paper:8
    python -m grdr.benchmarks.floor_iteration oracle:paper:2 oracle:paper:16 oracle:quick:2 oracle:quick:16
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time


def time_floor(preset: str, dim: int, iters: int = 3_000) -> dict:
    import grdr.sim.logprobs as logprobs
    from grdr.experiments import model_scale
    from grdr.experiments.pipeline import corpus_for

    calls = [0]
    objective = logprobs._kl_and_grad

    def counted(*args):
        calls[0] += 1
        return objective(*args)

    target = logprobs.true_log_probs(corpus_for(dataclasses.replace(model_scale.PRESETS[preset].corpus, seed=0)))
    logprobs._kl_and_grad = counted
    try:
        logprobs.low_rank_kl(target, dim, restarts=1, max_iter=1_000, stall=0.0)  # compiles
        calls[0], load = 0, os.getloadavg()[0]
        start = time.perf_counter()
        logprobs.low_rank_kl(target, dim, restarts=1, max_iter=iters, stall=0.0)
        seconds = time.perf_counter() - start
    finally:
        logprobs._kl_and_grad = objective
    M, N = target.shape
    return {"preset": preset, "M": M, "N": N, "D": dim, "evals": calls[0], "seconds": seconds,
            "ms_per_eval": 1e3 * seconds / calls[0], "load": load}


def time_oracle(preset: str, hidden: int, steps=(500, 1_000)) -> list[dict]:
    from grdr.experiments import model_scale
    from grdr.experiments.pipeline import corpus_for, docids_for
    from grdr.sim.logprobs import seq_gr_oracle_kl, true_log_probs

    cfg = model_scale.PRESETS[preset]
    spec = dataclasses.replace(cfg.corpus, seed=0)
    target, docids = true_log_probs(corpus_for(spec)), docids_for(cfg.docids, spec)
    rows = []
    for n in steps:
        load, start = os.getloadavg()[0], time.perf_counter()
        fit = seq_gr_oracle_kl(target, docids, hidden, max_steps=n, check=500, stall=-1.0)
        rows.append({"preset": preset, "H": hidden, "steps": fit.steps, "seconds": time.perf_counter() - start,
                     "load": load})
    return rows


def main(argv=None):
    for arg in (argv if argv is not None else sys.argv[1:]) or ["smoke:2", "quick:2", "paper:2", "paper:8"]:
        if arg.startswith("oracle:"):
            _, preset, hidden = arg.split(":")
            for row in time_oracle(preset, int(hidden)):
                print(row, flush=True)
            continue
        preset, dim = arg.split(":")
        print(time_floor(preset, int(dim)), flush=True)


if __name__ == "__main__":
    main()
