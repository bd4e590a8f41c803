"""``yieldmc --help``: the text, generated from ``conf/`` and :mod:`yieldmc.configuration.schema`, and
stored with the fingerprint of its sources so that the command answers without importing
JAX or Hydra (:func:`help_text`).
"""

from __future__ import annotations

from pathlib import Path

from yieldmc.io.config import CONF_DIR, local_search_path

# From README.md, "Using it".
_HELP_EXAMPLES = (
    ("yieldmc package=pwg18_32ch process.dx_um.module.sigma=0.5 samples=10000000",
     "32 channels at 18 µm pitch, placement sigma 0.5 µm, 10^7 modules"),
    ("yieldmc process=none process.dx_um.channel.sigma=0.3", "one variation only"),
    ("yieldmc 'sweep={process.dx_um.module.sigma:[0.25,0.5,1.0],"
     "process.dy_um.module.sigma:[0.1,0.2]}'", "a 3 x 2 yield map"),
    ("yieldmc package/coupler=butt package.coupler.gap_um=5", "butt coupling instead"),
    ("yieldmc mode=sensitivity", "ranked table: tighten this first"),
    ("yieldmc --cfg job package=pwg18_4x32ch", "print the resolved configuration"),
)


def _yaml_defaults(path: Path) -> dict:
    """``{group: option}`` of the ``defaults`` list of one YAML file of ``conf/``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found = {}
    for item in (data.get("defaults") or []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            for key, value in item.items():
                found[str(key).removeprefix("override ").strip().lstrip("/")] = value
    return found


def config_groups() -> list:
    """``[(group, options, default)]`` for every config group under ``conf/`` but hydra/."""
    top = _yaml_defaults(CONF_DIR / "config.yaml")

    def default(group):
        if group in top:
            return top[group]
        parent, _, child = group.rpartition("/")
        chosen = default(parent) if parent else None
        return _yaml_defaults(CONF_DIR / parent / f"{chosen}.yaml").get(child) if chosen else None

    groups = []
    for directory in sorted(p for p in CONF_DIR.rglob("*") if p.is_dir()):
        group = directory.relative_to(CONF_DIR).as_posix()
        options = sorted(f.stem for f in directory.glob("*.yaml"))
        if options and group.split("/")[0] != "hydra":
            groups.append((group, options, default(group)))
    return groups


def _help_text() -> str:
    """``yieldmc --help``: what it does, groups, main keys with defaults, examples."""
    from yieldmc._version import __version__
    from yieldmc.configuration import schema
    from yieldmc.io.cli import _EXIT_CLOSED_PIPE, EXIT_BAD_INPUT

    from yieldmc.io.config import compose, to_container

    try:
        defaults = to_container(compose([]))
    except Exception:  # noqa: BLE001 - a broken conf/ must not break --help
        defaults = {}
    lines = [
        f"yieldmc {__version__}: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics",
        "",
        "usage: yieldmc [GROUP=OPTION ...] [KEY=VALUE ...]",
        "       yieldmc --multirun KEY=V1,V2 ...  (one job per combination, Hydra launchers)",
        "",
        "Builds many virtual modules (a PWG package under process variations), computes every",
        "channel's coupling loss and reports the yield (fraction of modules meeting the loss",
        "spec) with its 95 % interval, per-channel fail fractions and loss quantiles. Writes an",
        "xarray/zarr store (resumable: rerun a killed command unchanged) with plots beside it and",
        "prints a summary. mode=sensitivity ranks the tolerances, mode=optimize sizes them.",
        "Configuration is Hydra over conf/: any key can be set as KEY=VALUE.",
        "",
        "Config groups (GROUP=OPTION; * marks the default):",
    ]
    groups = config_groups()
    width = max([len(g) for g, _, _ in groups] + [8]) + 2
    for group, options, chosen in groups:
        names = "  ".join(o + ("*" if o == chosen else "") for o in options)
        note = f"  (* with the default {group.rpartition('/')[0]})" if "/" in group and chosen else ""
        lines.append(f"  {group:<{width}}{names}{note}")
    lines += ["", "Configuration keys (KEY=VALUE; default shown; generated from yieldmc/configuration/schema.py,",
              "the same table as docs/configuration.md):",
              schema.key_table(markdown=False, defaults=defaults)]
    lines += [
        "  process.<quantity>.<level>.<param>=VALUE: a variation, e.g. process.dx_um.module.sigma=0.5",
        "",
        "Examples:",
    ]
    for cmd, note in _HELP_EXAMPLES:
        lines += ([f"  # {note}"] if note else []) + [f"  {cmd}"]
    lines += [
        "",
        "Options:",
        "  -h, --help          this help",
        "  --version           print the version",
        "  --cfg job           print the composed configuration (with the overrides) and exit",
        "  -m, --multirun      run every combination of comma-separated override values",
        "  --hydra-help        Hydra's own help (--info, --config-dir, launchers, shell completion)",
        "",
        f"Exit status: 0 done; {EXIT_BAD_INPUT} bad input (one line on stderr naming the key) or a closed "
        f"stdout; 3 mode=optimize missed its target yield (the verdict says why); 130/143 stopped by "
        f"SIGINT/SIGTERM at a block boundary (rerun to resume); {_EXIT_CLOSED_PIPE} output pipe closed.",
        "Documentation: README.md and docs/ in the yieldmc repository.",
    ]
    return "\n".join(lines)


#: The stored help text (:func:`write_help_file`), with the fingerprint of its sources.
HELP_FILE = Path(__file__).resolve().parent.parent / "data" / "help.json"

#: The files the help text is generated from, relative to the repository root (besides
#: every YAML file of ``conf/``): the keys and their declarations, the registered parts
#: whose keys and names it lists, and this module, which writes the text.
_HELP_SOURCES = ("yieldmc/_version.py", "yieldmc/io/help.py", "yieldmc/io/config.py", "yieldmc/configuration/schema.py", "yieldmc/configuration/tree.py", "yieldmc/parts.py",
                 "yieldmc/engine/quantities.py", "yieldmc/engine/variation.py", "yieldmc/engine/estimators.py", "yieldmc/couplers/*.py",
                 "yieldmc/samplers/*.py")


def _help_fingerprint() -> str:
    """SHA-256 over the path and bytes of every file the help text is generated from."""
    import hashlib

    root = CONF_DIR.parent
    files = sorted(CONF_DIR.rglob("*.yaml"))
    for pattern in _HELP_SOURCES:
        files += sorted(root.glob(pattern))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        digest.update(f.read_bytes() + b"\0")
    return digest.hexdigest()


def help_text() -> str:
    """``yieldmc --help``: the stored text when its sources are unchanged (no JAX, no Hydra:
    well under a second), else :func:`_help_text` (a few seconds). Generated when plugins
    (``YIELDMC_PLUGINS``) or a local ``conf/`` can add keys or options."""
    import json
    import os

    if not os.environ.get("YIELDMC_PLUGINS", "").strip() and not local_search_path():
        try:
            stored = json.loads(HELP_FILE.read_text(encoding="utf-8"))
            if stored["fingerprint"] == _help_fingerprint():
                return stored["text"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return _help_text()


def write_help_file() -> Path:
    """Store the generated help text with its sources' fingerprint in :data:`HELP_FILE`.

    Run after changing a key, a default, a config group or the help's wording:
    ``python -c "from yieldmc.io.help import write_help_file; write_help_file()"``
    (tests/test_messages.py fails while the stored text is stale)."""
    import json

    HELP_FILE.write_text(json.dumps({"fingerprint": _help_fingerprint(), "text": _help_text()},
                                    ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return HELP_FILE
