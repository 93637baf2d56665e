"""The `grdr` command (docs/design.md, section 3), the top floor: it parses a command line and
dispatches it, and nothing imports it. `grdr run` and `grdr status` live in grdr.run, `grdr real` in
grdr.real; the demo's runs are experiments.demo's. One tyro command tree (grdr.tree) covers every command, so
`grdr --help`, each command's `--help` and the shell completion tyro writes
(`grdr --tyro-write-completion bash FILE`) know every command, experiment and flag. Each command's
options come from a typed signature or an experiment's frozen Config; `grdr run NAME --preset P`
starts from the preset and lets every Config field be overridden, nested sections by their dotted
names (e.g. `--n-docs 1000 10000 --seeds 0 1 --corpus.beta 60 --train.steps 2000`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import tyro

from grdr.experiments import demo
from grdr.experiments.registry import EXPERIMENTS, claim, claim_of
from grdr.experiments.catalog import load as load_experiment
from grdr.configs import UsageError, fail, readable_out, usable_out
from grdr.real import cmd_real, real_command
from grdr.run import Preset, RunOptions, cmd_run, cmd_status


def cmd_list() -> None:
    """List the experiments and the claims they test."""
    for name in EXPERIMENTS:  # read from the sources: importing an experiment imports JAX
        print(f"{name:16s} {claim_of(name)}")


def cmd_figures(out: Path = Path("results"), quarantine: bool = False) -> list[Path]:
    """Render every figure from the records stored under OUT into OUT/figures/.

    Args:
        out: folder of results.
        quarantine: move unreadable record files to <experiment>/quarantine/ instead of stopping.
    """
    from grdr.experiments.sweep.store import StoreError
    from grdr.figures import render_all

    try:
        readable_out(out)
        _writable_for(out / "figures", "the figures")
        paths = render_all(out, quarantine=quarantine)
    except (UsageError, StoreError) as err:
        fail("grdr figures", err, 2 if isinstance(err, UsageError) else 1)
    for p in paths:
        print(f"wrote {p}")
    if not paths:
        fail("grdr figures", StoreError(f"no records under {out}: run an experiment first "
                                        f"(grdr run NAME --out {out})"), 1)
    return paths


def _writable_for(folder: Path, what: str) -> None:
    """UsageError (one line) if `folder` cannot be created or written: `what` goes there."""
    try:
        usable_out(folder)
    except UsageError as err:
        raise UsageError(f"{err} ({what} go to {folder}; give --out a copy of the results you can write to)") from None


def cmd_report(out: Path = Path("results"), quarantine: bool = False) -> Path:
    """Write OUT/report.md (and summary.md, summary.csv, summary.tex) from whatever records are stored
    under OUT: every experiment's section, its figure with a caption, and the verdicts decided over
    every claim (Holm). Nothing is run; `grdr figures --out OUT` draws the figures it shows.

    Args:
        out: folder of results.
        quarantine: move unreadable record files to <experiment>/quarantine/ instead of stopping.
    """
    from grdr.experiments.report import write_report
    from grdr.experiments.sweep.store import StoreError, load

    try:
        readable_out(out)
        _writable_for(out, "report.md and the summary tables")
        load(out, quarantine=quarantine)  # every record checked, before the report reads them
        path = write_report(out, preset=None)
    except (UsageError, StoreError) as err:
        fail("grdr report", err, 2 if isinstance(err, UsageError) else 1)
    print(f"wrote {path}")
    return path


def cmd_demo(out: Path = Path("results"), preset: Preset = "quick", progress: bool = True, jobs: int = 1,
             executor: Literal["local", "ray"] = "local", address: str | None = None) -> Path:
    """Run every experiment that has PRESET, render the figures, fit the laws and write OUT/report.md.

    `--preset scale` runs the three experiments about scale (drift_corpus over N = 1e2-1e5, model_scale's
    widths 8-1,024, capacity_dim): 26 minutes cold on a quiet 2-core machine, longer under other jobs'
    load (benchmarks/README.md gives what was measured).

    Records are written atomically, so an interrupted demo resumes. With jobs > 1 the experiments
    run in worker processes, longest first; on the 2-core development machine that was not
    reliably faster (650 s and 863 s in two runs with two workers, 818 s one after another), since
    each worker's XLA also uses every core, and it has no progress bars.

    Args:
      jobs: experiments run at once (1: one after another, in this process, with progress bars;
        0: one worker process per CPU, and one in all on a GPU or TPU).
      executor: local, or ray: each experiment's groups of points as Ray tasks (with jobs = 1).
      address: Ray only: the cluster to join ("auto" or HOST:PORT); none starts Ray on this machine.
    """
    from grdr.experiments.report import write_report

    try:
        if jobs < 0:
            raise UsageError(f"--jobs={jobs}: expected 0 (one per CPU) or a positive count")
        if executor == "ray" and jobs != 1:
            raise UsageError(f"--jobs={jobs}: with --executor ray, Ray schedules the work; expected --jobs 1")
        usable_out(out)
    except UsageError as err:
        fail("grdr demo", err)
    t0 = time.perf_counter()
    failed = demo.run_all(preset, out, progress=progress, jobs=jobs,
                          **({"executor": "ray", "address": address} if executor == "ray" else {}))
    cmd_figures(out)
    cmd_fit(None, out)
    path = write_report(out, preset=preset, seconds=time.perf_counter() - t0)
    print(f"wrote {path} ({time.perf_counter() - t0:.0f} s in all)")
    if failed:
        raise SystemExit(f"grdr demo: {len(failed)} experiment(s) failed: {', '.join(failed)} (tracebacks above); "
                         f"the report covers the records that were stored, and the same command resumes")
    return path


def cmd_fit(name: Annotated[str | None, tyro.conf.Positional, tyro.conf.arg(metavar="[NAME]")] = None, out: Path = Path("results"), quarantine: bool = False,
            loss: Literal["squared", "huber"] = "squared", space: Literal["auto", "linear", "log"] = "auto",
            resamples: int = 1000) -> Path:
    """Fit metric = a x^-alpha + c to stored records (every experiment, or NAME) and write OUT/fits.csv.

    Every law gets profile intervals, a bootstrap over seeds and an out-of-sample check (fitted without
    its largest x, which it must predict); the last line counts the laws that pass it.

    Args:
        name: one experiment (default: every experiment with records).
        out: folder of results.
        quarantine: move unreadable record files to <experiment>/quarantine/ instead of stopping.
        loss: squared (least squares) or huber (robust to outlying seeds; fitted in log space unless --space says).
        space: linear (residuals of the metric) or log (of its log: noise that grows with the metric); auto:
            linear for squared, log for huber.
        resamples: draws of the bootstrap over seeds per law (0: no intervals and no out-of-sample check).
    """
    import pandas as pd

    from grdr.experiments.fits import format_fits, oos_summary, write_fits
    from grdr.experiments.sweep.store import StoreError

    try:
        if name is not None and name not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
        if resamples < 0:
            raise UsageError(f"--resamples={resamples}: expected 0 or more")
        readable_out(out)
        _writable_for(out, "fits.csv")
        path = write_fits(out, name, quarantine=quarantine, loss=loss, space=None if space == "auto" else space,
                          bootstrap=resamples)
    except (UsageError, StoreError) as err:
        fail("grdr fit", err, 2 if isinstance(err, UsageError) else 1)
    table = pd.read_csv(path)
    fitted = table if name is None else table[table["experiment"] == name]
    print(format_fits(fitted))
    print(oos_summary(fitted))
    kept = sorted(set(table["experiment"]) - set(fitted["experiment"]))
    print(f"wrote {path}" + (f" (the rows of {', '.join(kept)} kept as they were)" if kept else ""))
    return path


def cmd_check(seed: int = 0) -> int:
    """Run the derivation checks of theory/ (and those of sim/ that need a model) and print a table;
    exit 1 if any fails."""
    from grdr.sim.checks import run_checks as model_checks
    from grdr.theory import checks as theory_checks
    from grdr.theory.checks import format_table, run_checks

    # one group of checks at a time, each announced on stderr, so that 20-odd seconds of compiling and
    # Monte Carlo are not silent; every group is seeded by `seed` alone
    battery = [(group, lambda g=group: run_checks(seed=seed, groups=(g,)))
               for group in getattr(theory_checks, "_GROUPS", ())] or [("theory", lambda: run_checks(seed=seed))]
    battery.append(("models (SeqGR's trie rank)", lambda: model_checks(seed=seed)))
    results = []
    for i, (group, run) in enumerate(battery, 1):
        t0 = time.perf_counter()
        print(f"grdr check: [{i}/{len(battery)}] {group} ...", end="", file=sys.stderr, flush=True)
        found = run()
        bad = sum(not r.passed for r in found)
        print(f" {len(found)} checks, {bad} failed, {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        results += found
    print(format_table(results))
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


COMMANDS = {"list": cmd_list, "run": None, "figures": cmd_figures, "report": cmd_report, "demo": cmd_demo,
            "check": cmd_check, "fit": cmd_fit, "status": cmd_status, "real": cmd_real}
"""The commands in the order `grdr --help` lists them (`run` is built per experiment, grdr.tree)."""

DESCRIPTION = ("grdr: generative versus dense retrieval, theory and simulation (docs/design.md). "
               "`grdr COMMAND --help` lists a command's options, `grdr run NAME --help` an experiment's; "
               "`grdr --version` prints the version; `grdr --tyro-write-completion bash|zsh|tcsh|fish FILE` "
               "writes a shell completion script covering every command, experiment and flag.")


def _experiment_named(args: list[str]) -> None:
    """`grdr run` needs an experiment's name first: one line naming the known ones otherwise."""
    if args and args[0] in ("-h", "--help"):
        return
    if not args or args[0].startswith("-"):
        fail("grdr run", UsageError(f"expected an experiment: grdr run NAME [--preset smoke|quick|scale|paper] "
                                    f"[--out DIR] [overrides]; experiments: {', '.join(EXPERIMENTS)}"))
    if args[0] not in EXPERIMENTS:
        fail("grdr run", UsageError(f"unknown experiment {args[0]!r}; known: {', '.join(EXPERIMENTS)}"))


