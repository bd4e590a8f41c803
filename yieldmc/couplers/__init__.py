"""Couplers: the chip-to-PWG interface of each channel, behind one interface
(docs/architecture.md, "Extending").

A coupler is an instance of a :class:`Coupler` subclass, registered under its ``kind``
(the value of ``package.coupler.kind``). It states

* its configuration keys (:attr:`Coupler.keys`, rows of :class:`yieldmc.parts.Key` whose
  ``path`` is the suffix under ``package.coupler``); the schema reads them from the
  registry when a configuration is checked, so a coupler registered later (a plugin)
  is accepted, and the choices of ``package.coupler.kind`` are the registered kinds;
* which of them are traced floats (sweepable, differentiable):
  :meth:`Coupler.float_keys`, by default every ``float`` key that is not null; the other
  keys are static and enter through :meth:`Coupler.static`, a hashable value the parse
  binds to the coupler (:meth:`Coupler.bind`); :attr:`yieldmc.engine.problem.Static.coupler`
  holds the bound coupler (part of the ``jit`` cache key);
* the relations its values must satisfy (:meth:`Coupler.validate`, host side, before any
  compilation, each error naming its config key);
* the nominal value of the quantities it owns (:meth:`Coupler.nominal_values`, e.g. the
  gap), to which the level draws are added;
* the per-channel efficiency η (:meth:`Coupler.efficiency`, pure JAX) from the array
  geometry and the PWG mode that :func:`yieldmc.engine.model.channel_loss_db` computes.

Adding a coupler is one module and one config group option::

    # mylab/grating.py  (YIELDMC_PLUGINS=mylab.grating)
    from yieldmc.couplers import Coupler, register_coupler
    from yieldmc.parts import Key

    class Grating(Coupler):
        kind = "grating"
        keys = (Key("angle_deg", "float", "deg", "(-90, 90)", "fibre angle"),)
        def efficiency(self, inputs, *, polarization="te"):
            ...  # inputs.dx_um, inputs.params["package.coupler.angle_deg"], self.settings

    register_coupler(Grating())
    # and the option `package/coupler=grating`: conf/package/coupler/grating.yaml, or
    # hydra.core.config_store.ConfigStore.instance().store(
    #     group="package/coupler", name="grating", node={"kind": "grating", ...})

(``tests/toy_parts.py`` is a complete example.)
"""

from __future__ import annotations

import abc
import types
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING

from yieldmc.parts import Key, Part

if TYPE_CHECKING:
    from yieldmc.engine.model import CouplerInputs

#: Where every coupler key lives in the configuration.
SECTION = "package.coupler"
PREFIX = SECTION + "."
#: The key that selects the coupler (its choices are the registered kinds).
KIND_KEY = PREFIX + "kind"


