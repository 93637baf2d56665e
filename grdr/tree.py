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
import re
from typing import Annotated, Any, Callable, Union

import tyro
from tyro.conf import arg, subcommand

__all__ = ["deferred", "RunNode", "Run", "run_command", "command_tree", "preset_of", "config_classes", "parse",
           "ParseFailure", "parse_failure", "flags_of"]


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
          dataclasses.field(default=module.PRESETS.get(preset, module.Config())))],  # `grdr run` refuses a preset
        # an experiment lacks (scale) before parsing; its node keeps its place in the tree
        bases=(RunNode,), frozen=True)
    node.module = module
    return node


def run_command(experiments: dict, options_cls, preset: str, describe: Callable) -> type:
    """The `run` command: one subcommand per experiment (name -> module), Configs at `preset`'s defaults.
    With no experiments (a command line that is not `run`'s), an empty placeholder that keeps its
    place in `grdr --help` without importing every experiment."""
    doc = ("Run an experiment's sweep: grdr run NAME [--preset smoke|quick|scale|paper] [--out DIR] [overrides].\n\n"
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


class ParseFailure(Exception):
    """tyro rejected the command line: `str(self)` is one line naming what was typed and what is accepted."""


_METAVAR_WORDS = {"INT": "an integer", "FLOAT": "a number", "STR": "a text", "PATH": "a path", "BOOL": "True or False"}


def _expected(metavar: str | None) -> str:
    """What a metavar accepts, in words: "INT" -> "an integer", "[INT [INT ...]]" -> "integers",
    "{a,b}" -> "one of a, b"."""
    metavar = (metavar or "").strip()
    if metavar.startswith("{") and metavar.endswith("}"):
        return "one of " + ", ".join(metavar[1:-1].split(","))
    words = re.findall(r"[A-Z]+|\{[^}]*\}", metavar)
    if not words:
        return "a value"
    one = _expected(words[0]) if words[0].startswith("{") else _METAVAR_WORDS.get(words[0], words[0].lower())
    if "..." in metavar:  # a list: "integers", "numbers", "values of one of a, b"
        plural = {"INT": "integers", "FLOAT": "numbers", "STR": "texts", "PATH": "paths"}
        return plural.get(words[0], f"values, each {one}")
    return one


def _flag_of(argument) -> tuple[str, str | None]:
    """(the flag a user types, its metavar) of tyro's argument definition."""
    lowered = getattr(argument, "lowered", None)
    flags = [f for f in getattr(lowered, "name_or_flags", ()) or () if f.startswith("--")]
    return (flags[0] if flags else str(getattr(lowered, "dest", "") or "?")), getattr(lowered, "metavar", None)


def _values_after(argv: list[str], flag: str) -> str:
    """The values typed after the last `flag` (or in `flag=value`), for the message."""
    found = None
    for i, a in enumerate(argv):
        if a == flag:
            rest = []
            for b in argv[i + 1:]:
                if b.startswith("--"):
                    break
                rest.append(b)
            found = " ".join(rest)
        elif a.startswith(flag + "="):
            found = a.split("=", 1)[1]
    return found or ""


def parse_failure(event, argv: list[str], known_flags: list[str], commands: list[str]) -> str:
    """One line for a tyro parse-error event: the flag or token typed, and what is accepted."""
    import difflib

    from tyro import _errors

    kind = type(event).__name__
    if isinstance(event, _errors.UnrecognizedArgs):
        tokens = list(event.tokens)
        flags = [t for t in tokens if t.startswith("-")]
        if not flags:
            if argv and tokens and tokens[0] == argv[0]:
                return f"unknown command {tokens[0]!r}; commands: {', '.join(commands)}"
            where = argv.index(tokens[0]) if tokens[0] in argv else -1
            before = argv[where - 1] if where > 0 else ""
            if before.startswith("--") and "=" not in before:
                head, _, last = before[2:].rpartition(".")
                prefix = "--" + (head + "." if head else "")
                on, off = (prefix + last[3:], before) if last.startswith("no-") else (before, prefix + "no-" + last)
                if off in known_flags:
                    return f"{before} {tokens[0]}: {before} takes no value (a switch: {on} or {off})"
            return f"{' '.join(tokens)}: unexpected value; no option takes it here"
        first = flags[0].split("=", 1)[0]
        close = difflib.get_close_matches(first, known_flags, n=3, cutoff=0.6)
        more = f" ({len(flags) - 1} more unknown: {', '.join(flags[1:])})" if len(flags) > 1 else ""
        hint = f"did you mean {' or '.join(close)}?" if close else "see --help for the options"
        return f"{first}: no such option; {hint}{more}"
    if isinstance(event, _errors.InvalidChoice):
        flag, _ = _flag_of(event.argument)
        return f"{flag} {event.value}: expected one of {', '.join(event.choices)}"
    if isinstance(event, _errors.BadValue):
        flag, metavar = _flag_of(event.argument)
        if event.reason == "too_few_values":
            return f"{flag}: no value given; expected {_expected(metavar)}"
        return f"{flag} {event.offending_value}: {flag} takes no value"
    if isinstance(event, _errors.InstantiationFailure):
        if event.argument is None:
            return " ".join(str(event.message).split())
        flag, metavar = _flag_of(event.argument)
        given = _values_after(argv, flag)
        return f"{flag} {given}: expected {_expected(metavar)}" if given else f"{flag}: expected {_expected(metavar)}"
    if isinstance(event, _errors.MissingArgs):
        missing = []
        for a in event.missing_arguments:
            flag, metavar = _flag_of(a.arg)
            missing.append(f"{flag} ({_expected(metavar)})")
        return f"missing {' and '.join(missing)}"
    if isinstance(event, _errors.MissingSubcommand):
        return f"expected a command: {', '.join(commands)}"
    try:  # any other event: tyro's own title and first line of text
        title, contents = _errors._render(event)
        text = " ".join(str(getattr(c, "as_str_no_ansi", lambda: c)()) for c in contents[:1] if isinstance(c, str)
                        or hasattr(c, "as_str_no_ansi"))
        return " ".join(f"{title}: {text}".split())
    except Exception:  # noqa: BLE001 - the message is all that is needed
        return kind


_BOX = re.compile(r"[\u2500-\u257f|]+")


def _squeezed(text: str) -> str:
    """tyro's boxed error (when its error hook is unavailable) as one line: the box's first text lines."""
    lines = [" ".join(_BOX.sub(" ", line).split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return "; ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else "invalid command line")


def parse(tree, argv: list[str], *, prog: str, description: str, held_back: list[type],
          known_flags: list[str] = (), commands: list[str] = ()):
    """tyro's parse of argv against the tree, with the Configs' checks held back. A command line tyro
    rejects raises ParseFailure with one line (the flag typed and what it accepts) instead of tyro's box."""
    import contextlib
    import io

    from grdr.configs import checks_held_back

    try:
        from tyro import _errors
        hook = _errors.on_parse_error
    except (ImportError, AttributeError):  # another tyro: squeeze its box into one line
        hook = None

    def raise_failure(event):
        raise ParseFailure(parse_failure(event, argv, list(known_flags), list(commands)))

    with checks_held_back(held_back):
        if hook is not None:
            with hook(raise_failure):
                return tyro.cli(tree, args=argv, prog=prog, description=description)
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                return tyro.cli(tree, args=argv, prog=prog, description=description)
        except SystemExit as exit_:
            if exit_.code == 2 and captured.getvalue():
                raise ParseFailure(_squeezed(captured.getvalue())) from None
            raise


def flags_of(target, prefix: str = "") -> list[str]:
    """The flags a dataclass or function accepts (nested dataclasses by dotted names, booleans also as
    --no-X): the candidates for "did you mean"."""
    import inspect
    import typing

    found = []
    if dataclasses.is_dataclass(target):
        hints = typing.get_type_hints(target, include_extras=False)
        items = [(f.name, hints.get(f.name)) for f in dataclasses.fields(target)]
    else:
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # noqa: BLE001
            hints = {}
        items = [(n, hints.get(n)) for n in inspect.signature(target).parameters]
    for name, t in items:
        if dataclasses.is_dataclass(t):
            found += flags_of(t, f"{prefix}{name}.")
            continue
        flag = "--" + (prefix + name).replace("_", "-")
        found.append(flag)
        if t is bool:
            found.append("--" + prefix.replace("_", "-") + "no-" + name.replace("_", "-"))
    return found
