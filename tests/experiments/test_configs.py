"""Every experiment's Config names the entries it does not know, and lists the ones it does."""
import dataclasses

import pytest

from grdr.experiments.registry import EXPERIMENTS
from grdr.experiments.catalog import load as load_experiment

FIELD = {"negatives": "samplers", "similarity": "gr"}  # the others choose models


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_config_rejects_an_unknown_name(name):
    module = load_experiment(name)
    field = FIELD.get(name, "models")
    with pytest.raises(ValueError, match=rf"Config\.{field}: unknown \['nope'\]; known: \[.+\]"):
        dataclasses.replace(module.PRESETS["smoke"], **{field: ("nope",)})


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_config_field_and_section_field_has_help_text(name):
    """`grdr run NAME --help` documents every flag: tyro reads each field's docstring or comment."""
    import typing

    from tyro._docstrings import get_field_docstring

    def undocumented(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not get_field_docstring(cls, f.name, ()):
                yield prefix + f.name
            if dataclasses.is_dataclass(hints[f.name]):
                yield from undocumented(hints[f.name], f"{prefix}{f.name}.")

    assert list(undocumented(load_experiment(name).Config)) == []
