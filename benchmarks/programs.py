"""How many XLA programs one experiment's sweep compiles, per group and by name, in a fresh process.

    python -m grdr.benchmarks.programs model_scale --preset quick --out /tmp/ms-programs
    python -m grdr.benchmarks.programs capacity_dim --preset quick --set '{"train": {"steps": 40}}'

The persistent compilation cache is not turned on (every program compiles), and the sweep runs as
`grdr run` runs it (experiments.sweep.group.run_one_group, one group after another). Each group's line
gives its compiled programs (experiments.sweep.compile_stats: XLA compilations net of cache hits), its
compile seconds and wall seconds, and the names of what it compiled (JAX's compile log), so a program
that repeats per width, seed or N shows up by name. `--set` overrides Config fields (nested sections as
nested objects) for faster runs: the step count and the KL floor's iterations change no program,
but widths do, and so can the steps where experiments.calibration.padding_pays decides a width's padding
or docs_padding a group's N (fewer steps make padding cheaper: more groups share, fewer programs).
Compile and wall seconds depend on the machine's load: quote it with them.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib
import json
import logging
import os
import tempfile
import time

__all__ = ["count_programs", "main"]


class _CompileNames(logging.Handler):
    """Counts JAX's "Compiling <name> ..." log lines by name."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names: collections.Counter = collections.Counter()

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.names[message.split()[1]] += 1


def _replace(obj, overrides: dict):
    return dataclasses.replace(obj, **{k: _replace(getattr(obj, k), v) if isinstance(v, dict) else
                                       (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})


def count_programs(name: str, preset: str, out: str, overrides: dict | None = None, echo=print) -> dict:
    """Run `name`'s sweep at `preset` (with `overrides`) into `out`; per group and in all, the programs
    compiled, their seconds and their names. Returns {"groups": [...], "count", "seconds", "wall", "names"}."""
    import jax

    from grdr.experiments.sweep import compile_stats
    from grdr.experiments.sweep.group import run_one_group
    from grdr.experiments.sweep.grouping import groups

    handler = _CompileNames()
    loggers = [logging.getLogger(n) for n in ("jax._src.interpreters.pxla", "jax._src.dispatch")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # counted here, not printed
    jax.config.update("jax_log_compiles", True)
    module = importlib.import_module(f"grdr.experiments.{name}")
    cfg = _replace(module.PRESETS[preset], overrides or {})
    compile_stats.install()
    total, start, rows = compile_stats.snapshot(), time.perf_counter(), []
    try:
        for points in groups(module, cfg):
            before, snap, t0 = dict(handler.names), compile_stats.snapshot(), time.perf_counter()
            run_one_group(module, cfg, points, out)
            got = compile_stats.since(snap)
            new = {k: v - before.get(k, 0) for k, v in handler.names.items() if v - before.get(k, 0)}
            head = points[0].record()
            label = ", ".join(f"{k} {head[k]}" for k in ("model", "family", "width", "dim", "hidden", "n_docs")
                              if k in head)
            rows.append({"group": label, "seeds": len(points), "count": got["count"], "seconds": got["seconds"],
                         "wall": time.perf_counter() - t0, "names": new})
            echo(f"{label} ({len(points)} seeds): {got['count']} programs, {got['seconds']:.1f} s compiling, "
                 f"{rows[-1]['wall']:.1f} s; {new}")
    finally:
        jax.config.update("jax_log_compiles", False)
        for logger in loggers:
            logger.removeHandler(handler)
    got = compile_stats.since(total)
    return {"groups": rows, "count": got["count"], "seconds": got["seconds"], "wall": time.perf_counter() - start,
            "names": dict(handler.names.most_common())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--out", default=None, help="results folder (default: a new temporary one)")
    parser.add_argument("--set", default="{}", help="Config overrides as JSON")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix=f"grdr-programs-{args.name}-")
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    result = count_programs(args.name, args.preset, out, json.loads(args.set))
    print(f"{args.name} --preset {args.preset}: {result['count']} programs, {result['seconds']:.1f} s compiling, "
          f"{result['wall']:.0f} s wall; load after: {os.getloadavg()[0]:.2f}")
    print(f"by name: {result['names']}")
    return result


if __name__ == "__main__":
    main()
