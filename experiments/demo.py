"""`grdr demo`'s runs: every experiment of the registry at one preset, longest first (DEMO_ORDER),
one after another in this process or in worker processes; one experiment's failure stops none of
the others, and an interrupted demo resumes from the records it stored."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys
import traceback
from pathlib import Path

from grdr.experiments import catalog
from grdr.experiments.registry import DEMO_ORDER
from grdr.experiments.sweep import claims
from grdr.experiments.sweep.runner import outcome, run_experiment

__all__ = ["run_one", "default_jobs", "run_all"]


def run_one(name: str, preset: str, out: Path, progress: bool, announce: bool = False, **executor) -> dict:
    """One experiment of the demo, in a worker process (or in this one when jobs = 1)."""
    if announce:  # a worker's progress bar would interleave with the others': one line instead
        print(f"{name}: started", flush=True)
    module = catalog.load(name)
    return run_experiment(module, module.PRESETS[preset], out, progress=progress, **executor)


def default_jobs() -> int:
    """One worker per CPU this process may use; one in all on an accelerator, whose memory each
    JAX process would otherwise try to take most of."""
    import os

    import jax

    if jax.default_backend() != "cpu":
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_all(preset: str, out, *, progress: bool = True, jobs: int = 1, **executor) -> dict:
    """Run every experiment at `preset` into `out` (jobs: experiments at once; 0: default_jobs()),
    printing a line per experiment as it ends. Returns the experiments that failed, each with its
    error (or its count of failed points)."""
    names = list(DEMO_ORDER)  # longest first (experiments.registry), so that a pool of workers finishes together
    names = [n for n in names if preset in catalog.load(n).PRESETS]  # scale: the experiments about scale
    print(f"grdr demo --preset {preset}: {len(names)} experiments ({', '.join(names)}), then the figures, "
          f"the fits and the report", flush=True)
    jobs = min(len(names), jobs or default_jobs())

    failed = {}

    def done(name, run):
        """Print one experiment's outcome; a failure is kept and the others go on."""
        try:
            summary = run()
        except Exception as err:  # noqa: BLE001 - reported below, and the demo exits non-zero
            failed[name] = err
            print(f"{name}: FAILED\n{''.join(traceback.format_exception(err))}", file=sys.stderr, flush=True)
            return
        print(outcome({"experiment": name, **summary}), flush=True)
        if summary.get("failed"):
            failed[name] = f"{summary['failed']} point(s)"

    if jobs == 1:
        try:
            for name in names:
                done(name, lambda: run_one(name, preset, out, progress, **executor))
        except KeyboardInterrupt:  # release what this process holds, then the one line of main()
            for name in names:
                claims.release_mine(out, name)
            raise
    else:
        # One progress bar per experiment would interleave: the workers' bars stay off and a line
        # is printed as each experiment starts and ends. "spawn": JAX's threads do not survive a
        # fork. A worker killed from outside (out of memory, say) breaks the pool: the experiments
        # it had not finished are reported as failed, and a rerun resumes them from their records.
        print(f"running {len(names)} experiments, {jobs} at a time: {', '.join(names)}", flush=True)
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {pool.submit(run_one, name, preset, out, False, True): name for name in names}
            try:
                for future in concurrent.futures.as_completed(futures):
                    done(futures[future], future.result)
            except BaseException:  # Ctrl-C: stored records stay, and a rerun resumes from them
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return failed
