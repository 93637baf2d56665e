"""Derivation checks run in float64: every test in tests/theory runs under enable_x64, restored after."""
import jax
import pytest


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield
