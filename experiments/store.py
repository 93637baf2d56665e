"""The record store, under the name the README documents (`experiments.store.load(out, name)`);
it lives in experiments.sweep.store."""
from grdr.experiments.sweep.store import *  # noqa: F401,F403
from grdr.experiments.sweep.store import __all__  # noqa: F401
