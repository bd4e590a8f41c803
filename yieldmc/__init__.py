"""yieldmc: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics."""

from yieldmc import physics
from yieldmc._version import __version__
from yieldmc.api import run
from yieldmc.config import compose
from yieldmc.optimize import optimize
from yieldmc.problem import Problem, Static, build_problem
from yieldmc.sensitivity import sensitivity

__all__ = [
    "Problem", "Static", "__version__", "build_problem", "compose", "optimize", "physics",
    "run", "sensitivity",
]
