"""The ``conditions`` section, parsed once: its structure here, its values per sweep point.

A condition (docs/physics.md, "Conditions") sets environment quantities
(:data:`yieldmc.engine.conditions.ENVIRONMENT`), optionally ``polarization``, and adds
``process`` variations of its own::

    conditions:
      cold: {temperature_c: -40}
      after_cycling: {temperature_c: 25, process: {dx_um: {channel: {sigma: 0.1}}}}

A stress condition (``kind: stress``) is read before and after the stress at its readout
environment (``readout``, settings like an operating condition's; absent: the package's
own); its ``process`` entries are the lasting changes the stress leaves, and its limits
(``spec``) are the change limit and, unless set to null, the absolute limit::

    conditions:
      cycled: {kind: stress, readout: {temperature_c: 25},
               process: {dx_um: {channel: {sigma: 0.1}}}, spec: {max_loss_change_db: 0.5}}

A setting is checked as the package key it replaces (its schema row: type, unit, bounds),
a drift parameter as the process parameter of the same quantity and level, ``kind`` and a
limit by their own rows (``conditions.{condition}.*`` in :mod:`yieldmc.configuration.schema`);
the relations between keys are checked with the condition's values in place of the
package's, and an error names the key under ``conditions.<name>`` that the user wrote.
"""

from __future__ import annotations

from typing import NamedTuple

from yieldmc.configuration import schema
from yieldmc.engine import quantities
from yieldmc.engine.conditions import ENVIRONMENT, LIMITS, Condition, drift_path, readout_path, setting_path
from yieldmc.engine.distributions import DISTRIBUTIONS
from yieldmc.engine.variation import LEVELS, PARAMS, process_key

#: The parameters of a condition's drift; one it leaves out takes the default of the process
#: parameter (a normal of mean 0 and sigma 0: no draw).
DRIFT_KEYS = ("distribution", *PARAMS)
#: Nullable environment settings and what their null stands for (a straight flex).
NULL_SETTINGS = {"bend_radius_mm": 0.0}


#: The keys a condition's mapping may hold besides its environment settings.
OWN_KEYS = ("polarization", "process", "kind", "readout", "spec")


class ConditionSpec(NamedTuple):
    """One condition's structure: what it sets and adds (the values are traced parameters)."""

    name: str
    settings: tuple[str, ...]  # the environment quantities it sets (a stress: its readout's)
    polarization: str | None
    drift: tuple[tuple[str, str, str], ...]  # (quantity, level, distribution name)
    kind: str = "operating"
    limits: tuple[str, ...] = ()  # the limits it sets itself (not null)
    absolute: bool = True  # an absolute limit applies
    change: bool = False  # a change limit applies (stress)

    def setting(self, quantity: str) -> str:
        """The key of its value of ``quantity``."""
        return (setting_path if self.kind == "operating" else readout_path)(self.name, quantity)

    def float_paths(self) -> list[str]:
        """Its traced parameters (also the sweepable keys)."""
        paths = [self.setting(q) for q in self.settings]
        paths += [f"conditions.{self.name}.spec.{k}" for k in self.limits]
        return paths + [f"{drift_path(self.name, q, lv)}.{p}" for q, lv, _ in self.drift for p in PARAMS]


def parse(config: dict) -> tuple[ConditionSpec, ...]:
    """The conditions of a checked configuration; **in place**, its ``conditions`` section
    normalised (every drift parameter present, a null bend radius as 0), so that each
    traced parameter is a key of the tree. Empty when ``conditions`` is null.

    Raises:
      ValueError: one line naming the key — an empty mapping, a condition that is not a
        mapping, an unknown key, a process (not environment) quantity set directly, a bad
        polarization, an unknown quantity, level or distribution in ``process``, a bad
        ``kind``, an environment set directly under a stress (it belongs in ``readout``), a
        readout or a change limit under an operating condition, a stress without any limit,
        a condition's own failed-channel allowance where the sampler or mode cannot use it.
    """
    node = config.get("conditions")
    if node is None:
        return ()
    if not node:
        raise ValueError("conditions: empty mapping; give at least one condition, or conditions=none")
    specs = []
    for name, cond in node.items():
        where = f"conditions.{name}"
        if not isinstance(name, str) or not name or "." in name or name != name.strip():
            raise ValueError(f"{where}: a condition name must be a non-empty string without '.' or spaces at its ends")
        cond = {} if cond is None else cond
        if not isinstance(cond, dict):
            raise ValueError(f"{where}: expected a mapping of environment settings, got {cond!r}")
        for key in cond:
            if key in quantities.BY_NAME and key not in ENVIRONMENT:
                raise ValueError(
                    f"{where}.{key}: {key} is a process quantity, not an environment setting; a condition sets "
                    f"{', '.join(ENVIRONMENT)} or polarization, and adds variations under {where}.process.{key}")
            if key not in (*ENVIRONMENT, *OWN_KEYS):
                raise ValueError(f"{where}.{key}: unknown condition key; expected one of {(*ENVIRONMENT, *OWN_KEYS)}")
        kind = schema.check_value(f"{where}.kind", cond.get("kind", schema.condition_row("kind").default),
                                  schema.condition_row("kind"))
        settings = _settings(config, where, cond, kind)
        pol = cond.get("polarization")
        if pol is not None:
            schema.check_value(f"{where}.polarization", pol, schema.lookup(config, "package.polarization"))
        cond["process"] = drift = _drift(config, f"{where}.process", cond.get("process"))
        if not drift:
            del cond["process"]
        limits, absolute, change = _limits(config, where, cond, kind)
        node[name] = cond
        specs.append(ConditionSpec(
            name=name, settings=settings, polarization=pol,
            drift=tuple((q, lv, entry["distribution"]) for q, levels in drift.items() for lv, entry in levels.items()),
            kind=kind, limits=limits, absolute=absolute, change=change))
    return tuple(specs)


