"""Width profiles w(z) of the Si taper under the PWG (docs/physics.md, "2.3a").

The strip narrows monotonically from ``start_width_um`` at z = 0 to ``tip_width_um`` at
z = L. Three shapes:

* ``linear``: w(z) = w0 + (w1 − w0)·z/L;
* ``piecewise``: linear between knots (f_i·L, w_i) given as fractions of L and widths,
  with (0, w0) and (L, w1) added — a shaped taper, e.g. fast where the Si mode is far
  from the PWG mode and slow across the phase-matching widths;
* ``exponential``: w(z) = w1 + (w0 − w1)·(e^(−a·z/L) − e^(−a))/(1 − e^(−a)), a > 0 fast
  at the start and slow towards the tip (a → 0: linear).

Each profile gives the position z(w) of a width and the local rate |dw/dz| there, which is
what the Landau–Zener sweep rate needs; widths outside [w1, w0] are clipped to the ends.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

SHAPES = ("linear", "piecewise", "exponential")


class Profile(NamedTuple):
    """A width profile: ``width(z)``, ``position(w)``, ``rate(w)`` (|dw/dz| at width w)."""

    width: object
    position: object
    rate: object


def width_profile(shape, *, start_width_um, tip_width_um, length_um, knots=(), exponent=None) -> Profile:
    """The taper's width profile.

    Args:
      shape: ``"linear"`` | ``"piecewise"`` | ``"exponential"`` (static).
      start_width_um, tip_width_um: w0 > w1, µm (traced).
      length_um: L, µm (traced).
      knots: ``piecewise``: ((fraction of L, width µm), …) strictly inside (0, 1) and
        strictly decreasing in width between w0 and w1 (static floats).
      exponent: ``exponential``: a > 0 (traced).

    Returns:
      :class:`Profile`.
    """
    w0 = jnp.asarray(start_width_um)
    w1 = jnp.asarray(tip_width_um)
    length = jnp.asarray(length_um)
    if shape == "linear":
        def width(z):
            return w0 + (w1 - w0) * z / length

        def position(w):
            return length * (w0 - jnp.clip(w, w1, w0)) / (w0 - w1)

        def rate(w):
            return jnp.zeros_like(w) + (w0 - w1) / length

        return Profile(width, position, rate)
    if shape == "piecewise":
        fr = [0.0] + [float(f) for f, _ in knots] + [1.0]
        ws = [w0] + [float(w) for _, w in knots] + [w1]

        def width(z):
            x = z / length
            out = ws[0] + jnp.zeros_like(x)
            for j in range(len(fr) - 1):
                t = jnp.clip((x - fr[j]) / (fr[j + 1] - fr[j]), 0.0, 1.0)
                out = out + (ws[j + 1] - ws[j]) * t
            return out

        def position(w):
            x = jnp.zeros_like(w)
            for j in range(len(fr) - 1):
                t = jnp.clip((ws[j] - w) / (ws[j] - ws[j + 1]), 0.0, 1.0)
                x = x + (fr[j + 1] - fr[j]) * t
            return length * x

        def rate(w):
            out = (ws[0] - ws[1]) / (fr[1] * length) + jnp.zeros_like(w)
            for j in range(1, len(fr) - 1):
                out = jnp.where(w < ws[j], (ws[j] - ws[j + 1]) / ((fr[j + 1] - fr[j]) * length), out)
            return out

        return Profile(width, position, rate)
    if shape == "exponential":
        a = jnp.asarray(exponent)
        tail = jnp.exp(-a)
        span = (w0 - w1) / (1.0 - tail)  # w(z) = w1 + span·(e^(−a z/L) − e^(−a))

        def width(z):
            return w1 + span * (jnp.exp(-a * z / length) - tail)

        def position(w):
            wc = jnp.clip(w, w1, w0)
            return -(length / a) * jnp.log((wc - w1) / span + tail)

        def rate(w):
            wc = jnp.clip(w, w1, w0)
            return (a / length) * ((wc - w1) + span * tail)

        return Profile(width, position, rate)
    raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")


def validate_profile(*, shape, start_width_um, tip_width_um, knots=(), exponent=None) -> None:
    """Raise ``ValueError`` naming the first argument outside :func:`width_profile`'s domain."""
    if shape not in SHAPES:
        raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")
    if not start_width_um > tip_width_um > 0:
        raise ValueError(f"tip_width_um: must be in (0, start_width_um = {start_width_um!r}), got {tip_width_um!r}")
    if shape == "piecewise":
        if not knots:
            raise ValueError("knots: the piecewise shape needs at least one knot")
        fr = [0.0] + [f for f, _ in knots] + [1.0]
        ws = [start_width_um] + [w for _, w in knots] + [tip_width_um]
        if any(b <= a for a, b in zip(fr, fr[1:])):
            raise ValueError(f"knots: fractions must increase strictly inside (0, 1), got {[f for f, _ in knots]}")
        if any(b >= a for a, b in zip(ws, ws[1:])):
            raise ValueError("knots: widths must decrease strictly from the start width to the tip width, "
                             f"got {[w for _, w in knots]}")
    if shape == "exponential" and not (exponent is not None and exponent > 0):
        raise ValueError(f"exponent: the exponential shape needs a > 0, got {exponent!r}")
