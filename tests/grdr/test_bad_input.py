"""Bad input gets one line naming what is wrong, exit status 2 for usage (1 for data: a results folder
with nothing usable in it, a record edited by hand, an outside run that names none of the collection's
ids), the same with and without --dry-run, no traceback, and nothing trained or written. Run
in-process through the `grdr` entry point, as a user's command line would."""
import json
from pathlib import Path

import pytest

from grdr.experiments.registry import EXPERIMENTS
from grdr.experiments.sweep import store
from grdr import cli

LIMIT_SMALL = Path(__file__).resolve().parents[2] / "realdata" / "fixtures" / "limit-small"
MSMARCO = Path(__file__).resolve().parents[2] / "realdata" / "fixtures" / "msmarco"
REAL_LIMIT = ["real", "--format", "beir", "--path", str(LIMIT_SMALL)]  # grdr real on LIMIT-small


def _folders(tmp: Path) -> dict[str, str]:
    (tmp / "a_file").write_text("not a folder")
    (tmp / "empty").mkdir()
    (tmp / "corrupt" / "drift_corpus").mkdir(parents=True)
    (tmp / "corrupt" / "drift_corpus" / "0123.json").write_text("{not json")
    (tmp / "foreign" / "model_scale").mkdir(parents=True)
    (tmp / "foreign" / "model_scale" / "abcd.json").write_text(json.dumps({"hello": 1}))
    folders = {"OUT": str(tmp / "out"), "FILE": str(tmp / "a_file"), "EMPTY": str(tmp / "empty"),
               "MISSING": str(tmp / "missing"), "CORRUPT": str(tmp / "corrupt"), "FOREIGN": str(tmp / "foreign")}
    # records edited by hand: two valid drift_corpus records, then one field of the first changed
    edits = {"HIGH": lambda r: r["metrics"].update({"Success@1": "high"}),
             "NULL": lambda r: r["metrics"].update({"Success@1": None}),
             "DELETED": lambda r: r["config"].pop("n_docs"),
             "ZERO": lambda r: r["config"].update({"seed": "zero"}),
             "ABOVE": lambda r: r["metrics"].update({"Success@1": 1.5}),
             "NEGKL": lambda r: r["metrics"].update({"kl_true": -3.0})}
    for name, edit in edits.items():
        paths = [store.write_record(tmp / name, "drift_corpus", {"model": "dr_global", "n_docs": 100 * (i + 1),
                                                                   "seed": 0}, {"Success@1": 0.5, "kl_true": 0.1}, 1.0)
                 for i in range(2)]
        record = json.loads(paths[0].read_text())
        edit(record)
        paths[0].write_text(json.dumps(record))
        folders[name] = str(tmp / name)
    moved = store.write_record(tmp / "moved", "drift_corpus", {"model": "dr_global", "n_docs": 100, "seed": 0},
                               {"Success@1": 0.5}, 1.0)
    (tmp / "moved" / "model_scale").mkdir()
    moved.rename(tmp / "moved" / "model_scale" / moved.name)
    folders["MOVED"] = str(tmp / "moved")
    # outside runs of LIMIT-small: ids with "_" where the collection's TREC ids have "%20"; query ids unknown
    docs = [json.loads(line)["_id"] for line in (LIMIT_SMALL / "corpus.jsonl").read_text().splitlines()]
    (tmp / "under.trec").write_text("".join(f"query_{q} Q0 {d.replace(' ', '_')} {r + 1} {10 - r} x\n"
                                            for q in range(5) for r, d in enumerate(docs[:10])))
    (tmp / "qbad.trec").write_text("".join(f"q{q} Q0 {d.replace(' ', '%20')} {r + 1} {10 - r} x\n"
                                           for q in range(5) for r, d in enumerate(docs[:10])))
    folders.update(UNDER=str(tmp / "under.trec"), QBAD=str(tmp / "qbad.trec"))
    return folders


