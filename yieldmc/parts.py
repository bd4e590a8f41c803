"""What couplers and samplers share: a registered part, bound to what a configuration sets,
the :class:`Key` rows in which a part declares its configuration keys, and a number check.

A registry holds one instance per name (:mod:`yieldmc.couplers`, :mod:`yieldmc.samplers`).
The parse (:func:`yieldmc.configuration.parse.build_problem`) looks the configured name up once
and binds a copy of that instance to its static settings; :class:`yieldmc.engine.problem.Static`
holds the copy, and everything below the parse calls it directly. Bound parts compare and
hash by value (their class and attributes), so two builds of one configuration give equal
``Static`` values: one ``jit`` cache entry, a sweep or a second run compiles nothing.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Hashable
from typing import NamedTuple


#: :attr:`Key.default` of a key without one: its value comes from a configuration group
#: (``package=…``, ``process=…``) or from the user.
NO_DEFAULT = "<no default>"


class Key(NamedTuple):
    """One declared configuration key (a row of :data:`yieldmc.configuration.schema.KEYS`,
    or of a part's own keys, e.g. :attr:`yieldmc.couplers.Coupler.keys`): its type, unit,
    bounds, choices and default are stated here and nowhere else."""

    path: str
    type: str
    unit: str
    bounds: str
    doc: str
    choices: tuple = ()
    nullable: bool = False
    when: tuple = ()
    default: object = NO_DEFAULT


def number(path: str, value, *, integer: bool = False) -> float:
    """``value`` as a float (an integral one with ``integer``), else ``ValueError`` naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: expected a number, got {value!r}")
    if integer and (not math.isfinite(value) or int(value) != value):
        raise ValueError(f"{path}: expected an integer, got {value!r}")
    if not integer and math.isnan(value):
        raise ValueError(f"{path}: expected a number, got nan")
    return float(value)


class Part:
    """Base of couplers and samplers: :meth:`_bound`, value equality, a readable ``repr``.

    A part holds no state of its own besides what :meth:`_bound` sets (its name and
    ``settings``); plugin subclasses may add plain attributes, which then take part in the
    comparison.
    """

    #: Static settings read from the configuration (hashable: part of the ``jit`` cache
    #: key); None on the registered instance itself.
    settings: Hashable = None

    def _bound(self, **attributes) -> Part:
        """A copy of this part with ``attributes`` set (the registered instance is unchanged)."""
        part = copy.copy(self)
        for key, value in attributes.items():
            object.__setattr__(part, key, value)
        return part

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), getattr(self, "name", ""), self.settings))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', '')!r}, settings={self.settings!r})"
