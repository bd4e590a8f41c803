"""The catalogue of varied quantities: one entry per quantity.

Each entry states the quantity's unit, whether it describes the build (``process``) or
the conditions the module meets (``environment``), where its nominal value comes from,
and where it enters the loss model. Adding a quantity is an entry here plus its physics
where ``enters`` says; the configuration (every ``process.<quantity>.<level>.*`` key),
the random-stream layout and the docs follow from the entry.

The order fixes each quantity's random stream: append, never reorder.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One varied quantity.

    Attributes:
      name: the config name (``process.<name>.<level>.*``), with its unit in it.
      unit: the unit of a value and of its mean, sigma, low and high.
      kind: ``process`` (fixed when the module is built) or ``environment``
        (the conditions it operates in).
      nominal: the config key of the nominal value the level draws are added to;
        ``None`` for a deviation whose nominal is 0; ``"coupler"`` when the coupler
        supplies it (its own nominal design value).
      enters: where the value enters the model (module and function).
      doc: one line.
    """

    name: str
    unit: str
    kind: str
    nominal: str | None
    enters: str
    doc: str


CATALOGUE: tuple[Quantity, ...] = (
    Quantity("dx_um", "µm", "process", None, "model.waveguide_offsets (lateral offset)",
             "lateral placement error of the PWG relative to the chip waveguide"),
    Quantity("dy_um", "µm", "process", None, "model.waveguide_offsets (vertical offset)",
             "vertical placement error"),
    Quantity("gap_um", "µm", "process", "coupler", "the coupler's efficiency (vertical gap / facet gap)",
             "Si-to-PWG gap (adiabatic) or facet gap (butt)"),
    Quantity("yaw_mrad", "mrad", "process", None, "model (walk-off, tilt; gap change across the array)",
             "in-plane rotation of the PWG array"),
    Quantity("roll_mrad", "mrad", "process", None, "model.waveguide_offsets (dy = x_c·roll, dx = −y_l·roll)",
             "rotation about the optical axis"),
    Quantity("pitch_ppm", "ppm", "process", None, "model.waveguide_offsets (dx = x_c·ppm·1e-6)",
             "scale error of the waveguide pitch"),
    Quantity("core_thickness_um", "µm", "process", "package.pwg.core_thickness_um",
             "physics.pwg_mode_radii_um, pwg_effective_index (mode size and n_eff)", "PWG core thickness"),
    Quantity("core_width_um", "µm", "process", "package.pwg.core_width_um",
             "physics.pwg_mode_radii_um, pwg_effective_index (mode size and n_eff)", "PWG core width"),
    Quantity("dn_core", "1", "process", None, "model._pwg_indices (core index)", "core index error"),
    Quantity("temperature_c", "°C", "environment", "package.temperature_c",
             "model: thermal run-out (CTE mismatch from the lock temperature), bond-line gap change and "
             "PWG dn/dT",
             "operating temperature"),
    Quantity("layer_thickness_um", "µm", "process", None,
             "model.waveguide_offsets (accumulates upward through the stack)",
             "thickness error of each stacked PWG layer"),
    Quantity("humidity_rh", "%RH", "environment", "package.humidity_rh",
             "model: PWG index (dn/dRH) and water absorption, hygroscopic pitch run-out and gap swelling",
             "relative humidity around the module"),
    Quantity("bend_radius_mm", "mm", "environment", "package.pwg.bend_radius_mm",
             "model: physics.bend_loss_db_per_cm over the bent length plus two straight/bend transitions "
             "(≤ 0: straight)", "bend radius of the PWG flex"),
    Quantity("wavelength_um", "µm", "environment", "package.wavelength_um",
             "model and coupler: material and waveguide dispersion of every term", "operating wavelength"),
    Quantity("taper_tip_width_nm", "nm", "process", "coupler",
             "couplers.adiabatic (Si strip width at the taper tip: where phase matching falls)",
             "Si taper tip width (lithography)"),
)

#: Quantity names in random-stream order.
QUANTITIES: tuple[str, ...] = tuple(q.name for q in CATALOGUE)
BY_NAME: dict[str, Quantity] = {q.name: q for q in CATALOGUE}


def nominal_values(params, coupler_nominals: dict) -> dict:
    """Nominal value of each quantity (the level draws are added to these).

    Args:
      params: config key → traced value (one sweep point).
      coupler_nominals: the values the coupler supplies for quantities marked
        ``"coupler"``; one it does not supply is 0 (the toy coupler has no gap).
    """
    out = {}
    for q in CATALOGUE:
        if q.nominal is None:
            out[q.name] = 0.0
        elif q.nominal == "coupler":
            out[q.name] = coupler_nominals.get(q.name, 0.0)
        else:
            out[q.name] = params[q.nominal]
    return out
