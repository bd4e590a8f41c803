"""From one module's sampled quantities to the loss of each of its channels (DESIGN §2.4).

Pure JAX. ``values`` maps each quantity of :data:`yieldmc.engine.variation.QUANTITIES` to its
value (nominal + level draws) broadcastable to ``(layers, channels, modules)``; ``params``
maps config paths to scalars (one sweep point); ``static`` is :class:`yieldmc.engine.problem.Static`.

Layout: the module (sample) axis is the *last* one, so a module-level draw has shape
``(B,)``, a layer-level one ``(L, 1, B)`` and a channel-level one ``(L, C, B)``. Every
elementwise kernel then runs over contiguous module vectors with broadcasts along the
slow axes only; XLA's CPU backend vectorises that layout, and evaluated the model 4–7×
slower with the modules first (``(B, L, C)``: the innermost loop is the 12 channels and
each broadcast becomes an index computation; docs/benchmarks.md).
"""

from __future__ import annotations

import jax.numpy as jnp

from yieldmc import couplers, physics

from yieldmc.engine import quantities

COUPLER_KIND = couplers.KIND_KEY
#: η floor before the dB conversion: losses saturate at 300 dB instead of +inf.
ETA_FLOOR = 1e-30


def nominal_values(params, static) -> dict:
    """Nominal value of each quantity (the level draws are added to these).

    Where each nominal comes from is the quantity catalogue's entry
    (:data:`yieldmc.engine.quantities.CATALOGUE`): 0 for a deviation, a package key, or the
    coupler (:meth:`yieldmc.couplers.Coupler.nominal_values`, e.g. ``gap_um`` from
    ``package.coupler.gap_um``; 0 where the coupler has none).

    Args:
      params: config path → scalar (one sweep point).
      static: :class:`yieldmc.engine.problem.Static` (selects the coupler).
    """
    coupler = couplers.get_coupler(static.coupler_kind)
    owned = coupler.nominal_values(params)
    unknown = set(owned) - set(quantities.QUANTITIES)
    if unknown:
        raise ValueError(f"{COUPLER_KIND}: coupler {coupler.kind!r} returns nominal values of unknown "
                         f"quantities {sorted(unknown)}")
    return quantities.nominal_values(params, owned)


def array_positions_um(params, *, layers, channels, dtype):
    """Channel x_c = (c − (C−1)/2)·pitch and layer y_l = l·layer_pitch, shapes (C, 1), (L, 1, 1)
    (broadcastable against the module axis, which is last)."""
    c = jnp.arange(channels, dtype=dtype)
    lyr = jnp.arange(layers, dtype=dtype)
    x = ((c - 0.5 * (channels - 1)) * params["package.pitch_um"])[:, None]
    y = (lyr * params["package.layer_pitch_um"])[:, None, None]
    return x, y


def waveguide_offsets(values, params, *, layers, channels, dtype):
    """Lateral and vertical offset of every waveguide from the array geometry, µm.

    Rigid translation (dx, dy); roll about the optical axis (dy = x_c·roll, dx = −y_l·roll);
    pitch scale error (dx = x_c·ppm·1e−6); thermal run-out (dx = x_c·Δα·(T − T_lock));
    layer-thickness errors accumulated upward (layer l moves by the sum of the errors of
    the layers below it, at the same channel position).

    Returns:
      ``(dx_um, dy_um, x_um)``: offsets broadcastable to ``(layers, channels, modules)``
      and the channel positions ``(channels, 1)``.
    """
    x, y = array_positions_um(params, layers=layers, channels=channels, dtype=dtype)
    roll = values["roll_mrad"] * 1e-3
    runout = physics.thermal_runout_um(
        x_um=x,
        cte_mismatch_ppm_per_k=params["package.cte_mismatch_ppm_per_k"],
        temperature_c=values["temperature_c"],
        lock_temperature_c=params["package.lock_temperature_c"],
    )
    dx = values["dx_um"] + x * values["pitch_ppm"] * 1e-6 + runout - y * roll
    t = values["layer_thickness_um"]
    t = jnp.broadcast_to(t, jnp.broadcast_shapes(jnp.shape(t), (layers, 1, 1)))
    stack = jnp.cumsum(t, axis=0) - t  # exclusive sum over the layers below
    dy = values["dy_um"] + x * roll + stack
    return dx, dy, x


def _pwg_indices(values, params):
    """PWG core and cladding index at the sampled core index error and temperature."""
    dt = values["temperature_c"] - params["package.pwg.index_temperature_c"]
    thermo = params["package.pwg.dn_dt_per_k"] * dt
    n_core = params["package.pwg.n_core"] + values["dn_core"] + thermo
    n_clad = params["package.pwg.n_clad"] + thermo
    return n_core, n_clad


def channel_loss_db(values, params, static):
    """Loss in dB of every channel: coupler + Fresnel + propagation (DESIGN §2.4).

    The shared part — waveguide offsets from the array geometry, the PWG indices and mode
    radii at the sampled core and temperature, the propagation loss — is computed here;
    the coupler selected by ``static.coupler_kind`` (:mod:`yieldmc.couplers`) turns it
    into η (Fresnel factors included), which becomes a loss in dB (η floored at
    :data:`ETA_FLOOR`; NaN, a model outside its domain, becomes +inf: the channel fails).

    Args:
      values: quantity name → value broadcastable to ``(layers, channels, modules)``
        (a module-level draw has shape ``(modules,)``).
      params: config path → scalar (one sweep point).
      static: :class:`yieldmc.engine.problem.Static`.

    Returns:
      Loss in dB, shape ``(layers, channels, modules)`` (``modules`` = 1 when every value
      is a scalar).
    """
    dtype = jnp.dtype(static.dtype)
    layers, channels = static.layers, static.channels
    dx, dy, x = waveguide_offsets(values, params, layers=layers, channels=channels, dtype=dtype)
    yaw = values["yaw_mrad"] * 1e-3
    wl = params["package.wavelength_um"]
    n_core, n_clad = _pwg_indices(values, params)
    core = dict(
        core_width_um=values["core_width_um"],
        core_thickness_um=values["core_thickness_um"],
        n_core=n_core,
        n_clad=n_clad,
        wavelength_um=wl,
    )
    w_x, w_y = physics.pwg_mode_radii_um(**core)
    propagation = params["package.pwg.loss_db_per_cm"] * params["package.pwg.length_cm"]
    eta = couplers.get_coupler(static.coupler_kind).efficiency(
        dx_um=dx, dy_um=dy, x_um=x, yaw_rad=yaw, w_x_um=w_x, w_y_um=w_y, core=core,
        wavelength_um=wl, params=params, values=values, static=static.coupler_static,
    )
    loss = physics.loss_db(jnp.maximum(eta, ETA_FLOOR)) + propagation
    loss = jnp.where(jnp.isnan(loss), jnp.inf, loss)  # a model outside its domain fails
    return jnp.broadcast_to(loss, jnp.broadcast_shapes(jnp.shape(loss), (layers, channels, 1)))
