"""Training step: grdr's compiled scan against the same models in plain eager PyTorch (items 1, 2).

    python -m grdr.benchmarks.train_step                # small (B=64,K=16,D=32,N=1e4) and large (B=512,K=128,D=128,N=1e5)
    python -m grdr.benchmarks.train_step --small        # a quick check, under a minute
    python -m grdr.benchmarks.train_step --out results/benchmarks/train_step.csv

Item 1. DualEncoder with a free table and with a document tower, trained by sampled softmax with
K uniform negatives, and AtomicGR trained by full softmax, each written as a researcher would in
eager PyTorch (nn.Module, torch.optim.Adam, a Python loop). The torch model starts from the JAX
model's weights and takes the same batches and negatives as grdr's compiled step for the first
steps; the losses must agree (relative 1e-4) before anything is timed. grdr is timed as it trains:
many steps inside one compiled `lax.scan` (compile time reported apart).

Item 2. Achieved FLOP/s of the AtomicGR full-softmax step (N=1e5, H=256, B=512) as a fraction of
the float32 matmul peak measured in the same process. FLOPs per step, matmuls only:
forward scores 2BNH, backward to the queries 2BNH and to the output table 2BNH, so 6BNH, plus
6B(FH + H*H) for the one-layer query tower (forward, and the two backward matmuls). Only these
useful FLOPs are counted: where the softmax runs in blocks (sim.softmax), the backward pass
recomputes each block's scores, 2BNH more that the fraction does not credit.
"""
from __future__ import annotations

import argparse
import csv
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.models import ModelConfig, make_model
from grdr.sim.optim import optimizer as _optimizer, step_key as _step_key
from grdr.sim.train import TrainConfig, _make_run_chunk

try:
    import torch
except ImportError:  # the bench extra: pip install torch==2.13.0 (the CPU build)
    torch = None

MODELS = ("dr_table", "dr_tower", "atomic_gr")
SMALL = dict(batch=64, negatives=16, dim=32, n_docs=10_000)
LARGE = dict(batch=512, negatives=128, dim=128, n_docs=100_000)
N_QUERIES = 4096
TORCH_DEVICE = "cpu"  # --torch-device; benchmarks.gpu sets "cuda" where torch has it


# ----------------------------------------------------------------------------- shared helpers


def best_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak_gflops(size=None, repeats=5):
    """float32 matmul peak of this process's JAX backend: a square jnp.dot, best of several
    (2048 on a CPU, 8192 on an accelerator, which a smaller product leaves partly idle)."""
    size = size or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jnp.ones((size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, a))
    return 2 * size**3 / best_time(lambda: jax.block_until_ready(dot(a, a)), repeats) / 1e9


