"""yieldmc: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics.

Layout (docs/architecture.md): ``physics/`` (pure JAX models), ``couplers/`` and
``samplers/`` (registered parts), ``engine/`` (problem, schema, quantities, variation,
model, streaming blocks, statistics), ``analysis/`` (gradients, sensitivity,
optimisation, calibration), ``io/`` (configuration, command, store, results, plots,
measured data); ``job.py`` (the
parsed job), ``api.py`` (``run``), ``plugins.py``, ``validation.py``.
"""

from yieldmc import physics
from yieldmc._version import __version__
from yieldmc.analysis.calibrate import calibrate
from yieldmc.analysis.optimize import optimize
from yieldmc.analysis.sensitivity import sensitivity
from yieldmc.api import run
from yieldmc.couplers import Coupler, register_coupler
from yieldmc.engine.problem import Problem, Static, build_problem
from yieldmc.io.config import compose
from yieldmc.job import Job, parse_job
from yieldmc.samplers import Sampler, register_sampler

__all__ = [
    "Coupler", "Job", "Problem", "Sampler", "Static", "__version__", "build_problem", "calibrate", "compose",
    "optimize", "parse_job", "physics", "register_coupler", "register_sampler", "run", "sensitivity",
]
