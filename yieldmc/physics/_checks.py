"""Host-side argument checks shared by the ``validate_*`` helpers (never traced)."""

from __future__ import annotations

import numpy as np


def _values(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a number, got {value!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return arr


def positive(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless every element is > 0."""
    if not np.all(_values(name, value) > 0):
        raise ValueError(f"{name}: must be > 0, got {value!r}")


def non_negative(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless every element is >= 0."""
    if not np.all(_values(name, value) >= 0):
        raise ValueError(f"{name}: must be >= 0, got {value!r}")


def finite(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless every element is finite."""
    _values(name, value)
