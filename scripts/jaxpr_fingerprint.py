"""Fingerprints of the engine's per-block program: a hash of the jaxpr of
``yieldmc.engine.blocks.block_stats`` for the butt coupler and the adiabatic coupler's
``landau_zener`` and ``cmt`` models (4096-module blocks, the default package otherwise).

A refactoring of the front end that hands the engine the same program prints the same
hashes; run it on two checkouts and compare::

    PYTHONPATH=<checkout> python scripts/jaxpr_fingerprint.py
"""

from __future__ import annotations

import functools
import hashlib

import jax
import numpy as np

import yieldmc
from yieldmc.engine.blocks import block_stats, device_params
from yieldmc.io.config import problem_from_config, to_container

CASES = {"butt": ["package/coupler=butt"], "landau_zener": ["package.coupler.model=landau_zener"], "cmt": ["package.coupler.model=cmt"]}


def fingerprint(overrides) -> tuple[str, int]:
    """(sha256 prefix, length) of the jaxpr text of one block of the configuration."""
    problem = problem_from_config(to_container(yieldmc.compose([*overrides, "samples=4096",
                                                                "engine.block_size=4096"])))
    sampler = problem.static.sampler
    tables = sampler.tables(problem) if hasattr(sampler, "tables") else None
    program = functools.partial(block_stats, static=problem.static)
    text = str(jax.make_jaxpr(program)(np.uint32(0), np.uint32(0), np.int32(4096), device_params(problem), tables))
    return hashlib.sha256(text.encode()).hexdigest()[:16], len(text)


if __name__ == "__main__":
    for name, overrides in CASES.items():
        digest, size = fingerprint(overrides)
        print(f"{name:13s} {digest}  ({size} characters)")
