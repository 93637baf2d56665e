"""sim.retrieve.topk_sharded on 4 host devices equals single-device topk.

XLA_FLAGS must be set before jax is imported, so the comparison runs in a fresh
interpreter and reports back as JSON.
"""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json
import jax
import numpy as np
from grdr.sim.retrieve import topk, topk_sharded

assert jax.device_count() == 4, jax.devices()
rng = np.random.default_rng(0)
meshes = {"docs": (jax.make_mesh((4,), ("docs",)), None),
          "queries x docs": (jax.make_mesh((2, 2), ("queries", "docs")), "queries")}
report = []
# Integer data first, then float data of the same shapes (so each shape compiles once).
for num_docs, with_bias, mesh_name in ((1000, False, "docs"), (1003, True, "docs"),
                                       (1003, True, "queries x docs"), (1000, False, "queries x docs")):
    mesh, query_axis = meshes[mesh_name]
    for data in ("integer", "float"):
        if data == "integer":  # exact dot products: results must match bit for bit
            queries = rng.integers(-2, 3, (6, 8)).astype(np.float32)
            docs = rng.integers(-2, 3, (num_docs, 8)).astype(np.float32)
        else:
            queries = rng.standard_normal((6, 8)).astype(np.float32)
            docs = rng.standard_normal((num_docs, 8)).astype(np.float32)
        bias_N = rng.integers(-1, 2, num_docs).astype(np.float32) if with_bias else None
        want = topk(queries, docs, 20, doc_bias_N=bias_N, chunk_size=64, block_size=8, merge_size=128)
        got = topk_sharded(queries, docs, 20, mesh, doc_bias_N=bias_N, doc_axis="docs", query_axis=query_axis,
                           chunk_size=64, block_size=8, merge_size=128)
        report.append({
            "case": f"N={num_docs} {data} bias={with_bias} mesh={mesh_name}",
            "data": data,
            "ids_equal": bool(np.array_equal(got[1], want[1])),
            "scores_equal": bool(np.array_equal(got[0], want[0])),
            "scores_close": bool(np.allclose(got[0], want[0], rtol=1e-5, atol=1e-5)),
            "query_sharded": str(got[1].sharding.spec[0]) == str(query_axis),
        })
try:
    topk_sharded(queries, docs[:60], 20, meshes["docs"][0])
    report.append({"case": "too few documents per shard", "raised": False})
except ValueError as error:
    report.append({"case": "too few documents per shard", "raised": "k:" in str(error)})
print("REPORT" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line[len("REPORT"):])


def test_sharded_equals_single_device(report):
    cases = [r for r in report if "data" in r]
    assert len(cases) == 8
    for case in cases:
        assert case["ids_equal"], case
        assert case["query_sharded"], case
        # Exact dot products agree bit for bit; float ones up to the rounding of differently
        # shaped matmuls (XLA gives no bitwise guarantee across shapes).
        assert case["scores_equal"] if case["data"] == "integer" else case["scores_close"], case


def test_sharded_rejects_shards_smaller_than_k(report):
    assert report[-1] == {"case": "too few documents per shard", "raised": True}
