"""Sharded along N over 4 CPU devices, training gives the same losses and parameters as one device.

The device count must be set before JAX starts, so the comparison runs in a subprocess.
"""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import jax, numpy as np
    from flax import nnx
    from grdr.sim.corpus import CorpusSpec, make_corpus
    from grdr.sim.models import ModelConfig
    from grdr.sim.sharding import doc_mesh
    from grdr.sim.train import TrainConfig, TrainData, model_at, train
    assert len(jax.devices()) == 4, jax.devices()
    c = make_corpus(CorpusSpec(n_docs=64, n_train_queries=200, n_test_queries=4, latent_rank=3, feature_dim=6))
    data = TrainData.from_corpus(c)
    mesh = doc_mesh()
    for mc, tc in [(ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True), TrainConfig(objective="global", steps=3, steps_per_call=3)),
                   (ModelConfig(kind="atomic_gr", hidden=8), TrainConfig(objective="global", steps=3, steps_per_call=3)),
                   (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"), TrainConfig(objective="local", steps=3, steps_per_call=3, num_negatives=5))]:
        one = train(mc, tc, data, [0, 1])
        many = train(mc, tc, data, [0, 1], mesh=mesh)
        np.testing.assert_allclose(one.losses_SxT, many.losses_SxT, rtol=1e-5)
        leaves_one = jax.tree.leaves(one.params)
        leaves_many = jax.tree.leaves(many.params)
        for a, b in zip(leaves_one, leaves_many):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        sharded = [x for x in leaves_many if x.ndim >= 2 and x.shape[1] == 64]
        assert sharded and all(len(x.sharding.device_set) == 4 and not x.sharding.is_fully_replicated for x in sharded)
    print("OK")
''')


def test_training_sharded_over_four_devices_matches_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