RUN = ["run", "drift_corpus", "--preset", "smoke", "--out", "OUT"]
# (command line, exit status, what the one line must say)
CASES = [
    (RUN + ["--n-docs", "0"], 2, "--n-docs=(0,): expected corpus sizes >= 2"),
    (RUN + ["--n-docs", "-5"], 2, "--n-docs=(-5,)"),
    (RUN + ["--table-n-docs", "1"], 2, "--table-n-docs"),
    (RUN + ["--train.steps", "0"], 2, "--train.steps=0"),
    (RUN + ["--train.batch-size", "0"], 2, "--train.batch-size=0"),
    (RUN + ["--train.learning-rate", "-1"], 2, "--train.learning-rate=-1.0"),
    (RUN + ["--train.learning-rate", "nan"], 2, "--train.learning-rate=nan"),
    (RUN + ["--corpus.n-test-queries", "0"], 2, "--corpus.n-test-queries=0"),
    (RUN + ["--corpus.beta", "-3"], 2, "--corpus.beta=-3.0"),
    (RUN + ["--corpus.latent-rank", "0"], 2, "--corpus.latent-rank=0"),
    (RUN + ["--model.dim", "0"], 2, "--model.dim=0"),
    (RUN + ["--seeds", "-1"], 2, "--seeds=(-1,): expected distinct non-negative integers"),
    (RUN + ["--seeds", "0", "0"], 2, "--seeds=(0, 0): expected distinct"),
    (RUN + ["--models"], 2, "--models: empty"),
    (RUN + ["--models", "dr_globl"], 2, "dr_globl"),
    (RUN + ["--train.num-negatives", "5000"], 2, "--train.num-negatives=5000 must be below every N"),
    # the held-out queries come out of the training queries: refused before any point runs, --dry-run alike
    (RUN + ["--train.heldout", "5000"], 2, "--train.heldout=5000: needs --corpus.n-train-queries above it (got 1,000)"),
    (RUN + ["--train.heldout", "5000", "--dry-run"], 2, "--train.heldout=5000: needs --corpus.n-train-queries above it"),
    (RUN + ["--corpus.n-train-queries", "100"], 2,
     "--train.heldout=100: needs --corpus.n-train-queries above it (got 100)"),
    (RUN + ["--corpus.n-train-queries", "100", "--dry-run"], 2, "--train.heldout=100: needs --corpus.n-train-queries"),
    (["run", "drift_corpus", "--preset", "smoke", "--out", "FILE"], 2, "is a file; expected a folder"),
    (["run", "drift_corpu", "--out", "OUT"], 2, "unknown experiment 'drift_corpu'; known: drift_corpus"),
    (["run"], 2, "expected an experiment"),
    (["run", "critical_n", "--preset", "smoke", "--out", "OUT", "--seeds", "-1"], 2, "--seeds=(-1,)"),
    (["run", "critical_n", "--preset", "smoke", "--out", "OUT", "--dims", "0"], 2, "--dims=(0,)"),
    (["run", "critical_n", "--preset", "smoke", "--out", "OUT", "--success", "best"], 2, "--success='best'"),
    (["run", "critical_n", "--preset", "smoke", "--out", "OUT", "--patience", "0"], 2, "--patience=0"),
    (["run", "model_scale", "--preset", "smoke", "--out", "OUT", "--widths", "0"], 2, "--widths=(0,)"),
    (["run", "capacity_dim", "--preset", "smoke", "--out", "OUT", "--seeds", "0", "0"], 2, "--seeds=(0, 0)"),
    (["run", "negatives", "--preset", "smoke", "--out", "OUT", "--seeds", "-3"], 2, "--seeds=(-3,)"),
    (["run", "real_scaling", "--preset", "smoke", "--collections", "beir:MISSING", "--dry-run"], 1,
     "corpus.jsonl: no such file (nor corpus.jsonl.gz); expected the BEIR layout"),
    (["run", "real_scaling", "--preset", "smoke", "--collections", "beir:MISSING", "--out", "OUT"], 1,
     "corpus.jsonl: no such file (nor corpus.jsonl.gz); expected the BEIR layout"),
    (["figures", "--out", "MISSING"], 2, "no such folder"),
    (["figures", "--out", "FILE"], 2, "is a file"),
    (["figures", "--out", "EMPTY"], 1, "no records under"),
    (["figures", "--out", "CORRUPT"], 1, "0123.json: not a results record (invalid JSON"),
    (["figures", "--out", "FOREIGN"], 1, "abcd.json: not a results record (no run_id, config, metrics, seconds)"),
    (["fit", "drift_corpu", "--out", "EMPTY"], 2, "unknown experiment 'drift_corpu'"),
    (["fit", "--out", "MISSING"], 2, "no such folder"),
    (["fit", "--out", "EMPTY"], 1, "no records of any experiment to fit"),
    (["fit", "drift_corpus", "--out", "CORRUPT"], 1, "0123.json: not a results record"),
    (["status", "--out", "MISSING"], 2, "no such folder"),
    (["demo", "--out", "FILE"], 2, "is a file"),
    (["demo", "--out", "OUT", "--jobs", "-1"], 2, "--jobs=-1"),
    (["real", "--format", "beir", "--path", "MISSING", "--out", "OUT"], 2, "no such folder"),
    ([*REAL_LIMIT, "--split", "foo", "--out", "OUT"], 2,
     "--split foo: " + str(LIMIT_SMALL) + " has no such split; it has test"),
    (["real", "--format", "msmarco", "--path", str(MSMARCO), "--split", "eval", "--out", "OUT"], 2,
     "has no such split; it has dev, train"),
    ([*REAL_LIMIT, "--seeds", "-1", "--out", "OUT"], 2, "--seeds=(-1,)"),
    ([*REAL_LIMIT, "--train.steps", "0", "--out", "OUT"], 2,
     "--train.steps=0: expected at least 1"),
    ([*REAL_LIMIT, "--steps", "0", "--out", "OUT"], 2,
     "--steps: no such option; did you mean"),
    ([*REAL_LIMIT, "--train.sampler", "hard", "--out", "OUT"], 2,
     "--train.sampler='hard' is set by --models for every point; set that instead"),
    ([*REAL_LIMIT, "--model.kind", "seq_gr", "--out", "OUT"], 2,
     "--model.kind='seq_gr' is set by --models for every point"),
    ([*REAL_LIMIT, "--model.scorer", "maxsim", "--model.maxsim.vectors",
      "0", "--out", "OUT"], 2, "--model.maxsim.vectors=0: expected m >= 1"),
    ([*REAL_LIMIT, "--model.lowrank.rank", "2", "--out", "OUT"], 2,
     "--model.lowrank.rank=2: a setting of the lowrank scorer, but the scorer is 'dot'"),
    ([*REAL_LIMIT, "--preset", "scale", "--out", "OUT"], 2,
     "--preset scale: real_scaling has no such preset; its presets: smoke, quick, paper"),
    ([*REAL_LIMIT, "--out", "FILE"], 2, "is a file"),
    # -- the rows --
    # 1: an outside run whose ids match none of the collection's (data: 1), in `grdr real` and in `grdr run`
    ([*REAL_LIMIT, "--preset", "smoke", "--models", "--out", "OUT",
      "--baseline-run", "x=UNDER"], 1, "--baseline-run x=UNDER: line 1: document 'Geneva_Durben' is not in "
                                        "limit-small (N = 46), nor is any of the run's 10 documents"),
    ([*REAL_LIMIT, "--preset", "smoke", "--models", "--out", "OUT",
      "--baseline-run", "x=QBAD"], 1, "line 1: query 'q0' is not an evaluation query of limit-small"),
    (["run", "real_scaling", "--preset", "smoke", "--models", "--collections", "--dim-collections",
      f"beir:{LIMIT_SMALL}", "--baseline-runs", "x=UNDER", "--dry-run"], 1,
     "--baseline-runs x=UNDER: line 1: document 'Geneva_Durben' is not in limit-small"),
    # 3: records edited by hand, or moved into another experiment's folder (data: 1), on figures and fit
    (["figures", "--out", "HIGH"], 1, """metrics['Success@1']="high": expected a number"""),
    (["fit", "drift_corpus", "--out", "HIGH"], 1, """metrics['Success@1']="high": expected a number"""),
    (["figures", "--out", "NULL"], 1, "metrics['Success@1']=null: expected a number (NaN for a value"),
    (["figures", "--out", "DELETED"], 1, "config lacks 'n_docs', which the other 1 record(s) of model 'dr_global' have"),
    (["fit", "--out", "DELETED"], 1, "config lacks 'n_docs'"),
    (["figures", "--out", "ZERO"], 1, "config.seed='zero': a text where the other records have a number"),
    (["figures", "--out", "ABOVE"], 1, "metrics['Success@1']=1.5: outside the values it can take, [0, 1]"),
    (["fit", "drift_corpus", "--out", "NEGKL"], 1, "metrics['kl_true']=-3.0: outside the values it can take, [0, inf]"),
    (["report", "--out", "ABOVE"], 1, "metrics['Success@1']=1.5: outside the values it can take"),
    (["figures", "--out", "MOVED"], 1, "a record of experiment 'drift_corpus' (its field experiment) in the folder "
                                       "of 'model_scale': move it to drift_corpus/"),
    (["fit", "model_scale", "--out", "MOVED"], 1, "a record of experiment 'drift_corpus'"),
    # 8: infinite numbers, a latent rank the features cannot carry, a beta past float32
    (RUN + ["--train.learning-rate", "inf"], 2, "--train.learning-rate=inf: expected a finite number"),
    (RUN + ["--train.learning-rate", "1e400", "--dry-run"], 2, "--train.learning-rate=inf: expected a finite number"),
    (RUN + ["--corpus.latent-rank", "64", "--model.dim", "64"], 2,
     "--corpus.latent-rank=64: expected at most the feature dimension F = 32 (--corpus.feature-dim)"),
    (RUN + ["--corpus.beta", "1e6"], 2, "--corpus.beta=1000000.0: expected a number in [0, 1000]"),
    (["run", "capacity_dim", "--preset", "smoke", "--out", "OUT", "--latent-ranks", "64"], 2,
     "--latent-ranks=64: expected at most the feature dimension F = 32"),
    # 10: what tyro rejects, as one line naming the flag; the same check with and without --dry-run;
    # a section's check named by the flag that set it
    (RUN + ["--n-docs", "abc"], 2, "--n-docs abc: expected integers"),
    (RUN + ["--n-dcs", "10"], 2, "--n-dcs: no such option; did you mean --n-docs"),
    (RUN + ["--train.steps"], 2, "--train.steps: no value given; expected an integer"),
    (["run", "drift_corpus", "--preset", "fast", "--out", "OUT"], 2, "--preset fast: expected one of smoke, quick, scale, paper"),
    (["demo", "--out", "OUT", "--jobs", "abc"], 2, "--jobs abc: expected an integer"),
    (["fit", "--bogus"], 2, "--bogus: no such option; did you mean --out or --loss?"),
    (["fit", "--resamples", "-1", "--out", "EMPTY"], 2, "--resamples=-1: expected 0 or more"),
    (["fit", "--loss", "l1", "--out", "EMPTY"], 2, "--loss l1: expected one of squared, huber"),
    (["frob"], 2, "unknown command 'frob'; commands: list, run, figures, report, demo, check, fit, status, real"),
    (["real", "--path", str(LIMIT_SMALL)], 2, "missing --format (one of msmarco, nq320k, beir, irds)"),
    (RUN + ["--n-docs", "100000000"], 2, "--n-docs=100000000: expected an integer in [2, 5e7]"),
    (RUN + ["--n-docs", "100000000", "--dry-run"], 2, "--n-docs=100000000: expected an integer in [2, 5e7]"),
    (RUN + ["--corpus.qrels-k", "500"], 2, "--corpus.qrels-k=500: expected an integer in [1, n_docs=100]"),
    (RUN + ["--corpus.qrels-k", "500", "--dry-run"], 2, "--corpus.qrels-k=500: expected an integer in [1, n_docs=100]"),
    # -- twenty more that a user could plausibly type --
    (RUN + ["--model.dim=abc"], 2, "--model.dim abc: expected an integer"),
    (RUN + ["--train.batch-size", "1.5"], 2, "--train.batch-size 1.5: expected an integer"),
    (RUN + ["--seeds", "0", "1", "2", "x"], 2, "--seeds 0 1 2 x: expected integers"),
    (RUN + ["--corpus.zipf", "nan"], 2, "--corpus.zipf=nan: expected a finite number"),
    (RUN + ["--corpus.beta", "inf"], 2, "--corpus.beta=inf: expected a finite number"),
    (RUN + ["--dry-run", "yes"], 2, "--dry-run yes: --dry-run takes no value (a switch: --dry-run or --no-dry-run)"),
    (RUN + ["--train.logq", "yes"], 2, "--train.logq takes no value (a switch: --train.logq or --train.no-logq)"),
    (["run", "drift_corpus", "--preset", "Smoke", "--out", "OUT"], 2, "--preset Smoke: expected one of smoke"),
    (RUN + ["--executor", "slurm"], 2, "--executor slurm: expected one of local, ray"),
    (["run", "drift_corpus", "--out"], 2, "--out: no value given; expected a path"),
    (RUN + ["--train.sampler", "popularity"], 2, "--train.sampler='popularity' is set by --models for every point"),
    (RUN + ["--corpus.feature-dim", "2"], 2, "--corpus.latent-rank=4: expected at most the feature dimension F = 2"),
    (["run", "model_scale", "--preset", "smoke", "--out", "OUT", "--n-docs", "100"], 2,
     "--n-docs: no such option; did you mean --corpus.n-docs?"),
    (["run", "capacity_dim", "--preset", "smoke", "--out", "OUT", "--model.dim", "8"], 2,
     "--model.dim=8 is set by --dims for every point; set that instead"),
    (["fit", "drift_corpus", "extra", "--out", "EMPTY"], 2, "extra: unexpected value; no option takes it here"),
    (["figures", "--out"], 2, "--out: no value given; expected a path"),
    (["status", "--outt", "x"], 2, "--outt: no such option; did you mean --out?"),
    (["report", "--out", "MISSING"], 2, "no such folder"),
    (["check", "--seed", "x"], 2, "--seed x: expected an integer"),
    (["demo", "--preset", "huge", "--out", "OUT"], 2, "--preset huge: expected one of smoke, quick, scale, paper"),
    (["real", "--format", "xml", "--path", str(LIMIT_SMALL)], 2, "--format xml: expected one of msmarco, nq320k, beir"),
    ([*REAL_LIMIT, "--features", "bert", "--out", "OUT"], 2,
     "--features bert: expected one of hash, minilm"),
    ([*REAL_LIMIT, "--on-unknown", "skip", "--out", "OUT"], 2,
     "--on-unknown skip: expected one of error, drop"),
    ([*REAL_LIMIT, "--baseline-run", "noequals", "--out", "OUT"], 2,
     "--baseline-run noequals: expected NAME=PATH"),
    ([*REAL_LIMIT, "--baseline-run", "x=MISSING", "--out", "OUT"], 2,
     "--baseline-run x=MISSING: no such file"),
    ([*REAL_LIMIT, "--sizes", "0", "--out", "OUT"], 2,
     "--sizes=(0,): expected values >= 1"),
]


