"""Command-line configs that fail before any work starts, in one line that names the flag.

tyro builds an experiment's frozen Config (and its nested sections) from the preset and the flags
(grdr.tree).
The Configs check themselves in `__post_init__`, naming the field (`TrainConfig.steps=0: expected
at least 1`); while tyro builds them those checks are held back, then run bottom-up on the result,
so that each failure can be reported as the flag a user typed (`--train.steps=0: expected at least
1`), once, with exit status 2 and no traceback. Also here: the checks of a results folder that a
command will write to or read from.
"""
from __future__ import annotations

import ast
import dataclasses
import math
import os
import re
import sys
import tempfile
import typing
from contextlib import contextmanager
from pathlib import Path

__all__ = ["UsageError", "checked", "validate", "point_error", "axis_flag", "flag_of", "usable_out", "readable_out", "fail", "dataclasses_in",
           "checks_held_back"]


class UsageError(ValueError):
    """Bad input from the command line: the message is one line, to print as is (exit status 2)."""


def fail(prog: str, err: Exception, status: int = 2):
    """Print `prog: message` on one line to stderr and exit with `status`."""
    message = " ".join(str(err).split())
    print(f"{prog}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def dataclasses_in(cls, seen=None) -> list[type]:
    """cls and every dataclass type among its fields, recursively."""
    seen = [] if seen is None else seen
    if not dataclasses.is_dataclass(cls) or cls in seen:
        return seen
    seen.append(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dataclasses_in(hints.get(f.name), seen)
    return seen


@contextmanager
def checks_held_back(classes):
    """Within the block, the __post_init__ checks of `classes` do nothing (tyro builds Configs
    field by field; `validate` runs the checks afterwards, naming the flag)."""
    saved = {c: c.__dict__["__post_init__"] for c in classes if "__post_init__" in c.__dict__}
    try:
        for c in saved:
            c.__post_init__ = lambda self: None
        yield
    finally:
        for c, f in saved.items():
            c.__post_init__ = f


_FIELD = re.compile(r"^[A-Z]\w*\.((?:[a-z_]\w*\.)*[a-z_]\w*)(.*)$", re.S)


def flag_of(prefix: str, field_path: str) -> str:
    """The command-line flag of a (nested) Config field: ("train.", "learning_rate") -> --train.learning-rate."""
    return "--" + (prefix + field_path).replace("_", "-")


def _not_finite(value) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


def validate(cfg, prefix: str = "") -> None:
    """Run cfg's checks (its sections' first); raise UsageError naming the flag of the bad field.
    Before them, every number typed must be finite: no setting means anything at inf or nan (and
    1e400 is inf), whether or not its own check says so."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, f"{prefix}{f.name}.")
        elif _not_finite(value):
            shown = value[0] if isinstance(value, tuple) and len(value) == 1 else value
            raise UsageError(f"{flag_of(prefix, f.name)}={shown}: expected a finite number")
    check = getattr(type(cfg), "__post_init__", None)
    if check is None:
        return
    try:
        check(cfg)
    except (ValueError, TypeError) as err:
        text = " ".join(str(err).split())
        m = _FIELD.match(text)
        if m:
            raise UsageError(f"{flag_of(prefix, m.group(1))}{m.group(2)}") from None
        raise UsageError(f"{prefix.rstrip('.') or 'options'}: {text}") from None


_POINT_ERROR = re.compile(r"^([A-Z]\w*)\.([a-z_]\w*)=(.*?)(: .*)$", re.S)


def point_error(cfg, err: Exception) -> UsageError | None:
    """A check that failed on a sweep point's section (`CorpusSpec.n_docs=100000000: expected ...`) as
    the flag a user typed: the axis that set the value for the point (`--n-docs=100000000: ...`, found
    among cfg's tuple fields named like the field), else the section's flag (`--corpus.qrels-k=500: ...`).
    None if the message names no section of cfg."""
    m = _POINT_ERROR.match(" ".join(str(err).split()))
    if not m:
        return None
    class_name, field, value, rest = m.groups()
    section = next((f.name for f in dataclasses.fields(cfg)
                    if type(getattr(cfg, f.name)).__name__ == class_name), None)
    if section is None:
        return None
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return UsageError(f"{axis_flag(cfg, section, field, parsed)}={value}{rest}")


def axis_flag(cfg, section: str, field: str, value) -> str:
    """The flag that gave a point's `section.field` its `value`: the sweep's axis (a tuple field of cfg
    named like the field, `n_docs`, `dims`, `table_n_docs`, holding the value) when the section itself
    holds another value, else the section's own flag (`--corpus.n-docs`)."""
    held = getattr(getattr(cfg, section, None), field, None)
    for f in dataclasses.fields(cfg):
        axis = getattr(cfg, f.name)
        named = f.name in (field, field + "s") or f.name.endswith(("_" + field, "_" + field + "s"))
        if named and isinstance(axis, tuple) and value in axis and held != value:
            return flag_of("", f.name)
    return flag_of(f"{section}.", field)


def checked(build, config_cls):
    """build() (which constructs a config_cls) with its checks held back, then validated: UsageError
    names the flag of the first bad field."""
    with checks_held_back(dataclasses_in(config_cls)):
        cfg = build()
    validate(cfg)
    return cfg


def usable_out(out: Path) -> Path:
    """A results folder that exists (created if need be) and takes files; UsageError otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".grdr-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write there ({err.strerror or err}); expected a folder you can "
                         "write to") from None
    return out


def readable_out(out: Path) -> Path:
    """A results folder to read from; UsageError if it is missing or not a folder."""
    out = Path(out)
    if not out.exists():
        raise UsageError(f"--out {out}: no such folder (run an experiment first: grdr run NAME --out {out})")
    if not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a folder of results")
    return out
