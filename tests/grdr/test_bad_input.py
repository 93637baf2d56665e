"""Bad input gets one line naming what is wrong, exit status 2 (1 for a results folder with nothing
usable in it), no traceback, and nothing trained or written. Run in-process through the `grdr` entry
point, as a user's command line would."""
import json
from pathlib import Path

import pytest

from grdr import cli

LIMIT_SMALL = Path(__file__).resolve().parents[2] / "realdata" / "fixtures" / "limit-small"
MSMARCO = Path(__file__).resolve().parents[2] / "realdata" / "fixtures" / "msmarco"


def _folders(tmp: Path) -> dict[str, str]:
    (tmp / "a_file").write_text("not a folder")
    (tmp / "empty").mkdir()
    (tmp / "corrupt" / "drift_corpus").mkdir(parents=True)
    (tmp / "corrupt" / "drift_corpus" / "0123.json").write_text("{not json")
    (tmp / "foreign" / "model_scale").mkdir(parents=True)
    (tmp / "foreign" / "model_scale" / "abcd.json").write_text(json.dumps({"hello": 1}))
    return {"OUT": str(tmp / "out"), "FILE": str(tmp / "a_file"), "EMPTY": str(tmp / "empty"),
            "MISSING": str(tmp / "missing"), "CORRUPT": str(tmp / "corrupt"), "FOREIGN": str(tmp / "foreign")}


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
    (["real", "--format", "beir", "--path", str(LIMIT_SMALL), "--split", "foo", "--out", "OUT"], 2,
     "--split foo: " + str(LIMIT_SMALL) + " has no such split; it has test"),
    (["real", "--format", "msmarco", "--path", str(MSMARCO), "--split", "eval", "--out", "OUT"], 2,
     "has no such split; it has dev, train"),
    (["real", "--format", "beir", "--path", str(LIMIT_SMALL), "--seeds", "-1", "--out", "OUT"], 2, "--seeds=(-1,)"),
    (["real", "--format", "beir", "--path", str(LIMIT_SMALL), "--steps", "0", "--out", "OUT"], 2, "--steps=0"),
    (["real", "--format", "beir", "--path", str(LIMIT_SMALL), "--out", "FILE"], 2, "is a file"),
]


@pytest.mark.parametrize("argv,status,says", CASES, ids=[" ".join(c[0][:2] + c[0][-2:]) for c in CASES])
def test_bad_input_gets_one_line_and_its_exit_status(argv, status, says, tmp_path, capsys):
    folders = _folders(tmp_path)
    argv = [folders.get(a, a) if ":" not in a else a.split(":")[0] + ":" + folders.get(a.split(":")[1], a.split(":")[1])
            for a in argv]  # FORMAT:FOLDER too
    says = next((says.replace(k, v) for k, v in folders.items() if k in says), says)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"grdr {argv[0]}") and says in err, err
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


@pytest.mark.parametrize("name", [n for n in __import__("experiments.runner").runner.EXPERIMENTS])
def test_every_numeric_field_of_every_config_refuses_out_of_range_values_in_one_line(name, tmp_path, capsys):
    from experiments.runner import load_experiment

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
