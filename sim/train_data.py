"""Training data as arrays, and as the compiled training call reads them (docs/design.md, section 4).

`TrainData` holds the training pairs and the document side. `device_data` lays one or several of them
(one per seed, same shapes) out on the device: the training rows, the last `TrainConfig.heldout` rows
held out of the batches, the document side with the sampler's constants, and the hard pool's
exclusions; with a leading seed axis (vmapped with the parameters) unless every seed shares the data.
They go to the device by jax.device_put: jnp.asarray would compile a program per shape.
The document side can be padded to a bucket of N (sim.buckets): zero rows past the real documents,
whose number is then consts["n_docs"], and SeqGR's trie tables padded to a bucket of its nodes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from grdr.sim.buckets import bucket, pad_rows
from grdr.sim.docids import Docids
from grdr.sim.hard_pool import exclusions
from grdr.sim.samplers import get_sampler

__all__ = ["TrainData", "device_data"]


@dataclasses.dataclass(frozen=True)
class TrainData:
    """Training pairs and document side information, as arrays.

    top_docs_MxT / top_log_p_MxT: the top documents of p* of each training query and their log p*
    (synthetic corpora only), which the denoised hard-negative pool leaves out.
    """

    query_features_MxF: np.ndarray
    pos_M: np.ndarray
    doc_features_NxF: np.ndarray
    docids: Docids | None = None
    top_docs_MxT: np.ndarray | None = None
    top_log_p_MxT: np.ndarray | None = None

    @property
    def n_docs(self) -> int:
        return self.doc_features_NxF.shape[0]

    @classmethod
    def from_corpus(cls, corpus, docids=None):
        t = corpus.train
        return cls(t.features_MxF, t.pos_M, corpus.doc_features_NxF, docids,
                   t.qrels_MxQ if t.qrels_MxQ.shape[1] else None, t.top_log_p_MxQ if t.qrels_MxQ.shape[1] else None)


def _stack(arrays: Sequence[np.ndarray], pad_value=0) -> np.ndarray:
    """Stack per-seed arrays along a new axis 0, padding axis 0 to the longest (trie tables)."""
    if np.ndim(arrays[0]) == 0:
        return np.stack(arrays)
    longest = max(a.shape[0] for a in arrays)
    return np.stack([np.concatenate([a, np.full((longest - a.shape[0],) + a.shape[1:], pad_value, a.dtype)])
                     for a in arrays])


def device_data(datas: list[TrainData], cfg, kind: str, shared: bool, n_pad: int | None = None):
    """(train, heldout, consts, exclusions) as device arrays: the training rows, the last
    `cfg.heldout` rows held out of the batches, the document side and the pool's exclusions; with a
    leading seed axis unless the data is shared. With n_pad, every array indexed by document has
    n_pad rows (the padding zero) and consts["n_docs"] holds the number of real documents."""
    sampler = get_sampler(cfg.sampler)
    M = datas[0].pos_M.shape[0] - cfg.heldout
    n_docs = datas[0].n_docs
    n_pad = n_docs if n_pad is None else n_pad
    if kind == "seq_gr":  # trie nodes differ by seed and by N: one bucket for all
        n_nodes = bucket(max(d.docids.valid_PxV.shape[0] for d in datas))

    def one(d: TrainData):
        rows = {"query_features": np.asarray(d.query_features_MxF), "pos": np.asarray(d.pos_M, np.int32)}
        consts = {"doc_features": np.asarray(d.doc_features_NxF)}
        if kind == "seq_gr":
            consts.update(codes_NxL=d.docids.codes_NxL, prefix_NxL=d.docids.prefix_NxL,
                          valid_PxV=pad_rows(d.docids.valid_PxV, n_nodes, False))
        if cfg.objective == "local":
            consts.update(sampler.constants(rows["pos"][:M], d.n_docs))
        # padded documents: zero features and sampler constants (never drawn, never scored)
        consts = {k: pad_rows(v, n_pad) if k != "valid_PxV" and v.shape[:1] == (d.n_docs,) else v
                  for k, v in consts.items()}
        consts["n_docs"] = np.int32(d.n_docs)
        train = {k: v[:M] for k, v in rows.items()}
        heldout = {k: v[M:] for k, v in rows.items()}
        return train, heldout, consts, {"exclude": exclusions(d, cfg.sampler, cfg.denoise_mass)[:M]}

    parts = [one(d) for d in (datas[:1] if shared else datas)]
    if shared:
        return tuple({k: jax.device_put(v) for k, v in part.items()} for part in parts[0])
    width = max(p[3]["exclude"].shape[1] for p in parts)
    for p in parts:
        p[3]["exclude"] = np.pad(p[3]["exclude"], ((0, 0), (0, width - p[3]["exclude"].shape[1])), constant_values=-1)
    return tuple({k: jax.device_put(_stack([p[i][k] for p in parts], False if k == "valid_PxV" else 0)) for k in parts[0][i]}
                 for i in range(4))
