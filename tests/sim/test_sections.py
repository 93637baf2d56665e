"""sim.sections: a section made from some of a class's own fields keeps their types, defaults and
documentation, checks itself as told, and pickles by reference where its class keeps it."""
import dataclasses
import pickle
from typing import ClassVar

import pytest

from grdr.sim.sections import field_docs, section_class


@dataclasses.dataclass(frozen=True)
class Widget:
    """A widget."""

    kind: ClassVar[str] = "widget"
    size: int = 3
    """How big it is."""
    colour: str = "red"
    weight: float = 1.5
    """How heavy it is,
    in kilograms."""


def _check(self):
    if self.size < 1:
        raise ValueError(f"Widget.size={self.size}: expected at least 1")


Widget.Settings = section_class(Widget, [f for f in dataclasses.fields(Widget) if f.name != "colour"], "Its settings.",
                                _check)


def test_the_section_has_the_chosen_fields_with_their_types_defaults_and_docs():
    section = Widget.Settings
    assert [(f.name, f.type, f.default) for f in dataclasses.fields(section)] == [("size", int, 3), ("weight", float, 1.5)]
    assert section.__doc__ == ("Its settings.\n\nArgs:\n    size: How big it is.\n"
                               "    weight: How heavy it is, in kilograms.\n")
    assert field_docs(Widget) == {"size": "How big it is.", "weight": "How heavy it is, in kilograms."}
    with pytest.raises(dataclasses.FrozenInstanceError):
        section().size = 4


def test_the_section_checks_itself_and_pickles_by_reference():
    with pytest.raises(ValueError, match=r"Widget\.size=0: expected at least 1"):
        Widget.Settings(size=0)
    value = Widget.Settings(size=5, weight=2.0)
    assert pickle.loads(pickle.dumps(value)) == value and type(value).__qualname__ == "Widget.Settings"
