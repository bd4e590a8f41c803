"""The units of a configuration key, for the coordinates and variables labelled by keys."""

from __future__ import annotations


def key_units(config: dict, path: str) -> str | None:
    """The unit of the value at config key ``path`` (``"1"`` when dimensionless), from the
    key's declaration (:func:`yieldmc.configuration.schema.lookup`); a variation parameter has
    its quantity's unit (:data:`yieldmc.engine.quantities.BY_NAME`), and so has a
    condition's setting (``conditions.<name>.<quantity>``, ``…readout.<quantity>``);
    its ``process``/``spec`` entries have those of ``process.…``/``spec.…``. None for a
    key that is not declared.
    """
    from yieldmc.configuration import schema
    from yieldmc.engine.quantities import BY_NAME

    parts = path.split(".")
    if parts[0] == "conditions" and len(parts) >= 3:
        rest = parts[2:]
        if rest[0] == "readout" and len(rest) == 2:
            rest = rest[1:]
        if len(rest) == 1 and rest[0] in BY_NAME:
            unit = BY_NAME[rest[0]].unit
            return unit or "1"
        parts = rest
    key = schema.lookup(config, ".".join(parts))
    if key is None:
        return None
    unit = key.unit
    if unit == "quantity" and len(parts) > 1 and parts[1] in BY_NAME:
        unit = BY_NAME[parts[1]].unit
    return unit or "1"


def key_attrs(config: dict, path: str) -> dict:
    """``long_name`` (the key) and ``units`` of a coordinate labelled by config key ``path``."""
    units = key_units(config, path)
    return {"long_name": path, **({"units": units} if units is not None else {})}
