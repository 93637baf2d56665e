"""`grdr run NAME` and `grdr status`: an experiment's sweep checked (its points, the memory of its largest
group, the results folder), run through an executor, summed up with its verdicts; and what each results
folder holds, claims and failures included."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from grdr.experiments.registry import EXPERIMENTS
from grdr.experiments.sweep.runner import outcome, run_experiment
from grdr.configs import UsageError, axis_flag, fail, point_error, readable_out, usable_out, validate

__all__ = ["Preset", "RunOptions", "cmd_run", "cmd_status"]

Preset = Literal["smoke", "quick", "scale", "paper"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The options of `grdr run NAME` other than the experiment's Config."""

    preset: Preset = "quick"
    """smoke (seconds, for CI), quick (minutes on 2 cores), scale (drift_corpus, model_scale and capacity_dim
    over three decades of N and widths to 1,024: estimated at 47 minutes on 2 cores) or paper (an
    accelerator or a cluster; --dry-run estimates both)."""
    out: Path = Path("results")
    """Folder of results: records go to <out>/<experiment>/<run_id>.json."""
    progress: bool = True
    """Show progress bars."""
    dry_run: bool = False
    """Print the sweep's points and a rough cost estimate; train nothing."""
    retry_failed: bool = False
    """Run again the points that failed before (by default a rerun skips them)."""
    executor: Literal["local", "ray"] = "local"
    """local: this process, one group of points after another; ray: one Ray task per group."""
    address: str | None = None
    """Ray only: the cluster to join ("auto", or HOST:PORT of its head); none starts Ray on this machine."""
    cpus_per_task: float = 1.0
    """Ray only: CPUs each task declares."""
    gpus_per_task: float = 0.0
    """Ray only: GPUs each task declares (1 on a GPU cluster: a group is one JAX program)."""

    def executor_options(self) -> dict:
        if self.executor == "local":
            return {}
        return {"executor": "ray", "address": self.address, "cpus_per_task": self.cpus_per_task,
                "gpus_per_task": self.gpus_per_task}


def _reading_progress(show: bool) -> None:
    """Progress bars while a real collection is read and featurised: on a terminal, unless --no-progress."""
    from grdr.realdata._stream import SHOW_PROGRESS

    SHOW_PROGRESS.set(None if show else False)


def _groups_checked(module, cfg):
    """The sweep's groups of points. A point whose section check fails (`CorpusSpec.n_docs=...`) is
    reported as the flag that set it (UsageError); data that cannot be read raises as it is."""
    from grdr.experiments.sweep.runner import groups

    try:
        return groups(module, cfg)
    except (ValueError, TypeError) as err:
        usage = point_error(cfg, err)
        if usage is not None:
            raise usage from None
        raise


def _memory_checked(cfg, found) -> None:
    """Refuse (UsageError naming the flag that set N, and the estimate) a sweep whose largest group
    needs more memory than this machine has available, before anything is allocated."""
    from grdr.experiments.cost import available_bytes, gib, largest_group

    need, point, seeds = largest_group(found)
    have = available_bytes()
    if point is None or need <= have:
        return
    flag = axis_flag(cfg, "corpus", "n_docs", point.corpus.n_docs) if hasattr(cfg, "corpus") else "--n-docs"
    raise UsageError(f"{flag}={point.corpus.n_docs}: {point.model} at N = {point.corpus.n_docs:,} with {seeds} "
                     f"seed(s) at once needs at least {gib(need)}, more than the {gib(have)} available here; "
                     f"expected a smaller N or fewer seeds (grdr run ... --dry-run prints each group's estimate)")


def _nothing_to_write(module, found, out: Path, retry_failed: bool) -> bool:
    """Every point of the sweep is stored already (and no failure is to be retried): a rerun needs no
    write access to its folder."""
    from grdr.experiments.sweep import claims, store

    if not all(store.exists(out, module.NAME, pt.record()) for g in found for pt in g):
        return False
    return not retry_failed or not claims.failures(out, module.NAME)


def _verdicts(module, out: Path, write: bool) -> None:
    """The experiment's claims and verdicts from every record stored under out, its findings and its
    predictions' agreements as the report counts them (Holm over this experiment's claims), printed
    as a table and written to OUT/NAME/summary.csv."""
    from grdr.experiments.report import (adjust_family, experiment_claims, load_for_report, summary_rows,
                                         summary_table)

    if not (hasattr(module, "findings") or hasattr(module, "predictions")):
        return
    df, dropped = load_for_report(out, module.NAME, module)
    if df.empty:
        return
    findings = adjust_family(experiment_claims(module, df))
    if not findings:
        return
    print(f"\n{module.NAME}: {len(findings)} claim(s) read from the {len(df)} record(s) stored under {out} "
          f"(Holm over this experiment's claims; `grdr report --out {out}` decides them over every experiment's)"
          + (f"; {dropped} older record(s) of the same cells left out" if dropped else ""))
    print(summary_table(findings))
    if write:
        path = out / module.NAME / "summary.csv"
        summary_rows(findings).to_csv(path, index=False)
        print(f"wrote {path}")
    else:
        print(f"(summary.csv not written: {out} is not writable)")


