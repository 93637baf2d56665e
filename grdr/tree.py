"""The `grdr` command tree on tyro's subcommands (docs/design.md, section 3).

One tyro parser covers every command, so `grdr --help` lists them all, every command's `--help`
shows its options, and tyro's shell completion (`grdr --tyro-write-completion bash FILE`) knows
every command, experiment and flag.

`grdr run NAME` is a subcommand per experiment whose options are the run options (`--preset`,
`--out`, ...) and every field of the experiment's frozen Config, nested sections by their dotted
names. A Config's defaults are those of the chosen preset, so the preset is read first (`preset_of`)
and the tree is built with that preset's Configs as defaults: `--preset smoke --train.steps 5`
starts from smoke and changes one field, and `--help` prints the defaults of the preset asked for.

Commands are parsed, not run, by tyro: each function command becomes a constructor that returns
the call to make (`deferred`), so that nothing runs while the Configs' checks are held back
(grdr.configs: they run after parsing, naming the flag).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, Callable, Union

import tyro
from tyro.conf import arg, subcommand

__all__ = ["deferred", "RunNode", "Run", "run_command", "command_tree", "preset_of", "config_classes"]


def deferred(fn: Callable) -> Callable:
    """A constructor with fn's signature and help that returns the call fn(...) instead of making it."""

    @functools.wraps(fn)
    def parsed(*args, **kwargs):
        return functools.partial(fn, *args, **kwargs)

    return parsed


class RunNode:
    """Base of the generated `grdr run NAME` nodes: `module` is the experiment, `options` the run
    options, `config` its Config."""

    module: Any
    options: Any
    config: Any


class Run:
    """Base of the generated `run` command: `experiment` is the RunNode parsed."""

    experiment: RunNode


def _run_node(name: str, module, options_cls, preset: str) -> type:
    """The dataclass `grdr run NAME` parses into: the run options and the experiment's Config, both
    flattened into top-level flags (no `--options.` or `--config.` prefix)."""
    node = dataclasses.make_dataclass(
        f"Run_{name}",
        [("options", Annotated[options_cls, arg(name="", prefix_name=False)],
          dataclasses.field(default=options_cls(preset=preset))),
         ("config", Annotated[module.Config, arg(name="", prefix_name=False)],
          dataclasses.field(default=module.PRESETS[preset]))],
        bases=(RunNode,), frozen=True)
    node.module = module
    return node


def run_command(experiments: dict, options_cls, preset: str, describe: Callable) -> type:
    """The `run` command: one subcommand per experiment (name -> module), Configs at `preset`'s defaults.
    With no experiments (a command line that is not `run`'s), an empty placeholder that keeps its
    place in `grdr --help` without importing every experiment."""
    doc = ("Run an experiment's sweep: grdr run NAME [--preset smoke|quick|paper] [--out DIR] [overrides].\n\n"
           "Every field of the experiment's Config can be overridden, nested sections by dotted names "
           "(--train.steps 500); the defaults are those of the chosen --preset. `grdr run NAME --help` "
           "lists an experiment's options with its preset's defaults.")
    if not experiments:
        return dataclasses.make_dataclass("Run", [], bases=(Run,), frozen=True, namespace={"__doc__": doc})
    choices = tuple(
        Annotated[_run_node(name, module, options_cls, preset),
                  subcommand(name, prefix_name=False, description=describe(module))]
        for name, module in experiments.items())
    experiment = Annotated[Union[choices] if len(choices) > 1 else choices[0], arg(name="")]
    return dataclasses.make_dataclass("Run", [("experiment", experiment)], bases=(Run,), frozen=True,
                                      namespace={"__doc__": doc})


def _summary(target) -> str | None:
    """The first paragraph of a command's docstring, on one line."""
    doc = (target.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) or None


def command_tree(commands: dict[str, Callable | type], invoked: str | None = None):
    """The top-level union of subcommands: functions are `deferred`, dataclasses parsed as they are.
    `grdr --help` lists each command with the first paragraph of its docstring; the command being
    invoked keeps its whole docstring for its own `--help`."""
    choices = []
    for name, target in commands.items():
        described = {} if name == invoked else {"description": _summary(target)}
        if isinstance(target, type):
            choices.append(Annotated[target, subcommand(name, prefix_name=False, **described)])
        else:
            choices.append(Annotated[Any, subcommand(name, prefix_name=False, constructor=deferred(target),
                                                     **described)])
    return Union[tuple(choices)]


def preset_of(argv: list[str], presets: tuple[str, ...], default: str) -> str:
    """The value of the last `--preset` in argv (`--preset P` or `--preset=P`; the last wins, as
    it does for the run option tyro parses), or `default` when it is absent or not a preset (tyro
    then reports the bad value)."""
    found = default
    for i, a in enumerate(argv):
        value = a.split("=", 1)[1] if a.startswith("--preset=") else (
            argv[i + 1] if a == "--preset" and i + 1 < len(argv) else None)
        if value is not None:
            found = value if value in presets else default
    return found


def config_classes(experiments: dict) -> list[type]:
    """Every experiment Config class and its nested section classes (whose checks tyro must not run)."""
    from grdr.configs import dataclasses_in

    found: list[type] = []
    for module in experiments.values():
        dataclasses_in(module.Config, found)
    return found


def parse(tree, argv: list[str], *, prog: str, description: str, held_back: list[type]):
    """tyro's parse of argv against the tree, with the Configs' checks held back."""
    from grdr.configs import checks_held_back

    with checks_held_back(held_back):
        return tyro.cli(tree, args=argv, prog=prog, description=description)
