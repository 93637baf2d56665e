"""Exact top-k retrieval over a corpus in document chunks: one device (`topk`), streamed
(`topk_streamed`), sharded over a device mesh (`topk_sharded`), or under any scorer of sim.scorers
(`topk_scored`). No M x N score matrix is ever built (docs/design.md, sections 2 and 4); the
selection rule and its tie-break are described in `sim.retrieve.chunked`."""
from grdr.sim.retrieve.chunked import DEFAULT_CHUNK, topk, topk_streamed
from grdr.sim.retrieve.scored import topk_scored
from grdr.sim.retrieve.sharded import topk_sharded

__all__ = ["DEFAULT_CHUNK", "topk", "topk_streamed", "topk_sharded", "topk_scored"]
