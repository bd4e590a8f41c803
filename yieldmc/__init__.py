"""yieldmc: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics."""

from yieldmc import physics
from yieldmc._version import __version__
from yieldmc.api import run
from yieldmc.config import compose
from yieldmc.problem import Problem, Static, build_problem

__all__ = ["Problem", "Static", "__version__", "build_problem", "compose", "physics", "run"]