def _settings(config: dict, where: str, cond: dict, kind: str) -> tuple[str, ...]:
    """The environment quantities a condition sets: an operating one's own, a stress's
    readout (normalised in place: a null bend radius as its value, 0)."""
    readout = cond.get("readout")
    if kind == "operating":
        if readout is not None:
            raise ValueError(f"{where}.readout: a readout environment belongs to a kind: stress condition "
                             "(an operating condition is read during it: set its environment directly)")
        target = cond
    else:
        direct = [q for q in ENVIRONMENT if q in cond]
        if direct:
            raise ValueError(f"{where}.{direct[0]}: a stress condition is read out at {where}.readout (the package's "
                             f"own environment by default); the stress acts through its process entries")
        target = {} if readout is None else readout
        if not isinstance(target, dict):
            raise ValueError(f"{where}.readout: expected a mapping of environment settings, got {readout!r}")
        for key in target:
            if key not in ENVIRONMENT:
                raise ValueError(f"{where}.readout.{key}: unknown readout key; expected one of {ENVIRONMENT}")
        cond["readout"] = target
    for key, null in NULL_SETTINGS.items():
        if key in target and target[key] is None:
            target[key] = null
    return tuple(q for q in ENVIRONMENT if q in target)


def _limits(config: dict, where: str, cond: dict, kind: str) -> tuple[tuple[str, ...], bool, bool]:
    """A condition's own limits (those set, not null), whether an absolute limit applies
    and whether a change limit does; the null ones are removed from ``cond["spec"]`` in place."""
    spec = cond.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f"{where}.spec: expected a mapping of limits ({', '.join(LIMITS)}), got {spec!r}")
    for key in spec:
        if key not in LIMITS:
            raise ValueError(f"{where}.spec.{key}: unknown limit; expected one of {LIMITS}")
    nulls = [k for k in LIMITS if k in spec and spec[k] is None]
    for key in nulls:
        schema.check_value(f"{where}.spec.{key}", None, schema.condition_row(f"spec.{key}"))  # a null its row allows
    if kind == "operating":
        if "max_loss_db" in nulls:
            raise ValueError(f"{where}.spec.max_loss_db: an operating condition is judged by its absolute limit "
                             "(null removes it only under kind: stress)")
        if "max_loss_change_db" in spec:
            raise ValueError(f"{where}.spec.max_loss_change_db: a change limit belongs to a kind: stress condition "
                             "(an operating condition is read once)")
    limits = tuple(k for k in LIMITS if k in spec and spec[k] is not None)
    if "max_failed_channels" in limits:
        from yieldmc.samplers.registry import get_sampler

        if not get_sampler(config["sampler"]).counts or config["mode"] != "run":
            raise ValueError(f"{where}.spec.max_failed_channels: a condition's own failed-channel allowance is "
                             f"counted by the count samplers in mode=run (here sampler={config['sampler']}, "
                             f"mode={config['mode']}); set spec.max_failed_channels instead")
    absolute = "max_loss_db" not in nulls
    change = kind == "stress" and ("max_loss_change_db" in limits or (
        "max_loss_change_db" not in spec and config["spec"]["max_loss_change_db"] is not None))
    if kind == "stress" and not (absolute or change):
        raise ValueError(f"{where}.spec: a stress condition without a limit passes every module; give it "
                         f"max_loss_change_db (or spec.max_loss_change_db) or an absolute max_loss_db")
    if spec:
        cond["spec"] = {k: v for k, v in spec.items() if v is not None}
        if not cond["spec"]:
            del cond["spec"]
    return limits, absolute, change