def print_table(rows, columns=None):
    columns = columns or list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.rjust(width[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c, "")).rjust(width[c]) for c in columns))


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_csv(rows, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


# ----------------------------------------------------------------------------- grdr side


def _configs(model, batch, negatives, dim):
    if model == "atomic_gr":
        return (ModelConfig(kind="atomic_gr", hidden=dim, depth=1),
                TrainConfig(objective="global", batch_size=batch, learning_rate=1e-3))
    side = "table" if model == "dr_table" else "tower"
    return (ModelConfig(kind="dr", dim=dim, hidden=dim, depth=1, doc_side=side),
            TrainConfig(objective="local", sampler="uniform", num_negatives=negatives, batch_size=batch, learning_rate=1e-3))


class GrdrStep:
    """grdr's own compiled training program (sim.train) for one seed, driven step by step or in scans."""

    def __init__(self, model, batch, negatives, dim, n_docs, seed=0):
        self.model_cfg, self.cfg = _configs(model, batch, negatives, dim)
        rng = np.random.default_rng(seed)
        self.data = {
            "query_features": jnp.asarray(rng.standard_normal((N_QUERIES, dim), dtype=np.float32)),
            "pos": jnp.asarray(rng.integers(0, n_docs, N_QUERIES), jnp.int32),
        }
        self.consts = {"doc_features": jnp.asarray(rng.standard_normal((n_docs, dim), dtype=np.float32))}
        module = make_model(self.model_cfg, n_docs=n_docs, feature_dim=dim, seed=seed)
        self.graphdef, _ = nnx.split(module)
        params = nnx.state(module, nnx.Param)
        self.init_weights = jax.tree.map(np.asarray, nnx.to_pure_dict(params))
        self.params = jax.tree.map(lambda x: x[None], params)  # a seed axis of one, as train() has
        self.opt_state = jax.vmap(_optimizer(self.cfg).init)(self.params)
        self.keys = jax.random.key(seed + 1)[None]
        self.n_docs = n_docs

    def runner(self, n_steps):
        """The compiled call of n_steps steps (one program for every n_steps: the count is traced)."""
        fn = _make_run_chunk(self.graphdef, _step_key(self.cfg), self.model_cfg.kind)
        return lambda *args: fn(*args, np.int32(n_steps), np.int32(self.cfg.steps))

    def draws(self):
        """The batch rows and negatives the next step will use: the same splits as the compiled step."""
        _, k_batch, k_neg = jax.random.split(self.keys[0], 3)
        rows = jax.random.randint(k_batch, (self.cfg.batch_size,), 0, N_QUERIES)
        neg = jax.random.randint(k_neg, (self.cfg.batch_size, self.cfg.num_negatives), 0, self.n_docs)
        return np.array(rows), np.array(neg)

    def run(self, n_steps):
        """n_steps optimizer steps in one compiled call; returns their mean loss."""
        self.params, self.opt_state, self.keys, loss = self.runner(n_steps)(
            self.params, self.opt_state, self.keys, self.data, self.consts, None)
        return float(jax.block_until_ready(loss)[0])


# ----------------------------------------------------------------------------- eager PyTorch, as a researcher writes it

if torch is not None:
    from torch import nn

    class TorchMLP(nn.Module):
        def __init__(self, d_in, hidden, out, depth):
            super().__init__()
            sizes = [d_in] + [hidden] * depth
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.out = nn.Linear(sizes[-1], out)
            self.act = nn.GELU(approximate="tanh")  # jax.nn.gelu's default

        def forward(self, x):
            for layer in self.layers:
                x = self.act(layer(x))
            return self.out(x)

    class TorchDualEncoder(nn.Module):
        def __init__(self, n_docs, feature_dim, dim, hidden, depth, doc_side, temperature):
            super().__init__()
            self.temperature, self.doc_side = temperature, doc_side
            self.query_tower = TorchMLP(feature_dim, hidden, dim, depth)
            if doc_side == "table":
                self.doc_embed = nn.Embedding(n_docs, dim)
            else:
                self.doc_tower = TorchMLP(feature_dim, hidden, dim, depth)

        def loss(self, query_features, pos, neg, doc_features):
            B, K = neg.shape
            q = self.query_tower(query_features) / self.temperature
            idx = torch.cat([pos[:, None], neg], dim=1).reshape(-1)
            emb = self.doc_embed(idx) if self.doc_side == "table" else self.doc_tower(doc_features[idx])
            scores = torch.einsum("bd,bkd->bk", q, emb.reshape(B, K + 1, -1))
            hit = torch.cat([torch.zeros_like(pos[:, None], dtype=torch.bool), neg == pos[:, None]], dim=1)
            scores = scores.masked_fill(hit, float("-inf"))  # a negative that is the positive is dropped
            return (torch.logsumexp(scores, dim=1) - scores[:, 0]).mean()

    class TorchAtomicGR(nn.Module):
        def __init__(self, n_docs, feature_dim, hidden, depth):
            super().__init__()
            self.query_tower = TorchMLP(feature_dim, hidden, hidden, depth)
            self.out = nn.Linear(hidden, n_docs)

        def loss(self, query_features, pos, neg, doc_features):
            return nn.functional.cross_entropy(self.out(self.query_tower(query_features)), pos)


def _tower_weights(pure):
    named = {}
    for i, layer in pure["layers"].items():
        named[f"layers.{i}.weight"], named[f"layers.{i}.bias"] = layer["kernel"].T, layer["bias"]
    named["out.weight"], named["out.bias"] = pure["out"]["kernel"].T, pure["out"]["bias"]
    return named


def torch_model(grdr: GrdrStep):
    """The eager torch model with grdr's initial weights copied in."""
    mc, w = grdr.model_cfg, grdr.init_weights
    F = grdr.data["query_features"].shape[1]
    state = {f"query_tower.{k}": v for k, v in _tower_weights(w["query_tower"]).items()}
    if mc.kind == "atomic_gr":
        model = TorchAtomicGR(grdr.n_docs, F, mc.hidden, mc.depth)
        state.update({"out.weight": w["out_embed"], "out.bias": w["bias"]})
    else:
        model = TorchDualEncoder(grdr.n_docs, F, mc.dim, mc.hidden, mc.depth, mc.doc_side, mc.temperature)
        if mc.doc_side == "table":
            state["doc_embed.weight"] = w["doc_embed"]
        else:
            state.update({f"doc_tower.{k}": v for k, v in _tower_weights(w["doc_tower"]).items()})
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model


def torch_step(model, opt, query_features, pos, neg, doc_features):
    opt.zero_grad()
    loss = model.loss(query_features, pos, neg, doc_features)
    loss.backward()
    opt.step()
    return loss.item()


def compare_losses(model, batch, negatives, dim, n_docs, steps=3, seed=0):
    """Losses of the first `steps` steps of grdr's compiled step and of eager torch on the same draws.

    Returns (grdr_losses, torch_losses, (grdr, torch model, torch optimizer)) so timing can go on.
    """
    grdr = GrdrStep(model, batch, negatives, dim, n_docs, seed)
    net = torch_model(grdr).to(TORCH_DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=grdr.cfg.learning_rate, eps=1e-8)
    qf = torch.from_numpy(np.array(grdr.data["query_features"])).to(TORCH_DEVICE)
    pos_all = torch.from_numpy(np.array(grdr.data["pos"])).long().to(TORCH_DEVICE)
    doc_features = torch.from_numpy(np.array(grdr.consts["doc_features"])).to(TORCH_DEVICE)
    ours, theirs = [], []
    for _ in range(steps):
        rows, neg = grdr.draws()
        rows, neg = torch.from_numpy(rows).long().to(TORCH_DEVICE), torch.from_numpy(neg).long().to(TORCH_DEVICE)
        theirs.append(torch_step(net, opt, qf[rows], pos_all[rows], neg, doc_features))
        ours.append(grdr.run(1))
    return np.array(ours), np.array(theirs), (grdr, net, opt, qf, pos_all, doc_features)


def bench_model(model, shape, grdr_steps, torch_seconds, rtol=1e-4):
    """One row of item 1: loss check, then steps/s of torch (Python loop) and grdr (one compiled scan)."""
    ours, theirs, (grdr, net, opt, qf, pos_all, doc_features) = compare_losses(model, **shape)
    rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    if rel > rtol:
        raise SystemExit(f"{model} {shape}: grdr losses {ours} differ from torch {theirs} (relative {rel:.2e})")
    B, K, N = shape["batch"], shape["negatives"], shape["n_docs"]
    n_torch, start = 0, time.perf_counter()
    while n_torch < 3 or time.perf_counter() - start < torch_seconds:
        rows, neg = torch.randint(N_QUERIES, (B,), device=TORCH_DEVICE), torch.randint(N, (B, K), device=TORCH_DEVICE)
        torch_step(net, opt, qf[rows], pos_all[rows], neg, doc_features)
        n_torch += 1
    if TORCH_DEVICE != "cpu":
        torch.cuda.synchronize()
    torch_sps = n_torch / (time.perf_counter() - start)
    start = time.perf_counter()
    grdr.run(grdr_steps)  # compile + run
    compile_s = time.perf_counter() - start
    grdr_sps = grdr_steps / best_time(lambda: grdr.run(grdr_steps), 2)
    return {
        "model": model, **shape, "torch_steps_per_s": round(torch_sps, 2), "grdr_steps_per_s": round(grdr_sps, 2),
        "speedup": round(grdr_sps / torch_sps, 2), "grdr_compile_s": round(compile_s - grdr_steps / grdr_sps, 2),
        "loss_rel_diff": f"{rel:.1e}",
    }


# ----------------------------------------------------------------------------- item 2


def atomic_gr_flops(batch, n_docs, hidden, feature_dim, depth=1):
    """Matmul FLOPs of one AtomicGR full-softmax training step (forward + backward)."""
    tower = feature_dim * hidden + (depth - 1) * hidden * hidden + hidden * hidden
    return 6 * batch * (n_docs * hidden + tower)


def bench_flops(batch, n_docs, hidden, steps, peak):
    grdr = GrdrStep("atomic_gr", batch, 1, hidden, n_docs)
    grdr.run(steps)  # compile
    seconds = best_time(lambda: grdr.run(steps), 2) / steps
    flops = atomic_gr_flops(batch, n_docs, hidden, hidden)
    return {"model": "atomic_gr (global)", "batch": batch, "n_docs": n_docs, "hidden": hidden,
            "gflop_per_step": round(flops / 1e9, 2), "step_s": round(seconds, 4),
            "achieved_gflops": round(flops / seconds / 1e9, 1), "peak_gflops": round(peak, 1),
            "fraction_of_peak": round(flops / seconds / 1e9 / peak, 3)}


def verdict(ok: bool, small: bool) -> str:
    """'yes'/'no'; at --small sizes the targets (set for the full sizes) are only indicative."""
    return ("yes" if ok else "no") + (" (--small)" if small else "")


def summary(step_rows, flop_row, small):
    """Rows for the combined table of `python -m grdr.benchmarks`."""
    targets = {"small": 8.0, "large": 4.0}
    out = []
    for r in step_rows:
        target = targets[r["shape"]]
        out.append({"benchmark": "1 train step vs eager torch", "case": f"{r['model']} {r['shape']} N={r['n_docs']}",
                    "measure": "speedup (grdr/torch steps/s)", "value": r["speedup"],
                    "target": f">= {target}", "met": verdict(r["speedup"] >= target, small and r["shape"] == "large")})
    out.append({"benchmark": "2 AtomicGR step vs matmul peak",
                "case": f"N={flop_row['n_docs']} H={flop_row['hidden']} B={flop_row['batch']}",
                "measure": "fraction of float32 matmul peak", "value": flop_row["fraction_of_peak"],
                "target": ">= 0.6", "met": verdict(flop_row["fraction_of_peak"] >= 0.6, small)})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="shrink the large shape and the FLOP case: a quick check")
    parser.add_argument("--large-n-docs", type=int, default=None, help="N of the large shape (default 1e5)")
    parser.add_argument("--flop-n-docs", type=int, default=100_000)
    parser.add_argument("--flop-hidden", type=int, default=256)
    parser.add_argument("--flop-batch", type=int, default=512)
    parser.add_argument("--torch-seconds", type=float, default=5.0, help="how long each torch loop runs")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--torch-device", default="cpu", help="where the torch baseline runs (cpu, cuda)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default="results/benchmarks/train_step.csv")
    args = parser.parse_args(argv)
    if torch is None:
        raise SystemExit("torch is not installed: pip install torch==2.13.0 (the CPU build)")
    global TORCH_DEVICE
    TORCH_DEVICE = args.torch_device
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    shapes = {"small": dict(SMALL), "large": dict(LARGE)}
    if args.small:
        shapes["large"] = dict(batch=256, negatives=64, dim=64, n_docs=20_000)
        args.flop_n_docs, args.torch_seconds = 20_000, min(args.torch_seconds, 2.0)
    if args.large_n_docs:
        shapes["large"]["n_docs"] = args.large_n_docs
    peak = matmul_peak_gflops()
    print(f"{os.cpu_count()} CPUs, {jax.devices()[0].platform}; float32 matmul peak {peak:.0f} GFLOP/s; "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    rows = []
    for name, shape in shapes.items():
        for model in args.models:
            # Fewer scan steps where a step is matmul-bound, so the timed call stays a few seconds.
            steps = 200 if name == "small" else 20
            rows.append({"shape": name, **bench_model(model, shape, steps, args.torch_seconds)})
            print_table(rows[-1:])
    print_table(rows)
    flop_row = bench_flops(args.flop_batch, args.flop_n_docs, args.flop_hidden, 5, peak)
    print_table([flop_row])
    write_csv(rows + [{"shape": "flops", **flop_row}], args.out)
    return summary(rows, flop_row, args.small)


if __name__ == "__main__":
    main()
