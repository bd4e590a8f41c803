"""Refractive indices of the co-packaged-optics materials: Si, SiO₂ and the polysiloxane PWG.

Pure JAX, keyword-only, broadcasting, differentiable, float32 and float64 (python-float
constants are weakly typed, so a float32 argument gives a float32 result). Each index is
its room-temperature dispersion plus a thermo-optic term linear in temperature; the
coefficients and where they come from are the module constants below.

Every number carries its source; "estimate" marks an engineering estimate, not a
published value.
"""

from __future__ import annotations

import jax.numpy as jnp

# --- Silicon ---------------------------------------------------------------------------
#: Si dispersion ``n² = ε + A/λ²`` (λ in µm) at 293 K. Coefficients: least-squares fit
#: (this work) to the recommended values of H. H. Li, "Refractive index of silicon and
#: germanium and its wavelength and temperature derivatives", J. Phys. Chem. Ref. Data
#: 9:561 (1980), table at 293 K, 1.20–2.00 µm (20 values, given to 1e-4; as transcribed in
#: the refractiveindex.info database, Si/Li-293K). Largest deviation from the table 6.3e-5.
#: (The closed form often quoted for Li, ε = 11.6858, A = 0.939816 µm², plus a
#: 8.10461e-3·λ₁²/(λ² − λ₁²) term with λ₁ = 1.1071 µm, lies up to 7e-4 above that table in
#: this band, e.g. 3.4764 vs 3.4757 at 1.55 µm, so it is not used.)
SI_EPSILON_INF = 11.65188
#: A of the Si dispersion, µm² (same fit as :data:`SI_EPSILON_INF`).
SI_A_UM2 = 1.02972
#: Temperature of the Si dispersion (Li's table: 293 K).
SI_TEMPERATURE_REF_C = 20.0
#: Si thermo-optic coefficient, 1/K: G. Cocorullo and I. Rendina, "Thermo-optical
#: modulation at 1.5 µm in silicon etalon", Electron. Lett. 28:83 (1992), measured at
#: 1.523 µm near room temperature. Kept constant in λ and T here (Li's 293 K and 350 K
#: tables give 1.89e-4 /K at 1.55 µm and 2.0e-4 /K at 1.30 µm, so the constant is ≈ 7 %
#: low at 1.3 µm; dn/dT also grows with T, ≈ +10 % per 100 K).
SI_DN_DT_PER_K = 1.86e-4

# --- Silica (BOX) ----------------------------------------------------------------------
#: Fused-silica Sellmeier ``n² − 1 = Σ Bᵢλ²/(λ² − Cᵢ²)`` (λ, Cᵢ in µm) at 20 °C:
#: I. H. Malitson, "Interspecimen comparison of the refractive index of fused silica",
#: J. Opt. Soc. Am. 55:1205 (1965). Used for the thermal-oxide BOX (an approximation:
#: thermal SiO₂ is within ≈ 1e-3 of fused silica).
SIO2_SELLMEIER_B = (0.6961663, 0.4079426, 0.8974794)
#: Resonance wavelengths Cᵢ of the Malitson Sellmeier, µm.
SIO2_SELLMEIER_C_UM = (0.0684043, 0.1162414, 9.896161)
#: Temperature of Malitson's Sellmeier.
SIO2_TEMPERATURE_REF_C = 20.0
#: SiO₂ thermo-optic coefficient, 1/K, constant in λ and T. The project's value; the
#: temperature-dependent Sellmeier of D. B. Leviton & B. J. Frey (Proc. SPIE 6273, 62732K
#: (2006)) gives 0.82–0.85e-5 /K for fused silicas at 1.55 µm, 293 K (evaluated by G. Rego,
#: Sensors 23:6023 (2023)), ≈ 0.87e-5 /K in the visible; 0.95e-5 is ≈ 12 % above that
#: (estimate for thermal oxide). Its effect on the Si-strip mode is small (∂n_eff/∂n_box
#: ≲ 0.4).
SIO2_DN_DT_PER_K = 0.95e-5

