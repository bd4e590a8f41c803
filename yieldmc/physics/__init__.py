"""Differentiable coupling-loss physics (docs/physics.md).

Every function here is pure JAX: keyword-only, broadcasting over array arguments,
usable under ``jit``, ``vmap`` and ``grad``, in float32 and float64. Inside ``jit`` a
function cannot raise, so each model has a ``validate_*`` helper that the configuration
layer calls before any compilation.
"""

from yieldmc.physics.adiabatic import (
    DEFAULT_SEGMENTS,
    adiabatic_transfer,
    delta_beta_shift_per_um,
    evanescent_decay_per_um,
    lateral_kappa_per_um,
    phase_matching_point_um,
    validate_adiabatic,
    vertical_kappa_per_um,
    yaw_offset_um,
)
from yieldmc.physics.adiabatic import adiabatic_transfer_profile, landau_zener_with_ends, supermode_fractions
from yieldmc.physics.bend import (
    bend_loss_db_per_cm,
    slab_bend_loss_db_per_cm,
    bend_mode_shift_um,
    bend_transition_loss_db,
    validate_bend,
)
from yieldmc.physics.crosstalk import coupling_coefficient_per_um, crosstalk_db, validate_crosstalk
from yieldmc.physics.coupling import (
    fresnel_transmission,
    gaussian_coupling,
    loss_db,
    validate_gaussian_coupling,
)
from yieldmc.physics.geometry import thermal_runout_um
from yieldmc.physics.slab import (
    pwg_effective_index,
    pwg_mode_radii_um,
    pwg_vertical_decay_per_um,
    slab_effective_index,
    slab_mode_radius_um,
    slab_te0_u,
    validate_slab,
)

__all__ = [
    "DEFAULT_SEGMENTS",
    "adiabatic_transfer",
    "adiabatic_transfer_profile",
    "landau_zener_with_ends",
    "supermode_fractions",
    "bend_loss_db_per_cm",
    "slab_bend_loss_db_per_cm",
    "bend_mode_shift_um",
    "bend_transition_loss_db",
    "coupling_coefficient_per_um",
    "crosstalk_db",
    "validate_bend",
    "validate_crosstalk",
    "delta_beta_shift_per_um",
    "evanescent_decay_per_um",
    "fresnel_transmission",
    "gaussian_coupling",
    "lateral_kappa_per_um",
    "loss_db",
    "phase_matching_point_um",
    "pwg_effective_index",
    "pwg_mode_radii_um",
    "pwg_vertical_decay_per_um",
    "slab_effective_index",
    "slab_mode_radius_um",
    "slab_te0_u",
    "thermal_runout_um",
    "validate_adiabatic",
    "validate_gaussian_coupling",
    "validate_slab",
    "vertical_kappa_per_um",
    "yaw_offset_um",
]
