"""The content-addressed raw store: every received byte, once, under its SHA-256.

Layout under the store root::

    raw/ab/cd/<sha256>            the received bytes, exactly
    accepted/ab/<key>.parquet     the accepted rows of a judged file
    accepted/incoming/            accepted rows being written while a file is judged
    findings/ab/<key>.csv         the full findings list of a judged file

The key of a derived file is its receipt's hex id (records before 2026.2's readings used the file's
SHA-256; the ledger records each path, so both are read the same way): the same bytes can be
judged more than once.

Every write goes to a temporary name on the same file system (the same folder, or a staging
folder beside it), is fsynced, and is renamed into place, so a crash leaves the old state or the
new, never half a file. Names are derived from hashes
only: nothing a sender chose ever reaches the file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from vardfil.errors import StoreError

CHUNK = 1 << 20


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (``vardfil verify``, the published files' record)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class RawStore:
    """A folder of immutable, content-addressed files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def writable(self) -> bool:
        """Whether a file can be written (and removed) in the store now (``/readyz``)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-ready-")
            os.close(fd)
            os.unlink(tmp)
        except OSError:
            return False
        return True

    def raw_path(self, sha256: str) -> Path:
        """Where the bytes with this hash live."""
        return self.root / "raw" / sha256[:2] / sha256[2:4] / sha256

    def relative(self, path: Path) -> str:
        """A store path as the ledger records it."""
        return path.relative_to(self.root).as_posix()

    def resolve(self, relative: str) -> Path:
        """The absolute path of a recorded store path."""
        return self.root / relative

    def _atomic_write(self, target: Path, write: Callable[[IO[bytes]], object]) -> Path:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(target.parent)
        except OSError as e:
            raise StoreError(f"cannot write to the store at {target.parent}: {e.strerror or e}", path=target) from e
        return target

    def put_raw(self, source: bytes | Path) -> tuple[str, int, Path]:
        """Store received bytes (or a file's bytes, streamed). Returns (sha256, size, path).

        Idempotent: bytes already stored are not written again.
        """
        if isinstance(source, bytes):
            sha = hashlib.sha256(source).hexdigest()
            target = self.raw_path(sha)
            if not target.exists():
                self._atomic_write(target, lambda fh: fh.write(source))
            return sha, len(source), target
        # Stream a file: copy to a temporary name while hashing, then rename to its hash. The name is
        # known only at the end, so the copy lands in a staging folder on the same file system
        # (a rename across file systems would not be atomic).
        staging = self.root / "raw" / "incoming"
        h, size = hashlib.sha256(), 0
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=staging, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                sha = h.hexdigest()
                target = self.raw_path(sha)
                if target.exists():
                    Path(tmp).unlink()
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
                    _fsync_dir(target.parent)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            raise StoreError(f"cannot write to the store at {staging}: {e.strerror or e}", path=staging) from e
        return sha, size, target

    def put_bytes(self, kind: str, key: str, suffix: str, data: bytes) -> Path:
        """Store a derived file (findings CSV) under a hex key (a receipt's, or in older records
        the source file's hash)."""
        return self._atomic_write(self.root / kind / key[:2] / f"{key}{suffix}", lambda fh: fh.write(data))

    def _accepted_path(self, key: str) -> Path:
        return self.root / "accepted" / key[:2] / f"{key}.parquet"

    @contextlib.contextmanager
    def staged_parquet(self) -> Iterator[Path]:
        """A path on the store's file system for a Parquet another writer fills (the validator
        writes the accepted rows while it judges them); gone on exit unless adopted."""
        staging = self.root / "accepted" / "incoming"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=staging, prefix=".tmp-", suffix=".parquet")
            os.close(fd)
        except OSError as e:
            raise StoreError(f"cannot write to the store at {staging}: {e.strerror or e}", path=staging) from e
        try:
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def adopt_parquet(self, key: str, staged: Path) -> Path:
        """Move a staged Parquet (``staged_parquet``) to where the accepted rows of ``key`` live,
        durably: the file's bytes, then the rename, then the folder."""
        target = self._accepted_path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(staged, target)
            _fsync_dir(target.parent)
        except OSError as e:
            raise StoreError(f"cannot write to the store at {target.parent}: {e.strerror or e}", path=target) from e
        return target