# --- Polysiloxane (silicone) PWG -------------------------------------------------------
#: Silicone thermo-optic coefficient, 1/K: −3.3e-4 (632.8 nm) and −3.6e-4 (650 nm)
#: measured on a heat-resistant silicone resin (laser V-prism), Acta Optica Sinica
#: 25(5):629 (2005); the mid value, assumed to hold at 1.26–1.60 µm (estimate).
POLYMER_DN_DT_PER_K = -3.45e-4
#: Cauchy B of the polysiloxane, µm² (``n = A + B/λ²``). Estimate: B ≈ B₁C₁/(2n) =
#: 4.7e-3 µm² from the PDMS (Sylgard 184) Sellmeier n² − 1 = 1.0093 λ²/(λ² − 0.013185) of
#: F. Schneider et al., Sens. Actuators A 151:95 (2009) (fitted over 0.35–0.70 µm); PDMS
#: tabulated by X. Zhang et al., Appl. Opt. 59:2337 (2020) gives ≈ 3.6e-3 µm² between 0.6
#: and 1.0 µm. A phenyl-rich n ≈ 1.55 siloxane likely disperses more; not measured here.
POLYMER_CAUCHY_B_UM2 = 4.7e-3
#: Polymer index change per % relative humidity, 1/%RH. Estimate: silicones absorb
#: < 0.2 wt% water at saturation; filling free volume with water (n = 1.32) at ≈ 0.22 vol%
#: raises n by ≈ φ(n_w² − 1)/(2n) ≈ 5e-4 over 0 → 100 %RH, i.e. ≈ 5e-6 per %RH (sign and
#: size not measured; swelling would reduce it).
POLYMER_DN_DRH_PER_RH = 5e-6
#: PWG cladding index at the reference conditions below (the project's 1.55 at 1.31 µm,
#: estimate; core = cladding + 0.0086).
PWG_CLAD_INDEX_REF = 1.55
#: Wavelength, µm, at which :data:`PWG_CLAD_INDEX_REF` is given.
PWG_WAVELENGTH_REF_UM = 1.31
#: Temperature, °C, at which :data:`PWG_CLAD_INDEX_REF` is given (project convention).
PWG_TEMPERATURE_REF_C = 25.0
#: Relative humidity, %, at which :data:`PWG_CLAD_INDEX_REF` is given (estimate: lab air).
PWG_HUMIDITY_REF_RH = 50.0


def silicon_index(*, wavelength_um, temperature_c):
    """Refractive index of crystalline silicon.

    ``n = sqrt(ε + A/λ²) + dn/dT·(T − 20 °C)``: ε, A fitted to the 293 K table of Li,
    J. Phys. Chem. Ref. Data 9:561 (1980) (max deviation 6.3e-5 over 1.2–2.0 µm), and
    dn/dT = 1.86e-4 /K (Cocorullo & Rendina, Electron. Lett. 28:83 (1992)), constant in λ
    and T.

    Valid domain: 1.2 ≤ λ ≤ 2.0 µm; the linear T term is good to ≈ 10 % of the shift over
    −40…125 °C (dn/dT rises with T).

    Args:
      wavelength_um: vacuum wavelength, µm.
      temperature_c: temperature, °C.

    Returns:
      n_Si, broadcast over the arguments.
    """
    lam = jnp.asarray(wavelength_um)
    n0 = jnp.sqrt(SI_EPSILON_INF + SI_A_UM2 / (lam * lam))
    return n0 + SI_DN_DT_PER_K * (jnp.asarray(temperature_c) - SI_TEMPERATURE_REF_C)


def silica_index(*, wavelength_um, temperature_c):
    """Refractive index of fused silica (used for the buried oxide).

    Malitson's three-term Sellmeier at 20 °C, J. Opt. Soc. Am. 55:1205 (1965), plus
    dn/dT = 0.95e-5 /K (:data:`SIO2_DN_DT_PER_K`), constant in λ and T.

    Valid domain: 0.21 ≤ λ ≤ 3.71 µm (Malitson's range).

    Args:
      wavelength_um: vacuum wavelength, µm.
      temperature_c: temperature, °C.

    Returns:
      n_SiO₂, broadcast over the arguments.
    """
    lam2 = jnp.asarray(wavelength_um) ** 2
    n2 = 1.0
    for b, c in zip(SIO2_SELLMEIER_B, SIO2_SELLMEIER_C_UM, strict=True):
        n2 = n2 + b * lam2 / (lam2 - c * c)
    n0 = jnp.sqrt(n2)
    return n0 + SIO2_DN_DT_PER_K * (jnp.asarray(temperature_c) - SIO2_TEMPERATURE_REF_C)