@pytest.mark.parametrize("argv,status,says", CASES, ids=[" ".join(c[0][:2] + c[0][-2:]) for c in CASES])
def test_bad_input_gets_one_line_and_its_exit_status(argv, status, says, tmp_path, capsys):
    folders = _folders(tmp_path)
    argv = [folders.get(a, a) if ":" not in a else a.split(":")[0] + ":" + folders.get(a.split(":")[1], a.split(":")[1])
            for a in argv]  # FORMAT:FOLDER too
    argv = [a.split("=")[0] + "=" + folders.get(a.split("=")[1], a.split("=")[1]) if a.startswith("x=") else a
            for a in argv]  # NAME=FILE too
    says = next((says.replace(k, v) for k, v in sorted(folders.items(), key=lambda kv: -len(kv[0])) if k in says),
                says)
    try:  # a command exits, or returns its status (grdr real returns 1 for data it cannot use)
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"{cli._prog(argv)}: ") and says in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))  # nothing written


def test_fit_with_nothing_to_read_keeps_the_existing_table(tmp_path, capsys):
    (tmp_path / "fits.csv").write_text("an earlier table\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit", "--out", str(tmp_path)])
    assert exit_.value.code == 1
    assert (tmp_path / "fits.csv").read_text() == "an earlier table\n"


