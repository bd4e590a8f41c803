"""The sampler registry: name (what users type as ``sampler=``) → :class:`Sampler`.

The built-in samplers are entries ``name → "module:attribute"`` imported on first use,
so that this module (imported by :mod:`yieldmc.configuration.parse` and :mod:`yieldmc.configuration.schema`)
depends on no sampler and the samplers may import the engine without a cycle. A plugin
module (named in ``YIELDMC_PLUGINS``, :mod:`yieldmc.plugins`) calls
:func:`register_sampler` when it is imported; from then on ``sampler=<name>`` is
accepted by the schema and runs through the same engine, store and results.

This is the one place of the package that compares sampler names.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from yieldmc.samplers.base import Sampler

#: Built-in samplers, imported on first use (module:attribute).
_BUILTIN = {
    "mc": "yieldmc.samplers.mc:SAMPLER",
    "qmc": "yieldmc.samplers.qmc:SAMPLER",
    "is": "yieldmc.samplers.importance:SAMPLER",
}
#: The names of the samplers that come with yieldmc (their sections are always configured).
BUILTIN_NAMES = tuple(_BUILTIN)
_REGISTRY: dict[str, Sampler] = {}


def register_sampler(name: str, sampler: Sampler, *, replace: bool = False) -> Sampler:
    """Register ``sampler`` under ``name`` (the value of the ``sampler`` config key).

    Args:
      name: a new name (a built-in or registered one only with ``replace=True``).
      sampler: an instance of a :class:`Sampler` subclass.
      replace: allow replacing an existing entry.

    Returns:
      ``sampler`` (so a module may write ``SAMPLER = register_sampler("x", X())``).

    Raises:
      TypeError: ``sampler`` is not a :class:`Sampler`.
      ValueError: the name is not a plain identifier, or is taken and ``replace`` is false.
    """
    if not isinstance(sampler, Sampler):
        raise TypeError(f"register_sampler: expected a yieldmc.samplers.Sampler, got {type(sampler).__name__}")
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"register_sampler: the name must be an identifier, got {name!r}")
    if (name in _REGISTRY or name in _BUILTIN) and not replace:
        raise ValueError(f"register_sampler: sampler {name!r} is already registered (pass replace=True)")
    _BUILTIN.pop(name, None)
    _REGISTRY[name] = sampler
    return sampler


def sampler_names(*, supporting: str | None = None) -> tuple[str, ...]:
    """Every sampler name: the built-ins, then those registered, in registration order.

    Args:
      supporting: only those whose sampler has this capability set (an attribute such
        as ``"supports_sweep"`` or ``"supports_gradients"``; imports the built-ins).
    """
    names = tuple(dict.fromkeys([*_BUILTIN, *_REGISTRY]))
    if supporting is None:
        return names
    return tuple(n for n in names if getattr(get_sampler(n), supporting))


def get_sampler(name: str) -> Sampler:
    """The sampler registered under ``name``.

    Raises:
      ValueError: for a name no sampler is registered under.
    """
    sampler = _REGISTRY.get(name) if isinstance(name, str) else None
    if sampler is None and isinstance(name, str) and name in _BUILTIN:
        module, _, attr = _BUILTIN[name].partition(":")
        sampler = _REGISTRY.setdefault(name, getattr(importlib.import_module(module), attr))
    if sampler is None:
        raise ValueError(f"no sampler is registered as {name!r} (registered: {', '.join(sampler_names())})")
    return sampler


def registry_token() -> tuple:
    """A value that changes whenever the registry does (the schema's tables are cached on it)."""
    return tuple(_BUILTIN), tuple(_REGISTRY.items())


def schema_rows() -> tuple:
    """The rows of every registered sampler's :attr:`Sampler.keys`, each under the section
    named as the sampler is registered (imports the built-in samplers)."""
    return tuple(k._replace(path=f"{name}.{k.path}") for name in sampler_names() for k in get_sampler(name).keys)


class RegisteredNames(Sequence):
    """A live, read-only view of :func:`sampler_names` (the ``sampler`` key's choices in
    :mod:`yieldmc.configuration.schema`: a plugin's sampler is accepted once it is registered)."""

    def __getitem__(self, index):
        return sampler_names()[index]

    def __len__(self) -> int:
        return len(sampler_names())

    def __repr__(self) -> str:
        return repr(sampler_names())


def require_gradients(problem, *, what: str, weighted: bool = False) -> None:
    """Refuse a problem whose sampler has no gradient estimators (``what`` needs them).

    Args:
      weighted: ``what`` also accepts importance-weighted draws
        (:attr:`Sampler.weighted_gradients`: a sensitivity, not an optimisation).

    Raises:
      ValueError: naming ``sampler`` and the samplers that have them.
    """
    sampler = problem.static.sampler
    if not (sampler.supports_gradients or (weighted and sampler.weighted_gradients)):
        able = ", ".join(n for n in sampler_names() if get_sampler(n).supports_gradients
                         or (weighted and get_sampler(n).weighted_gradients))
        raise ValueError(f"sampler: {what} needs a sampler with gradient estimators ({able}), "
                         f"got {sampler.name}")