def cmd_run(node) -> dict:
    """Run one experiment's sweep: `node` is what the command line built (its RunOptions and Config)."""
    from grdr.experiments.sweep import claims, store
    from grdr.experiments.sweep.store import StoreError
    from grdr.realdata.errors import FormatError

    module, opts, cfg = node.module, node.options, node.config
    prog = f"grdr run {module.NAME}"
    # The same checks, and so the same message and exit status, with and without --dry-run: the
    # options (2), the sweep's points (2: a section value out of range, named by its flag), the
    # data the sweep reads (1), and the memory the largest group needs (2).
    try:
        validate(cfg)
        found = _groups_checked(module, cfg)
    except UsageError as err:
        fail(prog, err)
    except (FormatError, FileNotFoundError, ValueError, TypeError) as err:  # a collection that cannot be read
        if getattr(err, "entry", None) is not None:  # an outside run (experiments.real_scaling.OutsideRunError)
            err = f"--baseline-runs {err.entry}: {err.reason}"
        fail(prog, err, 1)
    if opts.dry_run:
        from grdr.experiments.cost import describe

        print(describe(module, cfg, found))
    try:
        _memory_checked(cfg, found)
    except UsageError as err:
        fail(prog, err)
    if opts.dry_run:
        return {"experiment": module.NAME, "ran": 0, "skipped": 0, "seconds": 0.0}
    writable = True
    try:
        usable_out(opts.out)
    except UsageError as err:
        if not (Path(opts.out).is_dir() and _nothing_to_write(module, found, Path(opts.out), opts.retry_failed)):
            fail(prog, err)
        writable = False  # every point is stored: nothing to write, the verdicts are read from the records
    _reading_progress(opts.progress)
    try:
        summary = run_experiment(module, cfg, opts.out, progress=opts.progress, retry_failed=opts.retry_failed,
                                 **opts.executor_options())
    except KeyboardInterrupt:
        released = claims.release_mine(opts.out, module.NAME) if writable else 0
        fail(prog, f"interrupted; the records stored so far are kept, {released} claim(s) of this process "
                   f"released; the same command resumes", 130)
    except (FormatError, FileNotFoundError) as err:  # a real collection that cannot be read
        fail(prog, err, 1)
    except OSError as err:  # the store could not write: a full disk, a read-only folder
        fail(prog, UsageError(f"--out {opts.out}: cannot write a record ({err})"), 1)
    except ValueError as err:  # the executor could not start (Ray not installed, say)
        fail(prog, err, 2)
    print(f"{outcome(summary)}; records in {opts.out / summary['experiment']}")
    try:
        _verdicts(module, Path(opts.out), writable)
    except StoreError as err:  # a record that is not valid: named, with --quarantine on figures and fit
        fail(prog, err, 1)
    if summary.get("failed"):
        raise SystemExit(1)
    return summary


def cmd_status(out: Path = Path("results")) -> int:
    """Per experiment under OUT: points stored, claimed now (by which host and process, since when,
    and whether that process is alive) and failed (with their errors)."""
    import datetime

    from grdr.experiments.sweep import claims, store

    try:
        readable_out(out)
    except UsageError as err:
        fail("grdr status", err)
    names = sorted(set(store.experiments_in(out)) | {n for n in EXPERIMENTS if (Path(out) / n).is_dir()})
    if not names:
        fail("grdr status", UsageError(f"--out {out}: holds no experiment folders"), 1)
    print("| experiment | stored | claimed | failed |\n|---|---|---|---|")
    details = []
    for name in names:
        stored = len(list((Path(out) / name).glob("*.json")))
        held, failed = claims.claims(out, name), claims.failures(out, name)
        print(f"| {name} | {stored} | {len(held)} | {len(failed)} |")
        for c in held:
            if c.get("unreadable"):
                written = datetime.datetime.fromtimestamp(c["written"]).isoformat(timespec="seconds")
                details.append(f"{name}: {c['run_id']} has an unreadable claim file ({c['unreadable']}, written "
                               f"{written}): " + ("being written" if c["alive"] else
                                                  "dead, the next writer takes the point over"))
                continue
            since = datetime.datetime.fromtimestamp(c["since"]).isoformat(timespec="seconds") \
                if isinstance(c.get("since"), (int, float)) else "?"
            details.append(f"{name}: {c['run_id']} claimed by {c.get('host')} pid {c.get('pid')} since {since} "
                           f"({'alive' if c['alive'] else 'dead: the next writer takes it over'})")
        for f in failed:
            details.append(f"{name}: {f.get('run_id')} failed: {f.get('error')}")
    for line in details:
        print(line)
    return 0
