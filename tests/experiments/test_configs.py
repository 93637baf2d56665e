"""Every experiment's Config names the entries it does not know, and lists the ones it does."""
import dataclasses

import pytest

from experiments.runner import EXPERIMENTS, load_experiment

FIELD = {"negatives": "samplers"}  # the others choose models


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_config_rejects_an_unknown_name(name):
    module = load_experiment(name)
    field = FIELD.get(name, "models")
    with pytest.raises(ValueError, match=rf"Config\.{field}: unknown \['nope'\]; known: \[.+\]"):
        dataclasses.replace(module.PRESETS["smoke"], **{field: ("nope",)})
