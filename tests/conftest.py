"""Strict numerics for every test: silent rank promotion is an error (STYLE.md 9)."""
import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