def polymer_index(
    *,
    n_ref,
    wavelength_um,
    temperature_c,
    humidity_rh,
    wavelength_ref_um,
    temperature_ref_c,
    humidity_ref_rh,
    dn_dt_per_k=POLYMER_DN_DT_PER_K,
    dn_drh_per_rh=POLYMER_DN_DRH_PER_RH,
    cauchy_b_um2=POLYMER_CAUCHY_B_UM2,
):
    """Refractive index of a polymer given at one reference wavelength, temperature, RH.

    Two-term Cauchy dispersion ``n = A + B/λ²`` with A fixed by ``n(λ_ref) = n_ref``, and
    terms linear in temperature and relative humidity::

        n = n_ref + B·(1/λ² − 1/λ_ref²) + dn/dT·(T − T_ref) + dn/dRH·(RH − RH_ref)

    The default coefficients are this module's polysiloxane constants
    (:data:`POLYMER_DN_DT_PER_K`, :data:`POLYMER_DN_DRH_PER_RH`,
    :data:`POLYMER_CAUCHY_B_UM2`; see their sources; the last two are estimates).

    Args:
      n_ref: index at ``wavelength_ref_um``, ``temperature_ref_c``, ``humidity_ref_rh``.
      wavelength_um: vacuum wavelength, µm.
      temperature_c: temperature, °C.
      humidity_rh: relative humidity, % (0–100).
      wavelength_ref_um, temperature_ref_c, humidity_ref_rh: the reference conditions.
      dn_dt_per_k: thermo-optic coefficient, 1/K.
      dn_drh_per_rh: index change per % RH.
      cauchy_b_um2: Cauchy B, µm².

    Returns:
      n, broadcast over the arguments.
    """
    lam = jnp.asarray(wavelength_um)
    lam_ref = jnp.asarray(wavelength_ref_um)
    dispersion = jnp.asarray(cauchy_b_um2) * (1.0 / (lam * lam) - 1.0 / (lam_ref * lam_ref))
    thermal = jnp.asarray(dn_dt_per_k) * (jnp.asarray(temperature_c) - jnp.asarray(temperature_ref_c))
    humid = jnp.asarray(dn_drh_per_rh) * (jnp.asarray(humidity_rh) - jnp.asarray(humidity_ref_rh))
    return jnp.asarray(n_ref) + dispersion + thermal + humid


def pwg_cladding_index(*, wavelength_um, temperature_c, humidity_rh=PWG_HUMIDITY_REF_RH):
    """Index of the project's PWG cladding (1.55 at 1.31 µm, 25 °C, 50 %RH; estimate).

    :func:`polymer_index` with ``n_ref = PWG_CLAD_INDEX_REF`` at the ``PWG_*_REF``
    conditions and the module's polysiloxane coefficients. This is the upper cladding of
    the Si-strip mode table (``yieldmc/data/si_strip_modes.json``).

    Args:
      wavelength_um: vacuum wavelength, µm.
      temperature_c: temperature, °C.
      humidity_rh: relative humidity, % (default: the reference 50 %).

    Returns:
      n_clad, broadcast over the arguments.
    """
    return polymer_index(
        n_ref=PWG_CLAD_INDEX_REF,
        wavelength_um=wavelength_um,
        temperature_c=temperature_c,
        humidity_rh=humidity_rh,
        wavelength_ref_um=PWG_WAVELENGTH_REF_UM,
        temperature_ref_c=PWG_TEMPERATURE_REF_C,
        humidity_ref_rh=PWG_HUMIDITY_REF_RH,
    )
