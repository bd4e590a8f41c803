"""What marks a directory as a yieldmc store, read without zarr (pure file reads).

Kept apart from :mod:`yieldmc.io.store` so that the job parser can ask "is this path, or one of
its parents, a store?" without importing the store (and the engine under it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: The store's own marker (layout and identity), beside the root ``zarr.json``: a store whose
#: root metadata is damaged is still recognised (and its root metadata rewritten).
_MARKER = ".yieldmc-store"


def _zarr_attrs(path) -> dict | None:
    """The yieldmc attributes of the root ``zarr.json`` at ``path`` (None: unreadable, or no
    yieldmc store's)."""
    meta = Path(path) / "zarr.json"
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict) or doc.get("node_type") != "group":
        return None
    if "yieldmc_store" not in attrs and "yieldmc_identity" not in attrs:  # the first layout had only this
        return None
    return attrs


def _marker(path) -> dict | None:
    """The store's marker file (``{"yieldmc_store": layout, "yieldmc_identity": ...}``) or None."""
    try:
        doc = json.loads((Path(path) / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("yieldmc_identity"), str) or "yieldmc_store" not in doc:
        return None
    return {"yieldmc_store": doc["yieldmc_store"], "yieldmc_identity": doc["yieldmc_identity"]}


def root_attrs(path) -> dict | None:
    """The root attributes of a yieldmc store at ``path``, or None for anything else.

    Reads only ``zarr.json`` and the marker file ``.yieldmc-store``: a directory of someone
    else's data is never opened as zarr. When the root metadata is unreadable but the marker
    is intact, the marker's layout and identity are returned (no ``status``: not complete).
    """
    if Path(path).is_symlink():
        return None
    attrs = _zarr_attrs(path)
    return attrs if attrs is not None else _marker(path)


def enclosing_store(path) -> Path | None:
    """The yieldmc store that is ``path`` or one of its parents (symlinks resolved), or None."""
    p = Path(os.path.realpath(path))
    while True:
        if root_attrs(p) is not None:
            return p
        if p.parent == p:
            return None
        p = p.parent
