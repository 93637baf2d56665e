"""Items 1-5 at accelerator sizes, on a GPU: `python -m grdr.benchmarks.gpu [--out-dir DIR]`.

Exits cleanly (status 0) with a message when JAX sees no GPU. On a GPU host it runs the same
scripts as `python -m grdr.benchmarks` with sizes an accelerator is for, and prints the same table:
- train_step: the large shape at N = 1e6, the FLOP case at N = 1e6, H = 1024, B = 1024; the torch
  baseline runs on "cuda" when the installed torch has it (a CUDA build), on the CPU otherwise
  (then the ratio is GPU grdr against CPU torch, which the table says);
- topk: N = 1e7 (faiss IndexFlatIP stays on the CPU: faiss-cpu; the numpy baseline is skipped);
- sparse_table: N = 1e4 against N = 1e7;
- scale: training and evaluation at N = 1e7, streamed evaluation at N = 1e8.
Float32 matrix products run at full float32 precision (jax_default_matmul_precision="highest"; torch
keeps TF32 off, its default), so both sides compute the same thing and the loss check holds at 1e-4;
the peak of item 2 is measured at that precision too. Keep JAX's default preallocation of GPU
memory: with XLA_PYTHON_CLIENT_PREALLOCATE=false the AtomicGR case at N = 1e7 ran out of memory
while autotuning its matmuls on an 80 GB H100. `--small` runs the plan at N = 1e5 (a dry run
of the wiring, on a CPU too with `--force`).
Item 6 (sweep throughput) is a CPU measurement of the presets and is left to `python -m grdr.benchmarks`.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax

from grdr.benchmarks.__main__ import run_all


def gpu_present() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib, or no device
        return False


def accelerator_plan(torch_device: str, small: bool = False) -> dict[str, list[str]]:
    """Extra argv per benchmark script at accelerator sizes (every N at 1e5 when `small`)."""
    big, bigger, biggest = (100_000, 100_000, 100_000) if small else (1_000_000, 10_000_000, 100_000_000)
    return {
        "train_step": ["--large-n-docs", str(big), "--flop-n-docs", str(big), "--flop-hidden", "256" if small else "1024",
                       "--flop-batch", "512" if small else "1024", "--torch-device", torch_device],
        "topk": ["--n-docs", str(bigger), "--skip-numpy"],
        "sparse_table": ["--n-docs", "10000", str(bigger)],
        "scale": ["--n-docs", str(bigger), "--stream-n-docs", str(biggest), "--steps", "100" if small else "500"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="results/benchmarks/gpu")
    parser.add_argument("--small", action="store_true", help="every N at 1e5: a dry run of the plan")
    parser.add_argument("--force", action="store_true", help="run even where JAX sees no GPU")
    args = parser.parse_args(argv)
    if not (gpu_present() or args.force):
        print(f"no GPU visible to JAX (devices: {jax.devices()}); nothing to run. "
              "On a GPU host install jax[cuda12] and rerun; CPU numbers come from `python -m grdr.benchmarks`.")
        return 0
    try:
        import torch
        torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch_device = "cpu"
    jax.config.update("jax_default_matmul_precision", "highest")
    os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"  # for benchmarks.scale's subprocesses
    print(f"JAX {jax.__version__} devices: {jax.devices()}; torch baseline on {torch_device}")
    run_all(accelerator_plan(torch_device, args.small), args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