def test_quarantine_moves_an_unreadable_record_aside_and_reads_the_rest(tmp_path, capsys):
    folders = _folders(tmp_path)
    with pytest.raises(SystemExit):  # moved aside; then nothing is left to draw
        cli.main(["figures", "--out", folders["CORRUPT"], "--quarantine"])
    assert (Path(folders["CORRUPT"]) / "drift_corpus" / "quarantine" / "0123.json").read_text() == "{not json"
    assert "moved to" in capsys.readouterr().out


def _numeric_flags(cls, prefix=""):
    """(flag, bad values) for every int, float and tuple-of-numbers field of a Config, nested
    sections included: below any range a count, size, seed or rate can have, or not a number."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            yield from _numeric_flags(t, f"{prefix}{f.name}.")
            continue
        inner = typing.get_args(t)[0] if typing.get_origin(t) is tuple else t
        if inner is int:
            yield f"--{prefix}{f.name}".replace("_", "-"), ("-1", "-1000000000")
        elif inner is float:
            yield f"--{prefix}{f.name}".replace("_", "-"), ("nan", "-inf")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_numeric_field_of_every_config_refuses_out_of_range_values_in_one_line(name, tmp_path, capsys):
    from grdr.experiments.catalog import load as load_experiment

    flags = list(_numeric_flags(load_experiment(name).Config))
    assert flags
    for flag, values in flags:
        for value in values:
            with pytest.raises(SystemExit) as exit_:
                cli.main(["run", name, "--preset", "smoke", "--out", str(tmp_path / "out"), flag, value])
            err = capsys.readouterr().err
            assert exit_.value.code == 2 and err.count("\n") == 1, (flag, value, err)
            assert err.startswith(f"grdr run {name}: {flag}"), (flag, value, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))
