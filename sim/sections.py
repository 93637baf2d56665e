"""Sections of a configuration made from a class's own fields: a frozen dataclass of some of its
dataclass fields, with their types, defaults and the docstrings written under them (its `__doc__`
lists them, which tyro shows as the flags' help), checked by a function of the class's choosing.
sim.scorers makes each scorer's settings a section of ModelConfig this way (`--model.lowrank.rank`).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Callable, Sequence

__all__ = ["field_docs", "section_class"]


def field_docs(cls) -> dict[str, str]:
    """The docstrings written under a class's fields in its source (empty where there is no source)."""
    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    except (OSError, TypeError, SyntaxError, IndexError):
        return {}
    docs = {}
    for field, doc in zip(body, body[1:]):
        if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)):
            docs[field.target.id] = " ".join(doc.value.value.split())
    return docs


def section_class(cls, fields: Sequence[dataclasses.Field], summary: str, check: Callable | None = None) -> type:
    """A frozen dataclass `<cls>Settings` of `fields` (dataclass fields of `cls`) at their defaults, its
    docstring `summary` and each field's documentation (an Args section), `check(self)` run after
    construction. It is pickled by reference as `cls.Settings`, where the caller keeps it."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    doc = f"{summary}\n\nArgs:\n" + "".join(f"    {f.name}: {docs.get(f.name, f.name)}\n" for f in fields)
    namespace = {"__doc__": doc, **({"__post_init__": check} if check is not None else {})}
    section = dataclasses.make_dataclass(f"{cls.__name__}Settings",
                                         [(f.name, hints[f.name], dataclasses.field(default=f.default)) for f in fields],
                                         frozen=True, namespace=namespace)
    section.__module__ = cls.__module__
    section.__qualname__ = f"{cls.__qualname__}.Settings"
    return section
