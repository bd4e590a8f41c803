"""yieldmc.outputs.write_replacing: the one way yieldmc writes a file it may replace."""

from __future__ import annotations

import os

import pytest

from yieldmc import outputs
from yieldmc.outputs import write_replacing

MARK = b"#yieldmc\n"


def ours(path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MARK)) == MARK


def leftovers(directory) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_writes_where_absent_and_replaces_its_own(tmp_path):
    path = tmp_path / "a.txt"
    assert write_replacing(MARK + b"one", path, ours=ours) and path.read_bytes() == MARK + b"one"
    assert write_replacing(MARK + b"two", path, ours=ours) and path.read_bytes() == MARK + b"two"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["foreign", "symlink", "directory"])
def test_never_replaces_what_yieldmc_did_not_write(tmp_path, kind):
    path, mine = tmp_path / "a.txt", tmp_path / "mine.txt"
    mine.write_bytes(MARK + b"yieldmc's, behind a link")
    if kind == "foreign":
        path.write_bytes(b"a user's notes")
    elif kind == "symlink":
        path.symlink_to(mine)
    else:
        path.mkdir()
    before = os.lstat(path)
    assert not write_replacing(MARK + b"new", path, ours=ours)
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (before.st_ino, before.st_mode, before.st_mtime_ns)
    assert mine.read_bytes() == MARK + b"yieldmc's, behind a link"
    if kind == "foreign":
        assert path.read_bytes() == b"a user's notes"
    assert leftovers(tmp_path) == []


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path, monkeypatch):
    """A user's file created between the check and the link into place stays as it is."""
    path = tmp_path / "a.txt"
    real_link = os.link

    def link_after_a_user(src, dst, **kw):
        if not os.path.lexists(dst):
            with open(dst, "wb") as f:
                f.write(b"written meanwhile")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(outputs.os, "link", link_after_a_user)
    assert not write_replacing(MARK + b"new", path, ours=ours)
    assert path.read_bytes() == b"written meanwhile" and leftovers(tmp_path) == []


def test_an_error_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "link", fail)
    monkeypatch.setattr(outputs.os, "replace", fail)
    with pytest.raises(OSError):
        write_replacing(MARK + b"new", path, ours=ours)
    assert not path.exists() and leftovers(tmp_path) == []
