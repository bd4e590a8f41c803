"""yieldmc: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics.

Layout (docs/architecture.md): ``physics/`` (pure JAX models), ``couplers/`` and
``samplers/`` (registered parts), ``engine/`` (problem, schema, quantities, variation,
model, streaming blocks, statistics), ``analysis/`` (gradients, sensitivity,
optimisation, calibration), ``io/`` (configuration, command, store, results, plots,
measured data); ``job.py`` (the
parsed job), ``api.py`` (``run``), ``plugins.py``, ``validation.py``.

The public names below are imported on first use (PEP 562 module ``__getattr__``), so
that ``import yieldmc`` alone, and with it ``yieldmc --help`` and ``--version``, does not
import JAX, xarray or Hydra; ``from yieldmc import run`` works as before.
"""

from yieldmc import _xla

_xla.set_defaults()  # before anything below can start JAX's backend

from yieldmc._version import __version__  # noqa: E402

#: Public name -> the module that defines it (imported when the name is first used).
_EXPORTS = {
    "Coupler": "yieldmc.couplers",
    "Job": "yieldmc.job",
    "Problem": "yieldmc.engine.problem",
    "Sampler": "yieldmc.samplers",
    "Static": "yieldmc.engine.problem",
    "build_problem": "yieldmc.configuration.parse",
    "calibrate": "yieldmc.analysis.calibrate",
    "compose": "yieldmc.io.config",
    "optimize": "yieldmc.analysis.optimize",
    "parse_job": "yieldmc.job",
    "physics": "yieldmc.physics",
    "register_coupler": "yieldmc.couplers",
    "register_sampler": "yieldmc.samplers",
    "run": "yieldmc.api",
    "sensitivity": "yieldmc.analysis.sensitivity",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name):
    """The public name ``name``, imported from its module on first use (then cached)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'yieldmc' has no attribute {name!r}")
    import importlib

    if name == "physics":
        value = importlib.import_module(module)
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})
