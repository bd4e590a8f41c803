"""Where a job writes: the check of ``output.dir``, what marks a directory as a yieldmc
store (read without zarr: pure file reads), and the one way yieldmc writes a file it may
replace (:func:`write_replacing`: plots, reports, calibrated process files).

Kept apart from :mod:`yieldmc.io.store` so that the job parser can check its output and
ask "is this path, or one of its parents, a store?" without importing the store (and the
engine under it).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
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


def check_output_dir(directory: str, base: Path | None = None) -> None:
    """Refuse an ``output.dir`` that can be neither used nor created, without creating anything.

    Walks up from the directory (relative to ``base``; default: Hydra's runtime cwd, else
    the current directory) to the nearest existing path, which must be a directory that we
    may write and enter (``os.access(W_OK | X_OK)``; a read-only file system fails too) and
    that is not on a kernel file system such as ``/proc`` (where root's ``os.access`` says yes).

    Raises:
      ValueError: ``output.dir: <what is wrong>, got <value>``.
    """
    import os

    if "\0" in directory:
        raise ValueError(f"output.dir: contains a NUL byte, got {directory!r}")
    if base is None:
        from hydra.core.hydra_config import HydraConfig

        base = Path(HydraConfig.get().runtime.cwd) if HydraConfig.initialized() else Path.cwd()
    target = Path(directory)
    if not target.is_absolute():
        target = Path(base) / target
    probe = target
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"output.dir: {probe} is not a directory, got {directory!r}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == target else f"cannot be created ({probe} is not writable)"
        raise ValueError(f"output.dir: {target} {what}, got {directory!r}")
    fs = _file_system_type(probe)
    if fs in _VIRTUAL_FILE_SYSTEMS:  # os.access says yes to root even there
        raise ValueError(f"output.dir: {probe} is on a {fs} file system, which holds no files, got {directory!r}")


#: Kernel file systems that hold no user files (root's os.access still says "writable").
_VIRTUAL_FILE_SYSTEMS = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "securityfs", "debugfs", "tracefs", "pstore",
    "bpf", "configfs", "fusectl", "mqueue", "binfmt_misc", "efivarfs",
})


def _file_system_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (Linux ``/proc/self/mountinfo``), or None."""
    import os
    import re

    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, found = "", None
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:] or len(fields) < 5:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # " " is \040
        fs = fields[fields.index("-", 6) + 1]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, found = mount, fs
    return found


def replaceable(path, ours: Callable[[Path], bool]) -> bool:
    """Absent, or a regular file that ``ours`` recognises as written by yieldmc (never a
    user's file, a symlink, a directory or anything else yieldmc did not create)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISREG(st.st_mode) and bool(ours(Path(path)))


def write_replacing(data: bytes, path, *, ours: Callable[[Path], bool]) -> bool:
    """Write ``data`` to ``path`` atomically, only where :func:`replaceable`.

    The bytes go to a fresh temporary file beside ``path`` (exclusive create, no symlink
    followed), which is then linked into place when ``path`` is absent (a file that
    appeared meanwhile is not clobbered) or renamed onto it when it is still one of
    yieldmc's: a reader sees the old file or the new one, never a part. Returns False, with
    nothing written, when ``path`` is not replaceable; an OSError (e.g. a read-only
    directory) propagates, with no temporary file left behind.
    """
    path = Path(path)
    if not replaceable(path, ours):
        return False
    tmp = None
    try:
        for _ in range(100):
            candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:
            raise FileExistsError(f"no free temporary name beside {path}")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if not _install(tmp, path, ours):
            return False
        tmp = None
        return True
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _install(tmp: Path, path: Path, ours) -> bool:
    """Move ``tmp`` onto ``path`` if that is (still) :func:`replaceable`; False if not."""
    while True:
        if not replaceable(path, ours):
            return False
        if os.path.lexists(path):
            os.replace(tmp, path)
            return True
        try:  # no-clobber: a file that appeared since the check is not replaced
            os.link(tmp, path)
        except FileExistsError:
            continue  # look again at what appeared
        except OSError:  # no hard links on this file system: rename (checked just above)
            os.replace(tmp, path)
            return True
        os.unlink(tmp)
        return True
