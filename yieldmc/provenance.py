"""What every result records about how it was made: the global attributes of a Dataset.

Kept apart from :mod:`yieldmc.io.results` so that the analyses (sensitivity,
optimisation, calibration), which build their own Datasets, record the same provenance
without importing the edge.
"""

from __future__ import annotations

import platform
import sys

import jax
import jaxlib
import yaml

from yieldmc._version import __version__
from yieldmc.engine.problem import Problem


#: The CF conventions the results follow (global ``Conventions`` attribute).
CF_CONVENTIONS = "CF-1.10"


def command_line() -> str:
    """The command that is computing this result: ``yieldmc`` with the job's overrides
    under Hydra (each job of a multirun or a cluster array its own), else this process's
    ``argv`` (the command, or a script calling the Python API)."""
    import shlex
    from pathlib import Path

    if "hydra" in sys.modules:  # never imported here just to ask
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return shlex.join(["yieldmc", *HydraConfig.get().overrides.task])
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if program.name == "__main__.py" and program.parent.name == "yieldmc":  # python -m yieldmc
        program = Path("yieldmc")
    return shlex.join([program.name, *sys.argv[1:]])


def _spec_attrs(config: dict, swept) -> dict:
    """The loss spec as top-level attributes ``spec_<key>`` (set, unswept numbers and names)."""
    out = {}
    for key, value in (config.get("spec") or {}).items():
        if f"spec.{key}" in swept or value is None or isinstance(value, (bool, dict, list)):
            continue
        out[f"spec_{key}"] = value
    return out


def provenance(problem: Problem, config_yaml: str) -> dict:
    """Global attributes: CF ``Conventions``, ``history`` (the command and when), ``date_created``
    (ISO 8601, UTC), ``source``, the ``package`` name and the loss spec (``spec_max_loss_db``…,
    unless swept), the resolved config as YAML (:attr:`yieldmc.job.Job.config_yaml`), seed,
    versions, backend, device, RNG."""
    from datetime import datetime, timezone

    dev = jax.local_devices()[0]
    config = yaml.safe_load(config_yaml) or {}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "title": "yieldmc Monte-Carlo yield map",
        "Conventions": CF_CONVENTIONS,
        "history": f"{now}: {command_line()}",
        "date_created": now,
        "source": f"yieldmc {__version__}",
        "package": str((config.get("package") or {}).get("name", "")),
        **_spec_attrs(config, set(problem.sweep_keys)),
        "config_yaml": config_yaml,
        "seed": problem.seed,
        "yieldmc_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.local_device_count(),
        "rng_impl": problem.static.rng_impl,
        "dtype": problem.static.dtype,
        "block_size": problem.static.block_size,
        "python_version": platform.python_version(),
        "sampler": problem.static.sampler.name,
        "interval_method": problem.static.sampler.interval_method(problem),
        "quantile_method": (
            f"upper edge of the {problem.static.hist_max_db / problem.static.hist_bins:g} dB "
            "histogram bin holding the quantile; +inf beyond the histogram range"
        ),
    }
