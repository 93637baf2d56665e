"""Compile counts from JAX's monitoring events, stored with each record and summed by the report."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from grdr.experiments import critical_n
from grdr.experiments.sweep import compile_stats
from grdr.experiments.sweep.runner import run_experiment


def test_a_new_program_counts_once_and_a_cached_one_not_at_all():
    f = jax.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0)
    x = np.ones(17, np.float32)  # a shape nothing else here compiles
    before = compile_stats.snapshot()
    f(x).block_until_ready()
    first = compile_stats.since(before)
    assert first["count"] >= 1 and first["seconds"] > 0
    before = compile_stats.snapshot()
    f(x).block_until_ready()
    assert compile_stats.since(before)["count"] == 0


def test_records_carry_their_group_s_compilations_and_a_rerun_compiles_nothing(tmp_path):
    # shapes no other test compiles in this process (padding to buckets of 7), so the first run compiles
    cfg = dataclasses.replace(critical_n.PRESETS["smoke"], models=("dr_global",), dims=(1, 2, 3), bucket=7, seeds=(42,))

    def compiled(out):
        records = [json.loads(p.read_text()) for p in (out / "critical_n").glob("*.json")]
        return [r["compile"] for r in records if "compile" in r]  # the searches' records, not the probes'

    run_experiment(critical_n, cfg, tmp_path / "a", progress=False)
    run_experiment(critical_n, cfg, tmp_path / "b", progress=False)  # same shapes, same process
    first, second = compiled(tmp_path / "a"), compiled(tmp_path / "b")
    assert len(first) == len(second) == 3 and all(c["group_size"] == 1 for c in first)  # one search per d
    assert sum(c["count"] for c in first) > 0 and sum(c["count"] for c in second) == 0
