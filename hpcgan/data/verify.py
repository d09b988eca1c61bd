"""Shard contents against index.json: the sha256 of each shard, once per process.

ShardSet.open already compares every shard's size with the index (a stat). Here the first read of a
shard in a process hashes it (about 1 GB/s; each node reads the set once, later ranks on the node
hit the page cache). A process remembers what it verified, keyed by path, size and mtime, so a new
loader over the same set (evaluation, a rollback) costs nothing. For huge sets, turn it off with
HPCGAN_VERIFY_SHARDS=0 (or `verify=False`): sizes and the tars' member tables are still checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from hpcgan.atomic import sha256_file
from hpcgan.data.index import INDEX_NAME, ShardSet
from hpcgan.errors import UserError

VERIFY_ENV = "HPCGAN_VERIFY_SHARDS"
_verified: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) this process checked


def verify_enabled(verify: bool | None = None) -> bool:
    """`verify` when given, else $HPCGAN_VERIFY_SHARDS (on unless 0, false, no or off)."""
    if verify is not None:
        return verify
    return os.environ.get(VERIFY_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def verify_split(shard_set: ShardSet, split: str, verify: bool | None = None) -> None:
    """Check the sha256 of every shard of `split` against the index, once per process; a mismatch
    is one line naming the shard."""
    shard_set.shards(split)  # an unknown split is one line there
    if not verify_enabled(verify):
        return
    for entry in shard_set.index["splits"][split]["shards"]:
        if "sha256" in entry:
            verify_shard(shard_set.root / entry["name"], entry["sha256"])


def verify_shard(path: Path, expected: str) -> None:
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
        if key in _verified:
            return
        actual = sha256_file(path)
    except OSError as exc:
        raise UserError(f"{path}: unreadable shard ({exc.strerror or exc})") from None
    if actual != expected:
        raise UserError(f"{path}: sha256 {actual[:16]}... differs from {INDEX_NAME} ({expected[:16]}...): the shard "
                        "is damaged or was replaced; re-run `hpcgan shard` to rebuild the set")  # fmt: skip
    _verified.add(key)
