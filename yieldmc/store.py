"""The zarr store: per-block checkpoint, shard-safe writes, the final Dataset (edge).

Layout of ``<name>.zarr``:

* root attrs ``yieldmc_identity`` (hash of everything that fixes the result),
  ``config_yaml``, ``status`` (``running`` → ``complete``);
* group ``blocks/``: one chunk per block for ``n_pass``, ``fail``, ``loss_hi``,
  ``loss_lo``, ``hist`` (int32 statistics of that block alone) and ``done`` (uint8).
  A block's flag is written after its data, so a killed run resumes from the flags;
  jobs that share the blocks (``shard``/``num_shards``) write disjoint chunks;
* the DESIGN §5 variables at the root, written once every block is done, after which
  ``status`` becomes ``complete``. ``xarray.open_zarr`` reads them alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
import zarr

from yieldmc.engine import Stats, accumulate, block_counts, iterate_blocks, stats_from_blocks
from yieldmc.problem import Problem
from yieldmc.results import to_dataset

#: Config keys that do not change the result (how it is run, where it goes).
NON_IDENTITY_KEYS = ("output", "shard", "num_shards", "overwrite", "progress", "hydra")
_READ_BLOCKS = 64


class StoreError(ValueError):
    """A store that cannot be used for this run (foreign, unwritable, corrupt)."""


def identity(config: dict) -> str:
    """Hash of the configuration entries that determine the result."""
    ident = {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}
    engine = dict(ident.get("engine") or {})
    engine.pop("blocks_per_call", None)  # grouping only; results are identical
    ident["engine"] = engine
    text = yaml.safe_dump(ident, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shapes(problem: Problem) -> dict:
    """Name → (per-block shape, dtype) of the per-block statistics."""
    s = problem.static
    if s.sampler == "is":
        from yieldmc.importance import block_shapes

        return block_shapes(problem)
    p, lc = problem.n_points, (s.layers, s.channels)
    return {"n_pass": ((p,), "int32"), "fail": ((p, *lc), "int32"), "loss_hi": ((p, *lc), "int32"),
            "loss_lo": ((p, *lc), "int32"), "hist": ((p, *lc, s.hist_bins + 1), "int32")}


def open_store(path: Path, problem: Problem, config: dict, *, overwrite: bool) -> zarr.Group:
    """Open (or create) the store for this configuration.

    Raises:
      StoreError: the path holds something else, a store of a different configuration
        (unless ``overwrite``), or cannot be written.
    """
    ident = identity(config)
    path = Path(path)
    if path.exists():
        try:
            existing = zarr.open_group(str(path), mode="r").attrs.get("yieldmc_identity")
        except Exception:  # noqa: BLE001 - anything unreadable is not ours
            existing = None
        if existing != ident:
            if not overwrite:
                what = "a store of a different configuration" if existing else "not a yieldmc store"
                raise StoreError(
                    f"output: {path} is {what}; pass overwrite=true to replace it "
                    "or choose another output.name"
                )
            _remove(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        root = zarr.open_group(str(path), mode="a")
        if root.attrs.get("yieldmc_identity") != ident:
            root.attrs.update({"yieldmc_identity": ident, "status": "running",
                               "config_yaml": yaml.safe_dump(config, sort_keys=False)})
        nb = problem.n_blocks
        for name, (shape, dtype) in _shapes(problem).items():
            root.require_array(f"blocks/{name}", shape=(nb, *shape), dtype=dtype,
                               chunks=(1, *shape), fill_value=0)
        root.require_array("blocks/done", shape=(nb,), dtype="uint8", chunks=(1,), fill_value=0)
    except OSError as exc:
        raise StoreError(f"output: cannot write {path}: {exc.strerror or exc}") from None
    return root


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def done_blocks(root: zarr.Group) -> np.ndarray:
    """Boolean done flag of every block."""
    return np.asarray(root["blocks/done"][:]).astype(bool)


def is_complete(root: zarr.Group) -> bool:
    return root.attrs.get("status") == "complete"


def run_blocks(root: zarr.Group, problem: Problem, blocks, *, n_devices=None, progress=None) -> None:
    """Compute the given blocks and write each one's statistics, then its done flag."""
    arrays = {name: root[f"blocks/{name}"] for name in _shapes(problem)}
    done = root["blocks/done"]
    for chunk, per_block in iterate_blocks(problem, blocks, n_devices=n_devices):
        for j, b in enumerate(chunk):
            for name, arr in arrays.items():
                arr[int(b)] = per_block[name][j]
        for b in chunk:
            done[int(b)] = 1
        if progress is not None:
            progress(int(block_counts(problem, chunk).sum()))


def _lock(path) -> Path:
    return Path(path).with_name(Path(path).name + ".finalize-lock")


def claim_finalize(path: Path) -> bool:
    """True for exactly one of several shards that find every block done at once.

    A rerun that computed nothing finalizes without claiming (a claimant may have died).
    """
    try:
        fd = os.open(_lock(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def finalize(root: zarr.Group, path: Path, problem: Problem, config: dict) -> xr.Dataset:
    """Sum every block, write the Dataset at the store's root and mark it complete."""
    ds = None
    if problem.static.sampler == "is":
        from yieldmc.importance import run_importance
        from yieldmc.problem import as_plain_mc
        from yieldmc.results import importance_dataset

        per_block = {n: np.asarray(root[f"blocks/{n}"][:]) for n in _shapes(problem)}  # small
        est = run_importance(problem, per_block=per_block)
        if est is not None:
            ds = importance_dataset(problem, est, config)
        else:  # fallback, recorded in the attrs
            mc = as_plain_mc(problem)
            ds = to_dataset(mc, accumulate(mc, range(mc.n_blocks)), config)
            ds.attrs["sampler"] = "mc (fallback from is)"
    if ds is None:
        ds = _sum_blocks(root, problem, config)
    ds.attrs.update({"yieldmc_identity": root.attrs["yieldmc_identity"], "status": "complete"})
    ds.to_zarr(str(path), mode="a", consolidated=False)
    # provenance attrs, with status "complete" written last of all the store's content
    zarr.open_group(str(path), mode="a").attrs.update(ds.attrs)
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python v3 extension
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(str(path))
    _lock(path).unlink(missing_ok=True)
    return ds


def _sum_blocks(root: zarr.Group, problem: Problem, config: dict) -> xr.Dataset:
    stats = Stats.zeros(problem)
    for start in range(0, problem.n_blocks, _READ_BLOCKS):  # flat memory in n_blocks
        sl = slice(start, min(start + _READ_BLOCKS, problem.n_blocks))
        stats += stats_from_blocks({n: root[f"blocks/{n}"][sl] for n in _shapes(problem)}, 0,
                                   problem, np.arange(sl.start, sl.stop))
    stats.n_samples = problem.samples
    return to_dataset(problem, stats, config)


def open_result(path) -> xr.Dataset:
    """The Dataset of a complete store.

    Raises:
      StoreError: if the path is no yieldmc store or the run has not completed.
    """
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception:  # noqa: BLE001
        raise StoreError(f"store: {path} is not a zarr store") from None
    if "yieldmc_identity" not in root.attrs:
        raise StoreError(f"store: {path} is not a yieldmc store")
    if not is_complete(root):
        raise StoreError(f"store: {path} is incomplete (the run has not finished)")
    return xr.open_zarr(str(path))
