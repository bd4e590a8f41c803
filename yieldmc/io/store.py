"""The zarr store: per-block checkpoint, shard-safe writes, the final Dataset (edge).

Layout of ``<name>.zarr``:

* root attrs ``yieldmc_store`` (the layout version: how yieldmc recognises its own
  stores), ``yieldmc_identity`` (hash of everything that fixes the result),
  ``config_yaml``, ``status`` (``running`` → ``complete``) and, once complete,
  ``result_digest`` (SHA-256 of the result's values);
* group ``blocks/``: one chunk per block for each of the sampler's per-block statistics
  (:meth:`yieldmc.samplers.Sampler.block_shapes`; for the count samplers the arrays of
  :data:`yieldmc.engine.statistics.STATISTICS`: ``n_pass``, ``fail``, ``loss_hi``,
  ``loss_lo``, ``hist`` …, each block's alone) and ``done`` (its seal, uint32).
  A block's flag is written after its data, so a killed run resumes from the flags;
  jobs that share the blocks (``shard``/``num_shards``) write disjoint chunks;
* the result variables at the root, moved in once every block is done, after which
  ``status`` becomes ``complete``. ``xarray.open_zarr`` reads them alone.

What keeps the data safe (docs/store.md says it in full):

* **Creation is atomic.** A new store is built aside (``.<name>.creating-<id>``) and
  renamed into place; of several shards that start at once, one rename wins and the
  others open the winner's store.
* **Only yieldmc stores are replaced.** A path that carries neither the root attribute
  ``yieldmc_store`` nor the marker file ``.yieldmc-store`` is never touched, whatever
  ``overwrite`` says; nor is a store holding an entry yieldmc did not write (a user's
  file, another store). A replaced store is first renamed aside (only one racer can),
  then removed.
* **A store in use is not replaced.** Every job using a store holds a shared ``flock``
  on ``<store>/.use-lock`` while it runs; replacing needs the exclusive lock, so a job
  never loses its store (and its result) to another configuration's overwrite.
* **The result becomes visible only when complete.** It is written aside inside the
  store (``.result-<id>``), its arrays are renamed into the root, the metadata is
  consolidated, and ``status: complete`` with the digest is the last write (zarr's
  local store writes each file atomically). A kill at any point leaves a store whose
  status is not ``complete``; the same command then finishes it.
* **One finalizer.** The result is written under an ``fcntl`` lock on
  ``<store>/.finalize-lock`` holding the writer's pid and host. The kernel (or the NFS
  lock manager) releases the lock of a dead process, so a stale lock file is taken over
  by the next run.
* **Integrity.** Every chunk carries a CRC-32C checksum; block chunks are filled with a
  sentinel (−1, NaN) so a missing chunk is seen; each block is checked (the checks of
  the statistics table: its histogram sums to its module count, no count exceeds it). A
  damaged block is recomputed; a result whose digest does not match is recomputed from
  the blocks (command) or refused (:func:`open_result`).

Fault injection for the tests: ``YIELDMC_FAULT=<point>`` kills the process with SIGKILL
at that point (``create-aside``, ``finalize-aside``, ``finalize-move``,
``finalize-status``); ``YIELDMC_PAUSE=store-open`` holds a job that has just opened its
store while the file ``$YIELDMC_PAUSE_FILE`` exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import time
import uuid
import warnings
import weakref
import zlib
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from yieldmc.engine.blocks import block_counts, iterate_blocks
from yieldmc.engine.statistics import block_ok
from yieldmc.engine.problem import Problem
from yieldmc.io.results import dataset

from yieldmc.outputs import _MARKER, _marker, _zarr_attrs, enclosing_store, root_attrs  # noqa: E402,F401
from yieldmc.job import STORE_FORMAT, Job  # noqa: E402 - the layout version, the parsed job
_READ_BLOCKS = 64
_LOCK = ".finalize-lock"
#: Held shared by every job using the store, exclusive by a job replacing it.
_USE_LOCK = ".use-lock"
#: Files at the root of a store that yieldmc writes (besides the arrays and ``blocks/``).
_OWN_FILES = ("zarr.json", _LOCK, _USE_LOCK, _MARKER)


def _codecs():
    return (ZstdCodec(level=1), Crc32cCodec())


class StoreError(ValueError):
    """A store that cannot be used for this run (foreign, unwritable, damaged)."""


def _fault(point: str) -> None:
    """Kill this process at a named point when ``YIELDMC_FAULT`` asks for it (tests)."""
    if os.environ.get("YIELDMC_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(point: str) -> None:
    """Wait at a named point while the file ``$YIELDMC_PAUSE_FILE`` exists, when
    ``YIELDMC_PAUSE=<point>`` asks for it (tests: a job held at a known moment). The job
    first writes ``<that file>.reached``."""
    if os.environ.get("YIELDMC_PAUSE") != point:
        return
    flag = Path(os.environ["YIELDMC_PAUSE_FILE"])
    Path(f"{flag}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + 600
    while flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _shapes(problem: Problem) -> dict:
    """Name → (per-block shape, dtype) of the per-block statistics (the sampler's)."""
    return problem.static.sampler.block_shapes(problem)


def _sentinel(dtype: str):
    return -1 if np.dtype(dtype).kind == "i" else float("nan")


def _write_json(path: Path, doc: dict) -> None:
    """Write a small JSON file atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _array_dir(entry: Path) -> bool:
    """Whether ``entry`` has the shape of a zarr array yieldmc writes: a real directory holding
    ``zarr.json`` and/or the chunk directory ``c`` and nothing else (zarr's ``*.partial``
    temporary files of a killed write aside)."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    names = {p.name for p in entry.iterdir() if not p.name.endswith(".partial")}
    return bool(names) and names <= {"zarr.json", "c"}


def foreign_entries(path) -> list[str]:
    """Entries of a store that yieldmc did not write: anything but its own files, its
    arrays (root and ``blocks/``) and an aside result (``.result-*``). A nested store, a
    user's file or directory is foreign. Chunk directories (``c/``) are not walked."""
    path, out = Path(path), []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            out.append(name)
        elif name in _OWN_FILES or name.endswith(".partial"):
            if not entry.is_file():
                out.append(name)
        elif name.startswith(".result-") and entry.is_dir():
            continue
        elif name == "blocks" and entry.is_dir():
            for sub in sorted(entry.iterdir()):
                if sub.is_symlink() or not ((sub.name == "zarr.json" or sub.name.endswith(".partial"))
                                            and sub.is_file() or _array_dir(sub)):
                    out.append(f"blocks/{sub.name}")
        elif not _array_dir(entry):
            out.append(name)
    return out


# --------------------------------------------------------------------------- in use
def _open_use_lock(path: Path) -> int | None:
    """An open descriptor of ``<store>/.use-lock`` (created if missing), or None where it
    can be neither opened nor created (a read-only mount of a store without it)."""
    file = Path(path) / _USE_LOCK
    try:
        return os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # the store itself went away
            raise
    try:
        return os.open(file, os.O_RDONLY)  # read-only: reading a complete store needs no writes
    except OSError as exc:
        if exc.errno == errno.ENOENT and (Path(path) / "zarr.json").exists():
            return None
        raise


def _lock(fd: int, mode: int) -> bool:
    """``flock`` without blocking: False when another process holds a conflicting lock; True
    also on a file system without locks (nothing to coordinate with there)."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _same_file(fd: int, file: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(file)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _in_use(path: Path) -> bool:
    """Whether another job holds ``path``'s use lock (probes the exclusive lock, then lets go)."""
    try:
        fd = _open_use_lock(path)
    except OSError:
        return False
    if fd is None:
        return False
    try:
        return not _lock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)


