"""yieldmc: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics.

Layout (docs/architecture.md): ``physics/`` (pure JAX models), ``couplers/`` and
``samplers/`` (registered parts), ``engine/`` (problem, schema, quantities, variation,
model, streaming blocks, statistics), ``analysis/`` (gradients, sensitivity,
optimisation, calibration), ``io/`` (configuration, command, store, results, plots,
measured data); ``job.py`` (the
parsed job), ``api.py`` (``run``), ``plugins.py``, ``validation.py``.
"""

from yieldmc import _xla

_xla.set_defaults()  # before anything below can start JAX's backend

from yieldmc import physics  # noqa: E402
from yieldmc._version import __version__  # noqa: E402
from yieldmc.analysis.calibrate import calibrate  # noqa: E402
from yieldmc.analysis.optimize import optimize  # noqa: E402
from yieldmc.analysis.sensitivity import sensitivity  # noqa: E402
from yieldmc.api import run  # noqa: E402
from yieldmc.couplers import Coupler, register_coupler  # noqa: E402
from yieldmc.engine.problem import Problem, Static, build_problem  # noqa: E402
from yieldmc.io.config import compose  # noqa: E402
from yieldmc.job import Job, parse_job  # noqa: E402
from yieldmc.samplers import Sampler, register_sampler  # noqa: E402

__all__ = [
    "Coupler", "Job", "Problem", "Sampler", "Static", "__version__", "build_problem", "calibrate", "compose",
    "optimize", "parse_job", "physics", "register_coupler", "register_sampler", "run", "sensitivity",
]
