"""Strict numerics for every test: silent rank promotion is an error (STYLE.md 9). Tests never write
to the user's persistent compilation cache."""
import os

import jax

os.environ.setdefault("GRDR_COMPILE_CACHE", "off")
jax.config.update("jax_numpy_rank_promotion", "raise")