def _in_use_error(path: Path) -> StoreError:
    return StoreError(f"overwrite: {path} is in use by another yieldmc job; it is not replaced while "
                      "that job runs (rerun when it has finished, or choose another output.name)")


def check_replaceable(path: Path, *, overwrite: bool, identity_: str | None = None) -> bool:
    """Whether ``path`` exists and may be replaced; raises if it must be left alone.

    Raises:
      StoreError: ``path`` exists and is not a yieldmc store (left untouched, whatever
        ``overwrite`` says), or is a yieldmc store of another configuration and
        ``overwrite`` is false, or would be replaced but holds an entry yieldmc did not
        write or is in use by another job.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return False
    attrs = root_attrs(path) if not path.is_symlink() else None
    if attrs is None:
        raise StoreError(f"output: {path} exists and is not a yieldmc store; it is left untouched "
                         "(choose another output.name or output.dir)")
    if identity_ is not None and attrs.get("yieldmc_identity") == identity_:
        return False
    if not overwrite:
        what = "a yieldmc store" if identity_ is None else "a yieldmc store of a different configuration"
        raise StoreError(f"output: {path} is {what}; pass overwrite=true to replace it "
                         "or choose another output.name")
    _check_own(path)
    if _in_use(path):
        raise _in_use_error(path)
    return True


def _check_own(path: Path) -> None:
    """Refuse to replace a store that holds an entry yieldmc did not write."""
    foreign = foreign_entries(path)
    if foreign:
        raise StoreError(f"overwrite: {path} holds {foreign[0]!r}, which yieldmc did not write; the store "
                         "is not replaced (move that out of it, or choose another output.name)")


def _discard(path: Path) -> None:
    """Remove a yieldmc store: take its use lock exclusively (refused while a job uses it),
    rename it aside (one racer wins), check it once more, then delete it."""
    try:
        fd = _open_use_lock(path)
    except FileNotFoundError:
        return  # another job replaced it first
    try:
        if fd is not None and not _lock(fd, fcntl.LOCK_EX):
            raise _in_use_error(path)
        if fd is not None and not _same_file(fd, path / _USE_LOCK):
            return  # replaced meanwhile: the caller looks again
        trash = path.with_name(f".{path.name}.discard-{uuid.uuid4().hex[:12]}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return  # another job replaced it first
        if root_attrs(trash) is None or foreign_entries(trash):  # swapped or filled under us: put it back
            with contextlib.suppress(OSError):
                os.rename(trash, path)
            raise StoreError(f"output: {path} changed while it was being replaced; left untouched")
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        if fd is not None:
            os.close(fd)


def _create(path: Path, job: Job) -> None:
    """Build the empty store aside and rename it into place (no-op if another job won)."""
    tmp = path.with_name(f".{path.name}.creating-{uuid.uuid4().hex[:12]}")
    try:
        root = zarr.open_group(str(tmp), mode="w-")
        for name, (shape, dtype, fill) in _block_arrays(job).items():
            root.create_array(f"blocks/{name}", shape=shape, dtype=dtype, chunks=(1, *shape[1:]),
                              fill_value=fill, compressors=_codecs())
        root.attrs.update({"yieldmc_store": STORE_FORMAT, "yieldmc_identity": job.identity,
                           "status": "running", "config_yaml": job.config_yaml})
        _write_json(tmp / _MARKER, {"yieldmc_store": STORE_FORMAT, "yieldmc_identity": job.identity})
        _fault("create-aside")
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def must_replace(path: Path, job: Job, *, overwrite: bool, replace: bool = True) -> bool:
    """Whether a store at ``path`` must be replaced before this job can use it.

    Raises:
      StoreError: the path must be left alone (not a yieldmc store; another
        configuration's store without ``overwrite``, or with it from one of several
        shards: replacing one store from concurrent jobs cannot be made safe).
    """
    if os.path.isdir(path) and not path.is_symlink() and root_attrs(path) is None and sealed_by(path, job):
        return False  # this job's store, its root metadata and marker lost: open_store repairs it
    if not check_replaceable(path, overwrite=overwrite, identity_=job.identity):
        return False
    if not replace:
        raise StoreError(f"overwrite: {path} is a yieldmc store of a different configuration and this "
                         "is one of several shards; replacing it from concurrent jobs is refused: "
                         "remove it first or choose another output.name")
    return True


def open_store(path: Path, job: Job, *, overwrite: bool, replace: bool = True) -> zarr.Group:
    """Open (or create) the store for this configuration.

    Args:
      path: the store's path.
      job: the parsed job (its problem, identity and configuration).
      overwrite: replace a yieldmc store of another configuration.
      replace: whether this job may replace one at all (false for shards of a job:
        several jobs replacing one store at once cannot be made safe).

    Raises:
      StoreError: the path holds something that is not a yieldmc store, a store of a
        different configuration (unless ``overwrite``), or cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(50):
            if must_replace(path, job, overwrite=overwrite, replace=replace):
                _discard(path)
                continue
            if not path.exists():
                _create(path, job)
                continue
            fd = _hold(path, job)
            if fd is False:
                time.sleep(0.05)  # being replaced, or replaced meanwhile: look again
                continue
            try:
                _repair_root(path, job)
                _ensure_marker(path, job)
                root = zarr.open_group(str(path), mode="r+")
                _ensure_block_arrays(root, path, job)
            except BaseException:
                if fd is not None:
                    os.close(fd)
                raise
            if fd is not None:  # released with the group (or when the process ends)
                weakref.finalize(root, os.close, fd)
            _pause("store-open")
            return root
    except OSError as exc:
        raise StoreError(f"output: cannot write {path}: {exc.strerror or exc}") from None
    raise StoreError(f"output: {path} keeps changing under this job (another job replacing it?)")