class Coupler(Part, abc.ABC):
    """One coupler kind: its configuration keys, checks, nominal values and efficiency.

    Subclasses set :attr:`kind` and :attr:`keys` and implement :meth:`efficiency`; the
    other methods have defaults (no static settings, no extra checks, no owned nominal).
    Instances are registered with :func:`register_coupler`; the parse binds a copy of the
    selected one to its :meth:`static` settings (:meth:`bind`, kept as
    :attr:`settings`), which the engine calls. Every method but :meth:`efficiency` runs on
    the host with plain Python values.
    """

    #: The value of ``package.coupler.kind`` that selects this coupler.
    kind: str = ""
    #: The keys under ``package.coupler`` besides ``kind``: ``Key(path=<suffix>, ...)``
    #: (type, unit, bounds, doc, choices, nullable; ``when`` is filled in by the registry).
    keys: tuple[Key, ...] = ()

    @property
    def name(self) -> str:
        """The coupler's :attr:`kind` (the name every part has)."""
        return self.kind

    def float_keys(self, config: Mapping) -> tuple[str, ...]:
        """Suffixes of the traced float keys (sweepable, differentiable), in :attr:`keys` order.

        Args:
          config: the ``package.coupler`` section (plain dict).

        Returns:
          By default every ``float`` key whose value is not null (a nullable float left
          null is a static choice, e.g. "derive it").
        """
        return tuple(k.path for k in self.keys if k.type == "float" and config.get(k.path) is not None)

    def static(self, config: Mapping) -> Hashable:
        """The coupler's static settings (hashable; fixes code paths and shapes).

        Args:
          config: the ``package.coupler`` section (validated).

        Returns:
          Any hashable value; bound as :attr:`settings` (:meth:`bind`) and handed back to
          :meth:`efficiency`. Default: ``()``.
        """
        return ()

    def bind(self, settings: Hashable = ()) -> Coupler:
        """This coupler bound to its static settings (:meth:`static`'s value): the copy
        :attr:`yieldmc.engine.problem.Static.coupler` holds."""
        return self._bound(settings=settings)

    def validate(self, config: Mapping, package: Mapping) -> None:
        """Check the relations between this coupler's values (the types and bounds of the
        single keys are already checked against :attr:`keys`).

        Args:
          config: the ``package.coupler`` section of one resolved sweep point.
          package: the whole ``package`` section (PWG indices, wavelength …).

        Raises:
          ValueError: ``package.coupler.<key>: <what is wrong>, got <value>``.
        """

    def nominal_values(self, params: Mapping) -> dict:
        """Nominal values of the quantities this coupler owns (the level draws are added).

        Args:
          params: config path → traced scalar (one sweep point).

        Returns:
          Quantity name (of :data:`yieldmc.engine.variation.QUANTITIES`) → nominal value; the
          quantities not returned have nominal 0. Default: ``{}``.
        """
        return {}

    def polarization_dependent(self, config: Mapping) -> bool:
        """Whether η depends on the polarisation (then ``package.polarization: worst``
        evaluates TE and TM and the channel loss is the worse one). Default: ``False`` — one
        evaluation serves both and the PDL is 0.

        Args:
          config: the ``package.coupler`` section (validated).
        """
        return False

    def fresnel_db(self, inputs: CouplerInputs, *, polarization: str = "te"):
        """The part of the coupler's loss that is Fresnel reflection at its interfaces, dB
        (the ``fresnel`` part of ``loss_part_db_mean``; the rest of the coupler's loss is
        the ``coupler`` part). 0 by default: a coupler without reflecting interfaces.

        Args:
          inputs, polarization: as :meth:`efficiency`.

        Returns:
          dB, broadcastable to ``(layers, channels, modules)``.
        """
        return 0.0

    @abc.abstractmethod
    def efficiency(self, inputs: CouplerInputs, *, polarization: str = "te"):
        """Power coupling efficiency η of every channel (pure JAX, traced).

        Args:
          inputs: the sampled module at one wavelength (:class:`yieldmc.engine.model.CouplerInputs`); the
            coupler's static settings are :attr:`settings`.
          polarization: ``"te"`` or ``"tm"`` (static; see :meth:`polarization_dependent`).

        Returns:
          η, broadcastable to ``(layers, channels, modules)``; it may be 0 or NaN outside
          the model's domain (the loss then saturates or the channel fails).
        """


_REGISTRY: dict[str, Coupler] = {}
#: Registered couplers, kind → coupler (a live read-only view; iterating gives the names).
COUPLERS: Mapping[str, Coupler] = types.MappingProxyType(_REGISTRY)
_version = 0


