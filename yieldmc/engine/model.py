"""From one module's sampled quantities to the loss of each of its channels
(docs/physics.md, "2.4 Array geometry").

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

import dataclasses
import functools
from collections.abc import Mapping

import jax.numpy as jnp

from yieldmc import physics

from yieldmc.engine import quantities

COUPLER_KIND = "package.coupler.kind"  # yieldmc.couplers.KIND_KEY
#: η floor before the dB conversion: losses saturate at 300 dB instead of +inf.
ETA_FLOOR = 1e-30
#: The parts of a channel's loss (``loss_part_db_mean``): the coupler's own loss (mode
#: mismatch, offsets, taper), propagation in the PWG, bending of the flex, and the Fresnel
#: reflections at the coupler's interfaces (:meth:`yieldmc.couplers.Coupler.fresnel_db`).
PARTS = ("coupler", "propagation", "bend", "fresnel")


@dataclasses.dataclass(frozen=True)
class CouplerInputs:
    """What the engine hands a coupler: one sampled module at one wavelength (traced arrays).

    Attributes:
      dx_um, dy_um: lateral and vertical offset of every waveguide from the array geometry,
        broadcastable to ``(layers, channels, modules)``.
      x_um: channel positions across the array, shape ``(channels, 1)``.
      yaw_rad: in-plane rotation of the array (about its centre), broadcastable.
      w_x_um, w_y_um: PWG mode radii (1/e field) at the sampled core.
      core: the sampled PWG core as keyword arguments of
        :func:`yieldmc.physics.pwg_effective_index` (``core_width_um``,
        ``core_thickness_um``, ``n_core``, ``n_clad``, ``wavelength_um``).
      wavelength_um: operating wavelength.
      params: config path → scalar (one sweep point).
      values: quantity name → value (nominal + level draws).
    """

    dx_um: object
    dy_um: object
    x_um: object
    yaw_rad: object
    w_x_um: object
    w_y_um: object
    core: Mapping
    wavelength_um: object
    params: Mapping
    values: Mapping


def nominal_values(params, static) -> dict:
    """Nominal value of each quantity (the level draws are added to these).

    Where each nominal comes from is the quantity catalogue's entry
    (:data:`yieldmc.engine.quantities.CATALOGUE`): 0 for a deviation, a package key, or the
    coupler (:meth:`yieldmc.couplers.Coupler.nominal_values`, e.g. ``gap_um`` from
    ``package.coupler.gap_um``; 0 where the coupler has none).

    Args:
      params: config path → scalar (one sweep point).
      static: :class:`yieldmc.engine.problem.Static` (holds the coupler).
    """
    coupler = static.coupler
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
    hygroscopic run-out (dx = x_c·Δβ_h·(RH − RH_lock)) and swelling of the bond line
    (dy = s·(RH − RH_lock)); thermal change of the bond line (dy = g_T·(T − T_lock),
    ``package.gap_thermal_um_per_k``: adhesive expansion and warpage, docs/physics.md
    "Thermo-mechanics of the gap"); layer-thickness errors accumulated upward (layer l
    moves by the sum of the errors of the layers below it, at the same channel position).

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
    d_rh = values["humidity_rh"] - params["package.lock_humidity_rh"]
    hygro = x * (params["package.chm_mismatch_ppm_per_rh"] * 1e-6) * d_rh
    dx = values["dx_um"] + x * values["pitch_ppm"] * 1e-6 + runout + hygro - y * roll
    t = values["layer_thickness_um"]
    t = jnp.broadcast_to(t, jnp.broadcast_shapes(jnp.shape(t), (layers, 1, 1)))
    stack = jnp.cumsum(t, axis=0) - t  # exclusive sum over the layers below
    d_t = values["temperature_c"] - params["package.lock_temperature_c"]
    bond = params["package.gap_swelling_um_per_rh"] * d_rh + params["package.gap_thermal_um_per_k"] * d_t
    dy = values["dy_um"] + x * roll + stack + bond
    return dx, dy, x


def pwg_indices(values, params, *, wavelength_um):
    """PWG core and cladding index at the sampled wavelength, temperature, humidity and
    core index error.

    ``n(λ, T, RH) = n_ref + B·(1/λ² − 1/λ_ref²) + dn/dT·(T − T_ref) + dn/dRH·(RH − RH_ref)``
    for core and cladding alike (Cauchy dispersion with one B for the material family;
    linear thermo-optic and humidity terms), plus ``dn_core`` on the core.
    """
    inv = 1.0 / (wavelength_um * wavelength_um)
    ref = 1.0 / (params["package.pwg.index_wavelength_um"] ** 2)
    common = (
        params["package.pwg.cauchy_b_um2"] * (inv - ref)
        + params["package.pwg.dn_dt_per_k"] * (values["temperature_c"] - params["package.pwg.index_temperature_c"])
        + params["package.pwg.dn_drh_per_rh"] * (values["humidity_rh"] - params["package.pwg.index_humidity_rh"])
    )
    n_core = params["package.pwg.n_core"] + values["dn_core"] + common
    n_clad = params["package.pwg.n_clad"] + common
    return n_core, n_clad


def wavelengths_um(values, params, static) -> list:
    """The wavelengths a channel carries: the sampled ``wavelength_um``, or each WDM lane
    (``package.lanes_um``) shifted by the sampled deviation from ``package.wavelength_um``."""
    wl = values["wavelength_um"]
    if not static.lanes:
        return [wl]
    dev = wl - params["package.wavelength_um"]
    return [params[f"package.lanes_um.{i}"] + dev for i in range(static.lanes)]


def propagation_db(values, params):
    """Propagation loss: ``(loss_db_per_cm + a_w·(RH − RH_ref))·length_cm``, the water
    absorption term a_w per %RH (Hida & Imamura, IEEE PTL 6:845 (1994)); never below 0."""
    per_cm = params["package.pwg.loss_db_per_cm"] + params["package.pwg.water_loss_db_per_cm_per_rh"] * (
        values["humidity_rh"] - params["package.pwg.index_humidity_rh"])
    return jnp.maximum(per_cm, 0.0) * params["package.pwg.length_cm"]


def bend_db(core, w_y_um, values, params):
    """Loss of the bent flex: pure bend loss over the arc R·θ plus two straight/bend
    transitions (:func:`yieldmc.physics.bend_loss_db_per_cm`,
    :func:`yieldmc.physics.bend_transition_loss_db`); 0 where the radius is ≤ 0 (straight).
    The flex bends out of its plane, across the core thickness (mode radius ``w_y``)."""
    r = values["bend_radius_mm"]
    bent = r > 0
    r = jnp.where(bent, r, 1e3)
    arc_cm = 0.1 * r * params["package.pwg.bent_angle_deg"] * (jnp.pi / 180.0)
    pure = physics.bend_loss_db_per_cm(radius_mm=r, **core) * arc_cm
    n_eff = physics.pwg_effective_index(**core)
    step = physics.bend_transition_loss_db(radius_mm=r, mode_radius_um=w_y_um, n_eff=n_eff,
                                           wavelength_um=core["wavelength_um"])
    return jnp.where(bent, pure + 2.0 * step, 0.0)


def crosstalk_db(core, params, *, layers, channels, dtype):
    """Crosstalk into each channel from its neighbours, dB (:func:`yieldmc.physics.crosstalk_db`):
    the powers from the in-plane neighbours (pitch) and the neighbours in the layers above
    and below (layer pitch, coupling across the core thickness) add. Each pair is taken as
    synchronous (identical cores; a detuned pair couples less, so this is the upper bound)."""
    length = params["package.pwg.length_cm"]
    side = physics.crosstalk_db(pitch_um=params["package.pitch_um"], length_cm=length, **core)
    swapped = dict(core, core_width_um=core["core_thickness_um"], core_thickness_um=core["core_width_um"])
    up = physics.crosstalk_db(pitch_um=params["package.layer_pitch_um"], length_cm=length, **swapped)
    c = jnp.arange(channels)
    n_side = ((c > 0).astype(dtype) + (c < channels - 1).astype(dtype))[:, None]  # (C, 1)
    lyr = jnp.arange(layers)
    n_up = ((lyr > 0).astype(dtype) + (lyr < layers - 1).astype(dtype))[:, None, None]  # (L, 1, 1)
    power = n_side * 10.0 ** (side / 10.0) + n_up * 10.0 ** (up / 10.0)
    return 10.0 * jnp.log10(jnp.maximum(power, jnp.finfo(dtype).tiny))


def _as_loss_db(eta):
    loss = physics.loss_db(jnp.maximum(eta, ETA_FLOOR))
    return jnp.where(jnp.isnan(loss), jnp.inf, loss)  # a model outside its domain fails


def channel_loss_parts(values, params, static, *, polarizations=None) -> dict:
    """Loss, polarisation-dependent loss and crosstalk of every channel
    (docs/physics.md, "2.4 Array geometry" and "Environment").

    The shared part — waveguide offsets from the array geometry, the PWG indices and mode
    radii at the sampled core, wavelength, temperature and humidity, propagation and bend
    loss — is computed here; the coupler ``static.coupler``
    (:mod:`yieldmc.couplers`) turns it into η per polarisation (Fresnel factors included),
    which becomes a loss in dB (η floored at :data:`ETA_FLOOR`; NaN, a model outside its
    domain, becomes +inf: the channel fails). With several polarisations
    (``package.polarization: worst``) or WDM lanes the channel's loss is the worst of them.

    Args:
      values: quantity name → value broadcastable to ``(layers, channels, modules)``.
      params: config path → scalar (one sweep point).
      static: :class:`yieldmc.engine.problem.Static`.
      polarizations: the polarisations to evaluate (default ``static.polarizations``; a
        condition may set its own).

    Returns:
      ``{"loss": dB, "pdl": dB (worst lane's TE/TM difference; 0 with one polarisation),
      "crosstalk": dB or None, "parts": {part: dB} (:data:`PARTS` of the worst polarisation
      and lane, whose sum is the loss)}``, each of shape ``(layers, channels, modules)``;
      with ``static.scope == "coupler"`` also ``"scoped"``: the Si→PWG interface loss
      (coupler + Fresnel, the worst polarisation and lane), what the spec then limits.
    """
    dtype = jnp.dtype(static.dtype)
    layers, channels = static.layers, static.channels
    dx, dy, x = waveguide_offsets(values, params, layers=layers, channels=channels, dtype=dtype)
    yaw = values["yaw_mrad"] * 1e-3
    coupler = static.coupler
    prop = propagation_db(values, params)
    loss = pdl = xt = scoped = parts = None
    for wl in wavelengths_um(values, params, static):
        n_core, n_clad = pwg_indices(values, params, wavelength_um=wl)
        core = dict(core_width_um=values["core_width_um"], core_thickness_um=values["core_thickness_um"],
                    n_core=n_core, n_clad=n_clad, wavelength_um=wl)
        w_x, w_y = physics.pwg_mode_radii_um(**core)
        bend = bend_db(core, w_y, values, params) if static.bend else 0.0
        extra = prop + bend if static.bend else prop
        inputs = CouplerInputs(dx_um=dx, dy_um=dy, x_um=x, yaw_rad=yaw, w_x_um=w_x, w_y_um=w_y, core=core,
                               wavelength_um=wl, params=params, values=values)
        pols = polarizations or static.polarizations
        interface = [_as_loss_db(coupler.efficiency(inputs, polarization=pol)) for pol in pols]
        per_pol = [i + extra for i in interface]
        for pol, i, total in zip(pols, interface, per_pol):
            fresnel = coupler.fresnel_db(inputs, polarization=pol)
            these = {"coupler": i - fresnel, "propagation": prop, "bend": bend, "fresnel": fresnel}
            if parts is None:
                parts, best = these, total
            else:  # the parts of the worst (polarisation, lane); the first of equals
                take = total > best
                parts = {k: jnp.where(take, these[k], parts[k]) for k in PARTS}
                best = jnp.maximum(best, total)
        worst = functools.reduce(jnp.maximum, per_pol)
        spread = worst - functools.reduce(jnp.minimum, per_pol)
        loss = worst if loss is None else jnp.maximum(loss, worst)
        pdl = spread if pdl is None else jnp.maximum(pdl, spread)
        if static.scope == "coupler":
            lane = functools.reduce(jnp.maximum, interface)
            scoped = lane if scoped is None else jnp.maximum(scoped, lane)
        if static.crosstalk:
            lane_xt = crosstalk_db(core, params, layers=layers, channels=channels, dtype=dtype)
            xt = lane_xt if xt is None else jnp.maximum(xt, lane_xt)
    shape = jnp.broadcast_shapes(jnp.shape(loss), (layers, channels, 1))
    pdl = jnp.where(jnp.isfinite(pdl), pdl, 0.0)
    out = {"loss": jnp.broadcast_to(loss, shape), "pdl": jnp.broadcast_to(pdl, shape), "crosstalk": None,
           "parts": {k: jnp.broadcast_to(jnp.asarray(parts[k], loss.dtype), shape) for k in PARTS}}
    if xt is not None:
        out["crosstalk"] = jnp.broadcast_to(xt, jnp.broadcast_shapes(jnp.shape(xt), shape))
    if scoped is not None:
        out["scoped"] = jnp.broadcast_to(scoped, shape)
    return out


def pass_figure_db(parts, params):
    """The per-channel figure compared with ``spec.max_loss_db``: the loss the spec limits
    (``parts["scoped"]`` where ``spec.scope: coupler`` gives one, else the channel loss), or
    — when ``spec.max_crosstalk_db`` is set — ``max(loss, spec.max_loss_db + (crosstalk −
    spec.max_crosstalk_db))``, so that a channel fails when either spec is exceeded and the
    margin stays continuous for the smoothed gradients."""
    loss = parts.get("scoped", parts["loss"])
    if parts["crosstalk"] is None:
        return loss
    excess = parts["crosstalk"] - params["spec.max_crosstalk_db"]
    return jnp.maximum(loss, params["spec.max_loss_db"] + excess)


def channel_loss_db(values, params, static):
    """Per-channel figure of merit for pass/fail, dB: the channel loss (coupler + Fresnel +
    propagation + bend; the worst polarisation and lane), with the crosstalk spec folded in
    when set (:func:`pass_figure_db`). See :func:`channel_loss_parts`.

    Returns:
      Shape ``(layers, channels, modules)`` (``modules`` = 1 when every value is a scalar).
    """
    return pass_figure_db(channel_loss_parts(values, params, static), params)
