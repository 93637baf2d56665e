"""The one command tree (grdr.tree): help, version and shell completion cover every command and
experiment, and `grdr run NAME` starts from the chosen preset's Config."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from importlib.metadata import version

import pytest

from grdr.experiments.registry import EXPERIMENTS
from grdr.experiments.catalog import load as load_experiment
from grdr import cli
from grdr.tree import Run


def _exit_output(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    out = _exit_output(capsys, ["--help"])
    for command in cli.COMMANDS:
        assert f"• {command}" in out, command
    assert "--version" in out and "--tyro-write-completion" in out


def test_version_is_the_installed_distributions(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"grdr {version('grdr')}"


def test_run_help_lists_every_experiment(capsys):
    out = _exit_output(capsys, ["run", "--help"])
    for name in EXPERIMENTS:
        assert name in out, name


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiments_help_shows_the_run_options_and_every_config_field(capsys, name):
    out = _exit_output(capsys, ["run", name, "--preset", "smoke", "--help"])
    flat = " ".join(out.split())
    assert "--preset" in flat and "--out PATH" in flat and "--dry-run" in flat
    for f in dataclasses.fields(load_experiment(name).Config):
        flag = "--" + f.name.replace("_", "-")
        assert flag in flat, f"{name}: {flag} missing from --help"


def test_help_prints_the_chosen_presets_defaults(capsys):
    module = load_experiment("drift_corpus")
    smoke, quick = module.PRESETS["smoke"].train.steps, module.PRESETS["quick"].train.steps
    assert smoke != quick  # otherwise the test would not tell the presets apart
    for preset, steps in (("smoke", smoke), ("quick", quick)):
        out = " ".join(_exit_output(capsys, ["run", "drift_corpus", "--preset", preset, "--help"]).split())
        section = out[out.index("--train.steps INT"):]
        assert section.split("(default: ", 1)[1].startswith(f"{steps})"), preset


@pytest.mark.parametrize("preset_args", [["--preset", "smoke"], ["--preset=smoke"]])
def test_overrides_apply_on_top_of_the_preset(preset_args):
    module = load_experiment("drift_corpus")
    base = module.PRESETS["smoke"]
    parsed = cli.parse(["run", "drift_corpus", *preset_args, "--out", "elsewhere", "--train.steps", "3",
                        "--n-docs", "50", "60", "--corpus.beta", "7"])
    assert isinstance(parsed, Run)
    node = parsed.experiment
    assert node.module is module and node.options.preset == "smoke" and str(node.options.out) == "elsewhere"
    expected = dataclasses.replace(base, n_docs=(50, 60), train=dataclasses.replace(base.train, steps=3),
                                   corpus=dataclasses.replace(base.corpus, beta=7.0))
    assert node.config == expected


@pytest.mark.parametrize("first, last", [("smoke", "paper"), ("paper", "smoke")])
def test_the_last_preset_given_wins_for_the_options_and_the_config(first, last):
    node = cli.parse(["run", "drift_corpus", "--preset", first, f"--preset={last}"]).experiment
    assert node.options.preset == last and node.config == load_experiment("drift_corpus").PRESETS[last]


def test_help_before_a_command_is_that_commands_help(capsys):
    out = _exit_output(capsys, ["help", "run", "similarity"])
    assert "usage: grdr run similarity" in out


def test_without_a_preset_the_run_starts_from_quick():
    parsed = cli.parse(["run", "negatives"])
    assert parsed.experiment.options.preset == "quick"
    assert parsed.experiment.config == load_experiment("negatives").PRESETS["quick"]


def test_fit_takes_its_experiment_positionally(tmp_path):
    call = cli.parse(["fit", "model_scale", "--out", str(tmp_path)])
    assert call.func is cli.cmd_fit and call.keywords == {"name": "model_scale", "out": tmp_path, "quarantine": False,
                                                          "loss": "squared", "space": "auto", "resamples": 1000}
    call = cli.parse(["fit", "--loss", "huber", "--resamples", "200"])
    assert call.keywords["loss"] == "huber" and call.keywords["space"] == "auto" and call.keywords["resamples"] == 200


@pytest.fixture(scope="module")
def completion(tmp_path_factory):
    path = tmp_path_factory.mktemp("completion") / "grdr.bash"
    with pytest.raises(SystemExit):
        cli.main(["--tyro-write-completion", "bash", str(path)])
    return path


def test_the_completion_script_knows_every_command_experiment_and_nested_flag(completion):
    text = completion.read_text()
    for word in (*cli.COMMANDS, *EXPERIMENTS, "--train.steps", "--corpus.beta", "--baseline-run", "--quarantine"):
        assert word in text, word


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("line, expected", [("grdr st", "status"), ("grdr run simi", "similarity"),
                                            ("grdr run similarity --train.st", "--train.steps")])
def test_bash_completes_commands_experiments_and_flags(completion, line, expected):
    words = line.split()
    script = (f"source {completion}; f=$(complete -p grdr | sed -E 's/.*-F ([^ ]+) .*/\\1/'); "
              f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; "
              f"$f grdr {words[-1]} {words[-2]}; echo \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert expected in out, out
