"""TrainConfig: how a model is trained (objective, proposal, schedule, optimizer, hard pool), shared by
the dense and the row-sparse trainer and by every experiment's `train` section."""
from __future__ import annotations

import dataclasses

from grdr.sim.samplers import SAMPLERS

__all__ = ["TrainConfig"]

_OBJECTIVES = ("global", "local", "mle")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    objective: str = "global"
    """global (full softmax), local (sampled softmax) or mle (SeqGR's factorised likelihood)."""
    sampler: str = "uniform"
    """Proposal of the local objective's negatives (sim.samplers.SAMPLERS)."""
    num_negatives: int = 16
    """K, negatives per query of the local objective."""
    logq: bool = False
    """The standard logQ correction: subtract log Q(d|q) from every candidate's logit, the positive included."""
    accidental_hits: str = "keep"
    """keep: a negative equal to d+ stays a candidate (Fisher-consistent); mask: it is dropped (O(K/N) bias)."""
    batch_size: int = 128
    """B, training pairs per step."""
    steps: int = 1000
    """Optimizer steps."""
    learning_rate: float = 3e-3
    """Step size of AdamW (or SGD); the peak of the schedule."""
    schedule: str = "constant"
    """constant; cosine: decay from learning_rate to final_lr_fraction of it over the steps; or rsqrt:
    learning_rate / sqrt(1 + step / decay_steps), which does not depend on the total (a run stopped at t
    steps is the first t steps of any longer run: its learning curve is a budget sweep)."""
    final_lr_fraction: float = 0.1
    """Where the cosine schedule ends, as a fraction of learning_rate."""
    decay_steps: int = 500
    """The rsqrt schedule's time scale, in steps."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    hard_refresh: int = 200
    """Steps between refreshes of the hard-negative pool."""
    hard_pool: int = 32
    """P: the pool is the model's top-P documents of each training query."""
    denoise_mass: float = 0.5
    """hard_denoised: the pool leaves out the top documents of p* that hold this much of its mass."""
    steps_per_call: int = 100
    """Steps fused into one compiled scan (progress, loss curve and NaN checks between calls)."""
    heldout: int = 0
    """Training queries held out of the batches; after every call their full-softmax NLL (= H(p*) + KL
    to the truth, on average) is measured: the convergence diagnostic."""
    early_stop: bool = False
    """Evaluate each seed's parameters after the call with the least held-out NLL (needs heldout > 0), not
    after the last: the standard early stopping, so that a model that overfits is read at its best
    (TrainResult.best_step_S says where; the learning curve still covers every step)."""
    optimizer: str = "adamw"
    """adamw or sgd."""
    sparse_table: bool = False
    """Row-sparse updates of a free document table (local objective only)."""
    progress: bool = False
    """Show a progress bar."""
    curve_points: int = 10
    """Log-spaced checkpoints of the learning curve (sim.curves), when the caller asks for one."""

    def __post_init__(self):
        if self.objective not in _OBJECTIVES:
            raise ValueError(f"TrainConfig.objective={self.objective!r}: expected one of {_OBJECTIVES}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"TrainConfig.sampler={self.sampler!r}: expected one of {tuple(SAMPLERS)}")
        for field in ("num_negatives", "batch_size", "steps", "hard_refresh", "hard_pool", "steps_per_call",
                      "decay_steps", "curve_points"):
            if getattr(self, field) < 1:
                raise ValueError(f"TrainConfig.{field}={getattr(self, field)}: expected at least 1")
        if self.heldout < 0:
            raise ValueError(f"TrainConfig.heldout={self.heldout}: expected >= 0")
        if self.early_stop and not self.heldout:
            raise ValueError("TrainConfig.early_stop=True needs held-out queries to stop on: set heldout > 0")
        if self.accidental_hits not in ("keep", "mask"):
            raise ValueError(f"TrainConfig.accidental_hits={self.accidental_hits!r}: expected 'keep' or 'mask'")
        if self.schedule not in ("constant", "cosine", "rsqrt"):
            raise ValueError(f"TrainConfig.schedule={self.schedule!r}: expected 'constant', 'cosine' or 'rsqrt'")
        if not 0 <= self.final_lr_fraction <= 1:
            raise ValueError(f"TrainConfig.final_lr_fraction={self.final_lr_fraction}: expected in [0, 1]")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r}: expected 'adamw' or 'sgd'")
        if self.sparse_table and self.objective != "local":
            raise ValueError("TrainConfig.sparse_table needs objective='local': a full softmax touches every row")
        if self.sparse_table and self.weight_decay:
            raise ValueError("TrainConfig.sparse_table with weight_decay > 0: decay would have to touch every row")
        if not 0 < self.learning_rate < float("inf"):
            raise ValueError(f"TrainConfig.learning_rate={self.learning_rate}: expected a finite number > 0")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay={self.weight_decay}: expected >= 0")
        if not 0 < self.denoise_mass <= 1:
            raise ValueError(f"TrainConfig.denoise_mass={self.denoise_mass}: expected in (0, 1]")