def sealed_by(path: Path, job: Job) -> bool:
    """Whether the blocks under ``path`` were sealed by this job's configuration: a done
    block whose flag is the seal of (this identity, its index, its statistics).

    Recognises a store whose root ``zarr.json`` and marker are both lost. Only a
    ``blocks/`` whose arrays have this job's metadata (shapes, dtypes) is read at all,
    and nothing is written.
    """
    path = Path(path)
    expected = _block_arrays(job)
    arrays = {}
    for name, (shape, dtype, _) in expected.items():
        try:
            doc = json.loads((path / "blocks" / name / "zarr.json").read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(doc, dict) or doc.get("node_type") != "array" or tuple(doc.get("shape", ())) != shape \
                or doc.get("data_type") != np.dtype(dtype).name:
            return False
        try:
            arrays[name] = zarr.open_array(str(path / "blocks" / name), mode="r")
        except Exception:  # noqa: BLE001 - metadata zarr cannot read
            return False
    shapes = _shapes(job.problem)
    for start in range(0, job.problem.n_blocks, _READ_BLOCKS):
        flags = _read_safely(arrays["done"], slice(start, start + _READ_BLOCKS))
        for b in ([] if flags is None else np.flatnonzero(flags)):
            values = {n: _read_safely(arrays[n], slice(start + b, start + b + 1)) for n in shapes}
            if all(v is not None for v in values.values()) and block_seal(
                    job.identity, start + b, {n: v[0] for n, v in values.items()}, shapes) == int(flags[b]):
                return True
    return False


def _identity(path: Path, job: Job) -> str | None:
    """The identity of the store at ``path``: from its root metadata or marker, else this
    job's where its blocks carry this job's seals (:func:`sealed_by`)."""
    ident = (root_attrs(path) or {}).get("yieldmc_identity")
    if ident is None and sealed_by(path, job):
        return job.identity
    return ident


def _hold(path: Path, job: Job):
    """Take ``path``'s use lock shared, for as long as this job uses the store.

    Returns:
      The descriptor holding it; None where locks cannot be had (a read-only mount of a
      store without a lock file); False when the store is being replaced or is no longer
      this job's (the caller looks again).
    """
    try:
        fd = _open_use_lock(path)
    except FileNotFoundError:
        return False
    if fd is None:
        return None
    if _lock(fd, fcntl.LOCK_SH) and _same_file(fd, path / _USE_LOCK) and _identity(path, job) == job.identity:
        return fd
    os.close(fd)
    return False


def _repair_root(path: Path, job: Job) -> None:
    """Rewrite a damaged root ``zarr.json`` of this job's store (recognised by its marker or
    by its blocks' seals).

    The result's status and digest went with it, so the store becomes ``running``: the
    command then verifies every block and writes the result again.
    """
    if _zarr_attrs(path) is not None:
        return
    _write_json(path / "zarr.json", {
        "zarr_format": 3, "node_type": "group",
        "attributes": {"yieldmc_store": STORE_FORMAT, "yieldmc_identity": job.identity,
                       "status": "running", "config_yaml": job.config_yaml}})


def _ensure_marker(path: Path, job: Job) -> None:
    """Give a store made before the marker file existed its marker (where it can be written)."""
    if _marker(path) is None:
        with contextlib.suppress(OSError):
            _write_json(path / _MARKER, {"yieldmc_store": STORE_FORMAT, "yieldmc_identity": job.identity})


def _block_arrays(job: Job) -> dict:
    """Name → (shape, dtype, fill value) of every array under ``blocks/``."""
    nb = job.problem.n_blocks
    out = {name: ((nb, *shape), dtype, _sentinel(dtype)) for name, (shape, dtype) in _shapes(job.problem).items()}
    out["done"] = ((nb,), "uint32", 0)
    return out


def _ensure_block_arrays(root: zarr.Group, path: Path, job: Job) -> list[str]:
    """Rebuild any ``blocks/`` array whose metadata is missing, unreadable or of another shape.

    Its chunks go with it; if a statistics array was rebuilt, every done flag is cleared
    too, so the blocks are recomputed (bit-identically) rather than trusted.

    Returns:
      The names of the rebuilt arrays.
    """
    rebuilt = []
    for name, (shape, dtype, fill) in _block_arrays(job).items():
        try:
            arr = zarr.open_array(str(path / "blocks" / name), mode="r")
            ok = arr.shape == shape and arr.dtype == np.dtype(dtype)
        except Exception:  # noqa: BLE001 - unreadable or missing metadata
            ok = False
        if not ok:
            rebuilt.append(name)
    for name in ([*rebuilt, "done"] if rebuilt and "done" not in rebuilt else rebuilt):
        shape, dtype, fill = _block_arrays(job)[name]
        entry = path / "blocks" / name
        if os.path.lexists(entry) and not _array_dir(entry):
            raise StoreError(f"store: {entry} was not written by yieldmc; move it out of the store and rerun")
        shutil.rmtree(entry, ignore_errors=True)  # one of our own arrays
        root.create_array(f"blocks/{name}", shape=shape, dtype=dtype, chunks=(1, *shape[1:]),
                          fill_value=fill, compressors=_codecs(), overwrite=True)
    return rebuilt


def _read_safely(array, sl):
    """``array[sl]``, or None when a chunk fails its checksum or cannot be decoded."""
    try:
        return np.asarray(array[sl])
    except Exception:  # noqa: BLE001 - checksum mismatch, truncated or foreign chunk
        return None


def done_blocks(root: zarr.Group) -> np.ndarray:
    """Boolean done flag of every block (a flag that cannot be read counts as not done).

    The flag is the block's seal (:func:`block_seal`); whether it matches the data is
    checked when the result is built (:func:`damaged_blocks`)."""
    done = root["blocks/done"]
    flags = _read_safely(done, slice(None))
    if flags is None:  # a damaged flag chunk: read them one by one
        one = [_read_safely(done, slice(b, b + 1)) for b in range(done.shape[0])]
        return np.array([f is not None and f[0] != 0 for f in one], dtype=bool)
    return flags != 0


def block_seal(ident: str, block: int, values: dict, shapes: dict) -> int:
    """The done flag of a block: CRC-32 of (store identity, block index, its statistics).

    It ties each block's chunks to their place and their store: a chunk copied from
    another block or another store, or lost, no longer matches (never 0, which means
    "not done").
    """
    crc = zlib.crc32(f"{ident}:{int(block)}".encode())
    for name, (_, dtype) in shapes.items():
        crc = zlib.crc32(np.ascontiguousarray(values[name], dtype=dtype).tobytes(), crc)
    return crc or 1


def run_blocks(root: zarr.Group, problem: Problem, blocks, *, n_devices=None, progress=None,
               stop=None) -> None:
    """Compute the given blocks and write each one's statistics, then its done flag (its seal).

    ``stop`` (a callable, :mod:`yieldmc.io.signals`) is asked after each written chunk of
    blocks; when it answers true the loop returns early, every written block sealed.
    """
    shapes = _shapes(problem)
    arrays = {name: root[f"blocks/{name}"] for name in shapes}
    done = root["blocks/done"]
    ident = root.attrs["yieldmc_identity"]
    for chunk, per_block in iterate_blocks(problem, blocks, n_devices=n_devices):
        seals = []
        for j, b in enumerate(chunk):
            values = {name: np.asarray(per_block[name][j]) for name in arrays}
            for name, arr in arrays.items():
                arr[int(b)] = values[name]
            seals.append(block_seal(ident, b, values, shapes))
        for b, seal in zip(chunk, seals):
            done[int(b)] = seal
        if progress is not None:
            progress(int(block_counts(problem, chunk).sum()))
        if stop is not None and stop():
            return


# --------------------------------------------------------------------------- locking
class FinalizeLock:
    """Non-blocking exclusive ``fcntl`` lock on ``<store>/.finalize-lock``.

    ``acquired`` tells whether this process holds it; ``holder`` describes the process
    that does (pid, host, since) when it is not this one. The lock file stays (it lives
    inside the store); only the kernel's lock on it counts, so a holder that died leaves
    nothing stale behind.
    """

    def __init__(self, path: Path):
        self.file = Path(path) / _LOCK
        self.acquired, self.holder, self._fd = False, None, None

    def __enter__(self) -> "FinalizeLock":
        fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.holder = self._describe()
            return self
        except OSError:  # a file system without locks: go on unlocked (results are identical)
            pass
        self._fd, self.acquired = fd, True
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
        return self

    def _describe(self) -> str:
        try:
            info = json.loads(self.file.read_text())
            return f"pid {info['pid']} on host {info['host']} (since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another job"

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the lock
            self._fd = None


# --------------------------------------------------------------------------- integrity
def _block_ok(problem: Problem, b: int, values: dict, seal: int, ident: str) -> bool:
    """Self-check of block ``b``: readable, sealed by this store at this index, and (count
    statistics) every check of :data:`yieldmc.engine.statistics.STATISTICS` (its histogram
    sums to its module count, no count exceeds it …)."""
    if seal == 0 or any(v is None for v in values.values()):
        return False
    if block_seal(ident, b, values, _shapes(problem)) != seal:
        return False
    return not problem.static.sampler.counts or block_ok(values, int(block_counts(problem, [b])[0]))


def _verified_slices(root: zarr.Group, problem: Problem):
    """Yield (blocks, {name: array}) in slices, with the indices of damaged blocks."""
    names = list(_shapes(problem))
    arrays = {n: root[f"blocks/{n}"] for n in names}
    ident = root.attrs["yieldmc_identity"]
    for start in range(0, problem.n_blocks, _READ_BLOCKS):
        stop = min(start + _READ_BLOCKS, problem.n_blocks)
        values = {n: _read_safely(a, slice(start, stop)) for n, a in arrays.items()}
        seals = _read_safely(root["blocks/done"], slice(start, stop))
        if seals is None:  # a damaged flag chunk: read the flags one by one
            one_flag = [_read_safely(root["blocks/done"], slice(b, b + 1)) for b in range(start, stop)]
            seals = np.array([0 if f is None else f[0] for f in one_flag], dtype=np.uint32)
        bad = []
        for b in range(start, stop):
            seal = int(seals[b - start])
            if any(v is None for v in values.values()):
                one = {n: _read_safely(a, slice(b, b + 1)) for n, a in arrays.items()}
            else:
                one = {n: v[b - start: b - start + 1] for n, v in values.items()}
            if not _block_ok(problem, b, {n: (None if v is None else v[0]) for n, v in one.items()}, seal, ident):
                bad.append(b)
        yield np.arange(start, stop), values, bad


def damaged_blocks(root: zarr.Group, problem: Problem) -> list[int]:
    """Blocks whose stored statistics are missing, fail their checksum or their self-check."""
    return [b for _, _, bad in _verified_slices(root, problem) for b in bad]


def result_digest(ds: xr.Dataset) -> str:
    """SHA-256 over every variable's name, dtype, shape and values (the result's seal)."""
    h = hashlib.sha256()
    for name in sorted(ds.variables):
        v = np.ascontiguousarray(ds[name].values)
        if v.dtype.kind in "OUST":  # text: one spelling whatever the string dtype zarr reads back
            h.update(f"{name}|str|{v.shape}|".encode())
            h.update("\x00".join(map(str, v.ravel())).encode())
        else:
            h.update(f"{name}|{v.dtype.str}|{v.shape}|".encode())
            h.update(v.tobytes())
    return h.hexdigest()


def load_result(path) -> xr.Dataset | None:
    """The verified result of a complete store, or None (incomplete, missing or damaged)."""
    attrs = root_attrs(path)
    if attrs is None or attrs.get("status") != "complete" or "result_digest" not in attrs:
        return None
    for entry in _result_entries(Path(path)):  # every array's metadata must parse first
        try:
            json.loads((entry / "zarr.json").read_text())
        except (OSError, ValueError):
            return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xr.open_zarr(str(path), consolidated=False).load()
        ok = result_digest(ds) == attrs["result_digest"]
    except Exception:  # noqa: BLE001 - checksum mismatch, missing array metadata
        return None
    return ds if ok else None


def open_result(path) -> xr.Dataset:
    """The verified Dataset of a complete store.

    Raises:
      StoreError: if the path is no yieldmc store, the run has not completed, or the
        stored result fails its checksums or digest.
    """
    attrs = root_attrs(path)
    if attrs is None:
        raise StoreError(f"store: {path} is not a yieldmc store")
    if attrs.get("status") != "complete":
        raise StoreError(f"store: {path} is incomplete (the run has not finished)")
    ds = load_result(path)
    if ds is None:
        raise StoreError(f"store: {path} has a damaged result (checksum or digest mismatch); "
                         "rerun the same command to recompute it from the blocks")
    return ds


# --------------------------------------------------------------------------- the result
def _stored_blocks(root: zarr.Group, problem: Problem):
    """Yield ``(block_indices, {name: values})`` of every stored block, in slices, through the
    per-block self-check (the blocks were repaired just before, so only a file system that
    loses writes gets a damaged one here)."""
    for indices, values, bad in _verified_slices(root, problem):  # flat memory in n_blocks
        if bad:
            raise StoreError(f"store: blocks {bad[:10]} are damaged; rerun the same command")
        yield indices, values


def _compute_result(root: zarr.Group, problem: Problem, config_yaml: str) -> xr.Dataset:
    """The sampler's estimate from the stored blocks, as the result Dataset."""
    estimate = problem.static.sampler.estimate(problem, _stored_blocks(root, problem))
    return dataset(estimate, config_yaml)


def repair_blocks(root: zarr.Group, problem: Problem, *, n_devices=None) -> list[int]:
    """Recompute every damaged block (bit-identical: a block depends on (seed, b) alone).

    Returns:
      The blocks that were recomputed.

    Raises:
      StoreError: a block is still damaged after it was recomputed (naming it).
    """
    bad = damaged_blocks(root, problem)
    if bad:
        done = root["blocks/done"]
        for b in bad:
            done[b] = 0
        run_blocks(root, problem, bad, n_devices=n_devices)
        still = damaged_blocks(root, problem)
        if still:
            raise StoreError(f"store: blocks {still[:10]} of {root.store} are damaged and could not "
                             "be rewritten; check the file system")
    return bad


def _result_entries(path: Path) -> list[Path]:
    """The result's arrays at the store's root (every array but ``blocks/``; entries that
    yieldmc did not write are not among them: :func:`foreign_entries`)."""
    return [p for p in sorted(path.iterdir())
            if p.name != "blocks" and not p.name.startswith(".") and _array_dir(p)]


def _write_root_attrs(path: Path, attrs: dict) -> None:
    zarr.open_group(str(path), mode="r+").attrs.update(attrs)


def finalize(root: zarr.Group, path: Path, job: Job) -> xr.Dataset:
    """Check and sum every block, write the Dataset at the store's root, mark it complete.

    The caller holds :class:`FinalizeLock`. Damaged blocks are recomputed first.
    """
    path, problem = Path(path), job.problem
    repair_blocks(root, problem)
    ds = _compute_result(root, problem, job.config_yaml)
    ds.attrs.update({"yieldmc_store": STORE_FORMAT, "yieldmc_identity": root.attrs["yieldmc_identity"]})
    ds.attrs.pop("status", None)
    digest = result_digest(ds)
    for leftover in path.glob(".result-*"):  # of a finalizer that was killed (we hold the lock)
        shutil.rmtree(leftover, ignore_errors=True)
    aside = path / f".result-{uuid.uuid4().hex[:12]}"
    try:
        with warnings.catch_warnings():  # zarr v3: string coordinates
            warnings.simplefilter("ignore")
            ds.to_zarr(str(aside), mode="w-", consolidated=False,
                       encoding={v: {"compressors": _codecs()} for v in ds.variables})
        _fault("finalize-aside")
        clash = [e.name for e in aside.iterdir() if e.name != "zarr.json" and os.path.lexists(path / e.name)
                 and not _array_dir(path / e.name)]
        if clash:
            raise StoreError(f"store: {path / clash[0]} was not written by yieldmc and takes the name of a "
                             "result array; move it out of the store and rerun")
        old = _result_entries(path)
        if old:  # a partial or damaged result of an earlier finalize: never complete now
            _write_root_attrs(path, {"status": "running"})
            for entry in old:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for i, entry in enumerate(e for e in aside.iterdir() if e.name != "zarr.json"):
            os.rename(entry, path / entry.name)
            if i == 0:
                _fault("finalize-move")
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python v3 extension
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(str(path))
    _fault("finalize-status")
    # provenance attrs, with status "complete" and the digest as the store's last write
    _write_root_attrs(path, {**ds.attrs, "result_digest": digest, "status": "complete"})
    ds.attrs.update({"result_digest": digest, "status": "complete"})
    return ds


# --------------------------------------------------------------------------- small stores
def write_small_store(ds: xr.Dataset, path: Path, *, overwrite: bool, identity_: str) -> None:
    """Write a small Dataset (sensitivity, optimum) to ``path`` atomically.

    It is written aside, sealed with the store marker and digest, and renamed into place;
    an existing path is replaced only if it is a yieldmc store and ``overwrite`` is set.

    Raises:
      StoreError: a foreign path, an existing store without ``overwrite``, or an OS error.
    """
    path = Path(path)
    replace = check_replaceable(path, overwrite=overwrite)
    ds = ds.copy()  # identity_: the job's; an equal one is replaced too (a rerun recomputes)
    ds.attrs.update({"yieldmc_store": STORE_FORMAT, "yieldmc_identity": identity_,
                     "result_digest": result_digest(ds), "status": "complete"})
    tmp = path.with_name(f".{path.name}.writing-{uuid.uuid4().hex[:12]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # zarr v3: string coordinates, consolidated metadata
            warnings.simplefilter("ignore")
            ds.to_zarr(str(tmp), mode="w-", consolidated=True,
                       encoding={v: {"compressors": _codecs()} for v in ds.variables})
        _write_json(tmp / _MARKER, {"yieldmc_store": STORE_FORMAT, "yieldmc_identity": identity_})
        if replace:
            _discard(path)
        os.rename(tmp, path)
    except OSError as exc:
        raise StoreError(f"output: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