def _drift(config: dict, path: str, node) -> dict:
    """A condition's ``process`` additions with every parameter filled in."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"{path}: expected a mapping quantity -> level -> parameters, got {node!r}")
    out = {}
    for q, levels in node.items():
        if q not in quantities.BY_NAME:
            raise ValueError(f"{path}.{q}: unknown quantity; expected one of {quantities.QUANTITIES}")
        if not isinstance(levels, dict) or not levels:
            raise ValueError(f"{path}.{q}: expected a mapping level -> parameters, got {levels!r}")
        for lv, params in levels.items():
            if lv not in LEVELS:
                raise ValueError(f"{path}.{q}.{lv}: unknown level; expected one of {LEVELS}")
            if not isinstance(params, dict):
                raise ValueError(f"{path}.{q}.{lv}: expected a mapping of distribution parameters, got {params!r}")
            for k in params:
                if k not in DRIFT_KEYS:
                    raise ValueError(f"{path}.{q}.{lv}.{k}: unknown key; expected one of {DRIFT_KEYS}")
            entry = {k: params.get(k, schema.lookup(config, process_key(q, lv, k)).default) for k in DRIFT_KEYS}
            dist = schema.check_value(f"{path}.{q}.{lv}.distribution", entry["distribution"],
                                      schema.lookup(config, process_key(q, lv, "distribution")))
            if not DISTRIBUTIONS[dist].parametric:
                raise ValueError(f"{path}.{q}.{lv}.distribution: {dist} is not available in a condition's "
                                 f"process additions (a drift is parametric); a measured table belongs in "
                                 f"{process_key(q, lv)}")
            out.setdefault(q, {})[lv] = entry
    return out


def check_point(config: dict, specs, dtype: str, check_relations) -> None:
    """Each condition at one sweep point: its settings as the package keys they replace,
    its drift parameters as process parameters, then ``check_relations`` (the relations
    between keys, e.g. the PWG guiding at the wavelength) of the configuration with the
    condition's values in place of the package's.

    ``check_relations`` raises one-line errors ``<key>: <what is wrong>``; a key the
    condition set is reported as the ``conditions.<name>.<quantity>`` the user wrote, any
    other one after ``conditions.<name>: under this condition``.
    """
    n_channels = config["package"]["layers"] * config["package"]["channels"]
    for spec in specs:
        written = {}  # package key -> the condition's key that replaces it
        for q in spec.settings:
            path, key = spec.setting(q), quantities.BY_NAME[q].nominal
            schema.check_value(path, schema.value_at(config, path), schema.lookup(config, key), dtype)
            written[key] = path
        for limit in spec.limits:
            path = f"conditions.{spec.name}.spec.{limit}"
            value = schema.check_value(path, schema.value_at(config, path), schema.condition_row(f"spec.{limit}"), dtype)
            if limit == "max_failed_channels" and value >= n_channels:
                raise ValueError(f"{path}: must be < package.layers x package.channels = {n_channels} (with that "
                                 f"many failures allowed every module passes), got {value!r}")
        for q, lv, _ in spec.drift:
            for p in PARAMS:
                path = f"{drift_path(spec.name, q, lv)}.{p}"
                schema.check_value(path, schema.value_at(config, path),
                                   schema.lookup(config, process_key(q, lv, p)), dtype)
            entry = schema.value_at(config, drift_path(spec.name, q, lv))
            if entry["low"] > entry["high"]:
                raise ValueError(f"{drift_path(spec.name, q, lv)}.low: must not exceed high "
                                 f"({entry['high']!r}), got {entry['low']!r}")
            DISTRIBUTIONS[entry["distribution"]].validate(drift_path(spec.name, q, lv), entry)
        under = {**config, "conditions": None, "package": _replaced(config["package"], written, config)}
        try:
            check_relations(under)
        except ValueError as exc:
            key, _, detail = str(exc).partition(": ")
            if key in written:
                raise ValueError(f"{written[key]}: {detail}") from None
            raise ValueError(f"conditions.{spec.name}: under this condition {exc}") from None


def _replaced(package: dict, written: dict, config: dict) -> dict:
    """A copy of the ``package`` section with the condition's values at the keys it replaces."""
    out = {**package, "pwg": dict(package["pwg"])}
    for key, path in written.items():
        *parents, leaf = key.removeprefix("package.").split(".")
        (out["pwg"] if parents == ["pwg"] else out)[leaf] = schema.value_at(config, path)
    return out


def conditions_of(specs, params: dict, pols_of, n_points: int) -> tuple[Condition, ...]:
    """The engine's :class:`yieldmc.engine.conditions.Condition` of each condition: its
    settings, its polarisations (``pols_of`` maps te/tm/worst/None to the evaluated ones),
    its drift variations that are random at some sweep point, its kind and limits; the
    stress conditions read in the same environment (the same polarisations and readout
    values at every sweep point) share one initial readout."""
    out, groups = [], {}
    for spec in specs:
        drift = []
        for q, lv, name in spec.drift:
            dist, base = DISTRIBUTIONS[name](), drift_path(spec.name, q, lv)
            if not all(dist.is_degenerate(**{p: params[f"{base}.{p}"][i] for p in PARAMS}) for i in range(n_points)):
                drift.append((q, lv, dist))
        pols = pols_of(spec.polarization)
        readout = -1
        if spec.kind == "stress":
            where = (pols, tuple((q, tuple(params[spec.setting(q)].tolist())) for q in spec.settings))
            readout = groups.setdefault(where, len(groups))
        out.append(Condition(name=spec.name, settings=spec.settings, polarizations=pols, drift=tuple(drift),
                             kind=spec.kind, limits=spec.limits, absolute=spec.absolute, change=spec.change,
                             readout=readout))
    return tuple(out)
