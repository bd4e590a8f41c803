"""Test-wide setup: float64 available for the reference tests (engine tests pick their dtype)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
