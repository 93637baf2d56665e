"""Items 1-5 at accelerator sizes, on a GPU: `python -m benchmarks.gpu [--out-dir DIR]`.

Exits cleanly (status 0) with a message when JAX sees no GPU. On a GPU host it runs the same
scripts as `python -m benchmarks` with sizes an accelerator is for, and prints the same table:
- train_step: the large shape at N = 1e6, the FLOP case at N = 1e6, H = 1024, B = 4096; the torch
  baseline runs on "cuda" when the installed torch has it (a CUDA build), on the CPU otherwise
  (then the ratio is GPU grdr against CPU torch, which the table says);
- topk: N = 1e7 (faiss IndexFlatIP stays on the CPU: faiss-cpu);
- sparse_table: N = 1e4 against N = 1e7;
- scale: training and evaluation at N = 1e7, streamed evaluation at N = 1e8.
Item 6 (sweep throughput) is a CPU measurement of the presets and is left to `python -m benchmarks`.
"""
from __future__ import annotations

import argparse
import sys

import jax

from benchmarks.__main__ import run_all


def gpu_present() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib, or no device
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="results/benchmarks/gpu")
    args = parser.parse_args(argv)
    if not gpu_present():
        print(f"no GPU visible to JAX (devices: {jax.devices()}); nothing to run. "
              "On a GPU host install jax[cuda12] and rerun; CPU numbers come from `python -m benchmarks`.")
        return 0
    try:
        import torch
        torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch_device = "cpu"
    print(f"JAX devices: {jax.devices()}; torch baseline on {torch_device}")
    plan = {
        "train_step": ["--large-n-docs", "1000000", "--flop-n-docs", "1000000", "--flop-hidden", "1024",
                       "--flop-batch", "4096", "--torch-device", torch_device],
        "topk": ["--n-docs", "10000000"],
        "sparse_table": ["--n-docs", "10000", "10000000"],
        "scale": ["--n-docs", "10000000", "--stream-n-docs", "100000000", "--steps", "500"],
    }
    run_all(plan, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
