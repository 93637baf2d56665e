"""Loads the experiment modules that experiments.registry names. Only the top of the house imports
it (the report writer, the command line): an experiment module and everything it imports sit below.
"""
from __future__ import annotations

import importlib

from grdr.experiments.registry import entry

__all__ = ["load"]


def load(name: str):
    """The experiment module experiments.<name> (imports JAX)."""
    return importlib.import_module(f"grdr.experiments.{entry(name).name}")
