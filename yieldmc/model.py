"""From one module's sampled quantities to the loss of each of its channels (DESIGN §2.4).

Pure JAX. ``values`` maps each quantity of :data:`yieldmc.variation.QUANTITIES` to its
value (nominal + level draws) broadcastable to ``(layers, channels, modules)``; ``params``
maps config paths to scalars (one sweep point); ``static`` is :class:`yieldmc.problem.Static`.

Layout: the module (sample) axis is the *last* one, so a module-level draw has shape
``(B,)``, a layer-level one ``(L, 1, B)`` and a channel-level one ``(L, C, B)``. Every
elementwise kernel then runs over contiguous module vectors with broadcasts along the
slow axes only; XLA's CPU backend vectorises that layout, and evaluated the model 4–7×
slower with the modules first (``(B, L, C)``: the innermost loop is the 12 channels and
each broadcast becomes an index computation; docs/benchmarks.md).
"""

from __future__ import annotations

import jax.numpy as jnp

from yieldmc import physics

#: η floor before the dB conversion: losses saturate at 300 dB instead of +inf.
ETA_FLOOR = 1e-30


def nominal_values(params) -> dict:
    """Nominal value of each quantity (the level draws are added to these)."""
    return {
        "dx_um": 0.0,
        "dy_um": 0.0,
        "gap_um": params["package.coupler.gap_um"],
        "yaw_mrad": 0.0,
        "roll_mrad": 0.0,
        "pitch_ppm": 0.0,
        "core_thickness_um": params["package.pwg.core_thickness_um"],
        "core_width_um": params["package.pwg.core_width_um"],
        "dn_core": 0.0,
        "temperature_c": params["package.temperature_c"],
        "layer_thickness_um": 0.0,
    }


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

    Args:
      values: quantity name → value broadcastable to ``(layers, channels, modules)``
        (a module-level draw has shape ``(modules,)``).
      params: config path → scalar (one sweep point).
      static: :class:`yieldmc.problem.Static`.

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
    if static.coupler_kind == "butt":
        gap = jnp.maximum(values["gap_um"] + x * yaw, 0.0)  # rotation about the array centre
        n_gap = params["package.coupler.n_gap"]
        eta = physics.gaussian_coupling(
            w1_x_um=w_x, w1_y_um=w_y,
            w2_x_um=params["package.coupler.mode_radius_x_um"],
            w2_y_um=params["package.coupler.mode_radius_y_um"],
            dx_um=dx, dy_um=dy, gap_um=gap, tilt_x_rad=yaw,
            wavelength_um=wl, n_gap=n_gap,
        )
        eta = eta * physics.fresnel_transmission(params["package.pwg.n_core"], n_gap)
        eta = eta * physics.fresnel_transmission(n_gap, params["package.coupler.n_chip"])
    else:
        # The taper's Δβ sweep (and γ) are specified for the nominal PWG at the index
        # reference temperature; any change of n_eff from there — core geometry, core
        # index, operating temperature — shifts the sweep.
        n_eff0 = physics.pwg_effective_index(
            core_width_um=params["package.pwg.core_width_um"],
            core_thickness_um=params["package.pwg.core_thickness_um"],
            n_core=params["package.pwg.n_core"], n_clad=params["package.pwg.n_clad"], wavelength_um=wl,
        )
        n_eff = physics.pwg_effective_index(**core)
        shift = physics.delta_beta_shift_per_um(delta_n_eff=n_eff - n_eff0, wavelength_um=wl)
        db0 = params["package.coupler.delta_beta_start_per_um"] + shift
        db1 = params["package.coupler.delta_beta_end_per_um"] + shift
        length = params["package.coupler.taper_length_um"]
        if static.derive_decay:
            decay = physics.evanescent_decay_per_um(
                n_eff=n_eff0, n_gap=params["package.coupler.n_gap"], wavelength_um=wl
            )
        else:
            decay = params["package.coupler.decay_per_um"]
        kappa = physics.vertical_kappa_per_um(
            kappa0_per_um=params["package.coupler.kappa_per_um"],
            gap_um=values["gap_um"] + dy,
            gap0_um=params["package.coupler.gap_um"],
            decay_per_um=decay,
        )
        z_c = jnp.clip(
            physics.phase_matching_point_um(
                delta_beta_start_per_um=db0, delta_beta_end_per_um=db1, taper_length_um=length
            ),
            0.0,
            length,
        )
        dx_eff = physics.yaw_offset_um(
            dx_um=dx, yaw_rad=yaw, z_um=z_c,
            pivot_um=0.5 * length + params["package.coupler.yaw_pivot_um"],
        )
        kappa = physics.lateral_kappa_per_um(kappa_per_um=kappa, dx_um=dx_eff, mode_radius_x_um=w_x)
        eta = physics.adiabatic_transfer(
            kappa_per_um=kappa, delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
            taper_length_um=length, model=static.coupler_model, segments=static.segments,
        )
    loss = physics.loss_db(jnp.maximum(eta, ETA_FLOOR)) + propagation
    loss = jnp.where(jnp.isnan(loss), jnp.inf, loss)  # a model outside its domain fails
    return jnp.broadcast_to(loss, jnp.broadcast_shapes(jnp.shape(loss), (layers, channels, 1)))