def _prog(argv: list[str]) -> str:
    """The command a message names: `grdr run NAME`, `grdr COMMAND` or `grdr`."""
    if len(argv) > 1 and argv[0] == "run" and argv[1] in EXPERIMENTS:
        return f"grdr run {argv[1]}"
    return f"grdr {argv[0]}" if argv and argv[0] in COMMANDS else "grdr"


def parse(argv: list[str]):
    """The command line parsed by the command tree (grdr.tree), nothing run: a `grdr.tree.Run` for
    `grdr run NAME` (its `experiment` holds the RunOptions and the unchecked Config), the call to
    make for any other command. `--help` exits here; a command line tyro rejects exits here with one
    line naming what was typed and what is accepted (exit status 2)."""
    import typing

    from grdr import tree

    command = argv[0] if argv else "--help"
    if command == "run":
        _experiment_named(argv[1:])
    commands = dict(COMMANDS)
    if command in ("real", "--tyro-write-completion"):  # its sections' defaults are the preset's (grdr.real)
        commands["real"] = real_command(tree.preset_of(argv, typing.get_args(Preset), default="quick"))
    if command != "run" and command != "--tyro-write-completion":
        # the run tree imports every experiment (and JAX): only for `run` and the completion script
        experiments = {}
        commands["run"] = tree.run_command({}, RunOptions, "quick", claim_of)
        known = tree.flags_of(commands[command]) if command in commands and commands[command] else []
    else:
        experiments = {name: load_experiment(name) for name in EXPERIMENTS}
        preset = tree.preset_of(argv, typing.get_args(Preset), default="quick")
        named = experiments.get(argv[1]) if command == "run" and len(argv) > 1 else None
        if named is not None and preset not in named.PRESETS:
            fail(_prog(argv), UsageError(f"--preset {preset}: {argv[1]} has no such preset; its presets: "
                                         f"{', '.join(experiments[argv[1]].PRESETS)}"))
        commands["run"] = tree.run_command(experiments, RunOptions, preset, claim)
        known = tree.flags_of(RunOptions) + (tree.flags_of(experiments[argv[1]].Config)
                                             if len(argv) > 1 and argv[1] in experiments else [])
    try:
        return tree.parse(tree.command_tree(commands, invoked=command), argv, prog="grdr", description=DESCRIPTION,
                          held_back=tree.config_classes(experiments) + getattr(commands["real"], "held_back", []),
                          known_flags=known + ["--help"],
                          commands=list(COMMANDS))
    except tree.ParseFailure as err:
        fail(_prog(argv), err)


def main(argv: list[str] | None = None) -> int:
    import shlex

    from grdr.experiments.sweep import store, xla_cache
    from grdr.tree import Run

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):
        from importlib.metadata import version

        print(f"grdr {version('grdr')}")
        return 0
    if argv[:1] == ["help"]:  # `grdr help run drift_corpus` is `grdr run drift_corpus --help`
        argv = argv[1:] + ["--help"]
    if not argv:
        argv = ["--help"]
    try:
        parsed = parse(argv)
        if argv[0] in ("run", "demo", "real", "check"):
            xla_cache.enable(xla_cache.from_environment())
        store.COMMAND_LINE = "grdr " + " ".join(shlex.quote(a) for a in argv)
        if isinstance(parsed, Run):
            cmd_run(parsed.experiment)
            return 0
        result = parsed()
    except KeyboardInterrupt:  # Ctrl-C: one line; a sweep's claims are released where it stopped
        fail(_prog(argv), "interrupted; the records stored so far are kept and the same command resumes", 130)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