def register_coupler(coupler: Coupler) -> Coupler:
    """Register ``coupler`` under ``coupler.kind`` (replacing one of that kind).

    Returns:
      ``coupler`` (so that it can decorate an instantiation).

    Raises:
      TypeError: not a :class:`Coupler`.
      ValueError: an empty kind, or a key that is malformed or named ``kind``.
    """
    global _version
    if not isinstance(coupler, Coupler):
        raise TypeError(f"register_coupler: expected a Coupler instance, got {coupler!r}")
    if not isinstance(coupler.kind, str) or not coupler.kind:
        raise ValueError(f"register_coupler: {type(coupler).__name__}.kind must be a non-empty string")
    seen = set()
    for key in coupler.keys:
        if not isinstance(key, Key) or not key.path or "." in key.path or key.path == "kind":
            raise ValueError(f"register_coupler: {coupler.kind}: malformed key {key!r} "
                             "(a schema Key whose path is a plain name other than 'kind')")
        if key.path in seen:
            raise ValueError(f"register_coupler: {coupler.kind}: key {key.path!r} declared twice")
        seen.add(key.path)
    _REGISTRY[coupler.kind] = coupler
    _version += 1
    return coupler


def get_coupler(kind) -> Coupler:
    """The coupler registered under ``kind``.

    Raises:
      ValueError: ``package.coupler.kind: unknown coupler <kind>; expected one of (...)``.
    """
    try:
        return _REGISTRY[kind]
    except (KeyError, TypeError):
        raise ValueError(f"{KIND_KEY}: unknown coupler {kind!r}; expected one of {tuple(_REGISTRY)}") from None


def registry_token() -> Hashable:
    """A value that changes whenever the registry does (the schema's tables are cached on it)."""
    return _version, tuple(_REGISTRY)


def schema_rows() -> tuple[Key, ...]:
    """The ``package.coupler.*`` rows of :mod:`yieldmc.configuration.schema`, from the registered couplers:
    ``kind`` (choices: the registered kinds) and every coupler's keys under
    ``when=("package.coupler.kind", <kind>)``."""
    rows = [Key(KIND_KEY, "str", "", "", "coupler (switch with package/coupler=...)", choices=tuple(_REGISTRY))]
    for kind, coupler in _REGISTRY.items():
        rows += [k._replace(path=PREFIX + k.path, when=(KIND_KEY, kind)) for k in coupler.keys]
    return tuple(rows)


def float_paths(config: Mapping) -> list[str]:
    """Config paths of the selected coupler's traced floats (``config`` is the whole config).

    Raises:
      ValueError: an unknown ``package.coupler.kind``.
    """
    section = config["package"]["coupler"]
    return [PREFIX + s for s in get_coupler(section.get("kind")).float_keys(section)]


def validate(config: Mapping) -> None:
    """Check the selected coupler's section of one resolved point (``config``: the whole config):
    every non-nullable key present, then :meth:`Coupler.validate`.

    Raises:
      ValueError: one line naming the ``package.coupler.*`` (or ``package.*``) key.
    """
    package = config["package"]
    section = package["coupler"]
    coupler = get_coupler(section.get("kind"))
    for key in coupler.keys:
        if not key.nullable and key.path not in section:
            raise ValueError(f"{PREFIX}{key.path}: missing from the configuration")
    coupler.validate(section, package)


# --- helpers for implementations -------------------------------------------------------


def physics_check(check, names: Mapping, **kwargs) -> None:
    """Run a physics ``validate_*`` helper, reporting the config key instead of its argument.

    Args:
      check: e.g. :func:`yieldmc.physics.validate_gaussian_coupling`.
      names: argument name → config path.
      **kwargs: the arguments of ``check``.
    """
    try:
        check(**kwargs)
    except ValueError as exc:
        arg, _, rest = str(exc).partition(":")
        raise ValueError(f"{names.get(arg, arg)}:{rest}") from None


from yieldmc.couplers.adiabatic import AdiabaticCoupler  # noqa: E402  (registers itself)
from yieldmc.couplers.butt import ButtCoupler  # noqa: E402

__all__ = [
    "COUPLERS", "AdiabaticCoupler", "ButtCoupler", "Coupler", "get_coupler", "register_coupler",
    "registry_token", "schema_rows",
]
