"""Width buckets: a model trained inside a wider one whose extra units are exactly inert, so that one
compiled program serves every width of a sweep that falls in the same bucket (docs/design.md,
section 4; the widths' counterpart of sim.buckets, which pads the documents).

A sweep over tower widths H or embedding dimensions D compiles its training, evaluation and
learning-curve programs once per width. `padded_config` gives the configuration a point trains at:
its widths raised to a shared bucket (`padded_width`), and `pad_params` zero-pads a model's
parameters (initialised at the real widths, so the values are the unpadded model's) to that
configuration's shapes, at the end of every axis.

Why the padding is exactly inert (zero contribution, zero gradient, so no optimizer moves it):
- a padded hidden unit of an MLP has zero incoming weights and bias, so its pre-activation is 0 and
  its output gelu(0) = 0; its outgoing weights are zero, so the loss does not depend on its output
  (the gradient of its incoming weights, d loss / d output x gelu'(0) x input, is 0) and the gradient of its
  outgoing weights (its output times the next layer's gradient) is 0 too;
- a padded output coordinate (DR's D, AtomicGR's H) is 0 on the query side and on the document side
  (a zero column of the tower's last layer, of the free table, of AtomicGR's output table), so it adds
  0 to every dot product and to every norm (the cosine scorer); the gradient of each side's padded
  column is the other side's padded column, 0; the bilinear and low-rank scorers' matrices get zero
  rows and columns, whose gradients are products with those zero coordinates;
- Adam (with or without weight decay) moves a parameter that is 0 with zero gradients by exactly 0.
`check_inert` verifies the last of these on trained parameters, so a violation cannot pass silently.

Not padded: SeqGR (its SoftNorm divides the state's squared norm by the width H, which zero units
would change) and the MaxSim scorer (its tower output is reshaped into m vectors of D, so zero columns
at the end would not be whole coordinates). Results equal the unpadded ones up to float rounding
(sums over a longer axis of added zeros may be ordered differently); the padding never reaches a record.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import jax
import numpy as np
from flax import nnx

from grdr.sim.buckets import bucket

__all__ = ["WIDTH_FLOOR", "padded_width", "padded_config", "can_pad", "pad_params", "check_inert", "check_padding", "abstract_model", "param_count"]

WIDTH_FLOOR = 128
"""Every width up to this bucket shares the largest such width of its sweep; wider ones take their own
bucket (at most 1.5x the width, as for N). Whether a group trains padded at all is its experiment's
call (experiments.calibration.padding_pays: where the padded steps cost less than a compile): at 128 a DR
tower's step costs about what it costs at 8 on the CPU, an AtomicGR step (its N x H table and full
softmax) 3-5x more (benchmarks/README.md, "Compiling: cold and warm grdr demo")."""


def padded_width(width: int, widths: Iterable[int], floor: int = WIDTH_FLOOR) -> int:
    """The width a model of `width` trains at in a sweep over `widths`: its bucket (sim.buckets), raised
    to the largest bucket of the sweep's widths that is at most `floor` (one program for all of those).

    >>> [padded_width(w, (8, 16, 32, 64, 128, 256)) for w in (8, 64, 128, 256)]
    [128, 128, 128, 256]
    >>> [padded_width(w, (2, 4, 8, 12)) for w in (2, 12)]
    [12, 12]
    """
    own = bucket(width)
    shared = [b for b in map(bucket, widths) if b <= floor]
    return max(own, max(shared)) if own <= floor and shared else own


def can_pad(cfg) -> bool:
    """Whether padding `cfg`'s widths leaves the model's function and training unchanged (module docstring)."""
    return cfg.kind in ("dr", "atomic_gr")


def padded_config(cfg, widths: Iterable[int] | None = None, dims: Iterable[int] | None = None,
                  floor: int = WIDTH_FLOOR, ranks: Iterable[int] | None = None):
    """The ModelConfig a model of `cfg` trains at in a sweep whose hidden widths are `widths`, (DR)
    whose embedding dimensions are `dims` and (DR's low-rank scorer) whose ranks r are `ranks`: `cfg`
    with its hidden width, D and r raised to their buckets (`padded_width`); None leaves that width as
    it is (a width the sweep does not vary gains nothing). `cfg` itself where padding is not inert
    (`can_pad`). A padded rank adds zero columns to U and V: zero coordinates of both sides' r-vectors,
    inert as a padded D is."""
    if not can_pad(cfg):
        return cfg
    out = cfg
    if widths is not None:
        out = dataclasses.replace(out, hidden=padded_width(cfg.hidden, tuple(widths), floor))
    if dims is not None and (cfg.kind == "atomic_gr" or cfg.scorer != "maxsim"):
        # AtomicGR reads no D: a sweep that sets it anyway (capacity_dim) gets one configuration for all
        out = dataclasses.replace(out, dim=padded_width(cfg.dim, tuple(dims), floor))
    if ranks is not None and cfg.kind == "dr" and cfg.scorer == "lowrank":
        rank = padded_width(cfg.lowrank.rank, tuple(ranks), floor)
        out = dataclasses.replace(out, lowrank=dataclasses.replace(cfg.lowrank, rank=rank))
    return out


def _pad_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if x.ndim != len(shape) or any(a > b for a, b in zip(x.shape, shape)):
        raise ValueError(f"pad_params: a parameter of shape {x.shape} does not fit in {shape}")
    return np.pad(x, [(0, b - a) for a, b in zip(x.shape, shape)])


def pad_params(params, target, leading: int = 0):
    """`params` (a pytree of arrays, e.g. an nnx.State; `leading` axes first, such as the seeds, left as
    they are) zero-padded at the end of every other axis to the shapes of `target` (the same tree, e.g.
    the abstract state of the padded model), as host arrays."""
    return jax.tree.map(lambda x, t: _pad_to(np.asarray(x), tuple(np.shape(x)[:leading]) + tuple(t.shape)),
                        params, target)


def check_inert(params, real, leading: int = 0, what: str = "") -> None:
    """Raise if any entry of `params` (padded, host or device arrays, `leading` axes first) outside the
    shapes of `real` (the unpadded tree, arrays or shape structs without those axes) is not exactly 0:
    a padded unit that moved was not inert."""
    def check(path, x, r):
        shape = tuple(np.shape(r))
        x = np.asarray(x)
        inside = x[(slice(None),) * leading + tuple(slice(0, s) for s in shape)]
        if np.count_nonzero(x) != np.count_nonzero(inside):
            raise AssertionError(f"padded units moved {what}at {jax.tree_util.keystr(path)}: "
                                 f"{np.count_nonzero(x) - np.count_nonzero(inside)} nonzero entries past {shape}")
    jax.tree_util.tree_map_with_path(check, params, real)


def check_padding(cfg, pad_to) -> None:
    """Raise unless `pad_to` is `cfg` with its hidden width, D (DR; AtomicGR reads none) and low-rank r at
    least as large, and padding is inert for this model (`can_pad`)."""
    lowrank = cfg.kind == "dr" and cfg.scorer == "lowrank"
    own_rank = {"lowrank": cfg.lowrank} if lowrank else {}
    same = dataclasses.replace(pad_to, hidden=cfg.hidden, dim=cfg.dim, **own_rank) == cfg
    dim_ok = cfg.kind == "atomic_gr" or pad_to.dim == cfg.dim or (pad_to.dim > cfg.dim and cfg.scorer != "maxsim")
    rank_ok = not lowrank or pad_to.lowrank.rank >= cfg.lowrank.rank
    if pad_to != cfg and not (same and can_pad(cfg) and pad_to.hidden >= cfg.hidden and dim_ok and rank_ok):
        raise ValueError(f"cannot train {cfg} padded to {pad_to}: expected the same model with widths at least "
                         "as large, of a kind whose padding is inert (sim.widths.can_pad)")


def abstract_model(cfg, *, n_docs: int, feature_dim: int, docids=None):
    """(graphdef, abstract state) of make_model(cfg, ...), without computing any value."""
    from grdr.sim.models import make_model

    model = nnx.eval_shape(lambda: make_model(cfg, n_docs=n_docs, feature_dim=feature_dim, docids=docids))
    return nnx.split(model)


def param_count(cfg, *, n_docs: int, feature_dim: int, docids=None) -> int:
    """sim.models.count_params of the model of `cfg` (its real widths, not a padded model's)."""
    from grdr.sim.models import make_model

    model = nnx.eval_shape(lambda: make_model(cfg, n_docs=n_docs, feature_dim=feature_dim, docids=docids))
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
