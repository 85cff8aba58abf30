"""The content-addressed store of deployment packages and their unpacked trees.

Layout under ``root``::

    zips/<sha256 hex>.zip      the uploaded bytes, exactly (durable: tmp + fsync + rename)
    unpacked/<sha256 hex>/     the extracted tree (a cache, rebuilt from the zip on demand)
    */.tmp-<pid>-<random>      work in progress; removed when its process is gone

One Hearth process owns a root. All methods block and are meant for a thread executor;
they are safe to call concurrently from several threads (and processes) because every
publication is a single ``rename`` and a loser of a race simply discards its copy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from hearth.code._extract import extract
from hearth.code._limits import CodeLimits
from hearth.code._validate import inspect, zipped_too_large
from hearth.errors import ResourceNotFound, ServiceError

_HEX = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
#: ``CodeLimits()``: frozen, so one shared default instance is safe.
DEFAULT_LIMITS = CodeLimits()


@dataclass(frozen=True)
class CodeRef:
    """A stored package. ``sha256_b64`` is Lambda's ``CodeSha256``; ``size`` is
    Lambda's ``CodeSize`` (bytes of the zip as uploaded)."""

    sha256_hex: str
    sha256_b64: str
    size: int


def _not_found(sha256_hex: str) -> ResourceNotFound:
    return ResourceNotFound(f"Code package {sha256_hex[:64]!r} not found")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CodeStore:
    """Validate, store and unpack deployment packages, addressed by SHA-256."""

    def __init__(self, root: str | os.PathLike[str], limits: CodeLimits = DEFAULT_LIMITS) -> None:
        self._root = Path(root)
        self._limits = limits
        self._zips = self._root / "zips"
        self._unpacked = self._root / "unpacked"
        self._zips.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._unpacked.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._sweep()

    # --- public API ---------------------------------------------------------------

    @property
    def limits(self) -> CodeLimits:
        return self._limits

    def put(self, zip_bytes: bytes, operation: str | None = None) -> CodeRef:
        """Validate ``zip_bytes`` fully and store it; return its reference.

        Idempotent: storing bytes already present returns at once. Otherwise the
        archive is validated (see :mod:`hearth.code._validate`) and extracted into a
        temporary tree while its real bytes are counted, so the trial extraction that
        proves it safe also produces the tree the first invocation needs. Only then is
        the zip made durable and the tree published.

        Raises :class:`~hearth.errors.RequestEntityTooLarge` over ``max_zipped`` (its message
        names ``operation``, the API call that sent the zip),
        :class:`~hearth.errors.InvalidParameterValue` for an unusable or hostile
        archive, :class:`~hearth.errors.ServiceError` if the local disk fails.
        """
        if len(zip_bytes) > self._limits.max_zipped:
            raise zipped_too_large(self._limits, operation)
        digest = hashlib.sha256(zip_bytes).digest()
        ref = CodeRef(digest.hex(), base64.b64encode(digest).decode("ascii"), len(zip_bytes))
        if self.has(ref.sha256_hex):
            return ref
        tmp = self._extract_tmp(zip_bytes)
        try:
            self._write_zip(ref.sha256_hex, zip_bytes)
            self._publish(tmp, ref.sha256_hex)
        except OSError as exc:
            raise ServiceError("Failed to store the deployment package") from exc
        finally:
            self._discard(tmp)
        return ref

    def shas(self) -> list[str]:
        """The hashes of every stored package."""
        return sorted(
            p.name[: -len(".zip")]
            for p in self._zips.iterdir()
            if p.name.endswith(".zip") and len(p.name) == 68
        )

    def has(self, sha256_hex: str) -> bool:
        """Whether the zip for ``sha256_hex`` is stored (malformed digests: False)."""
        return _HEX.fullmatch(sha256_hex) is not None and self._zip_path(sha256_hex).is_file()

    def read(self, sha256_hex: str) -> bytes:
        """The zip exactly as uploaded. Raises ResourceNotFound if it is not stored."""
        self._check_hex(sha256_hex)
        try:
            return self._zip_path(sha256_hex).read_bytes()
        except FileNotFoundError:
            raise _not_found(sha256_hex) from None
        except OSError as exc:
            raise ServiceError("Failed to read the deployment package") from exc

    def unpacked(self, sha256_hex: str) -> str:
        """Path of the extracted tree ``root/unpacked/<hex>``, extracting it if needed.

        The fast path is one ``lstat``. Otherwise the stored zip is re-validated with
        the current limits and extracted into a temporary directory that is renamed
        into place; when several callers race, the first rename wins and the others
        discard their copies. The tree is never writable by group or others.

        Raises ResourceNotFound if the zip is not stored, InvalidParameterValue if the
        stored zip no longer passes the (possibly lowered) limits, ServiceError if the
        local disk fails.
        """
        self._check_hex(sha256_hex)
        final = self._unpacked / sha256_hex
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(final).st_mode):
                return str(final)
        data = self.read(sha256_hex)
        tmp = self._extract_tmp(data)
        try:
            self._publish(tmp, sha256_hex)
        except OSError as exc:
            raise ServiceError("Failed to unpack the deployment package") from exc
        finally:
            self._discard(tmp)
        return str(final)

    def remove(self, sha256_hex: str) -> None:
        """Delete the tree, then the zip; absent parts are fine.

        The tree goes first (renamed aside, then deleted) so that a crash in between
        never leaves a tree without its zip. The caller guarantees no function still
        references the package and no sandbox still uses the tree.
        """
        self._check_hex(sha256_hex)
        try:
            aside = self._tmp_path(self._unpacked)
            try:
                os.rename(self._unpacked / sha256_hex, aside)
            except FileNotFoundError:
                pass
            else:
                shutil.rmtree(aside)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._zip_path(sha256_hex))
            _fsync_dir(self._zips)
        except OSError as exc:
            raise ServiceError("Failed to remove the deployment package") from exc

    # --- internals ----------------------------------------------------------------

    def _check_hex(self, sha256_hex: str) -> None:
        # Digests become path components: anything but 64 lowercase hex is refused.
        if _HEX.fullmatch(sha256_hex) is None:
            raise _not_found(sha256_hex)

    def _zip_path(self, sha256_hex: str) -> Path:
        return self._zips / f"{sha256_hex}.zip"

    def _tmp_path(self, parent: Path) -> Path:
        return parent / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"

    def _extract_tmp(self, data: bytes) -> Path:
        """Validate ``data`` and extract it into a new private temp dir; return it.

        The temp dir is 0700 while being filled, so nobody sees a partial tree; it is
        removed again if anything fails.
        """
        zf, entries = inspect(data, self._limits)
        tmp = self._tmp_path(self._unpacked)
        try:
            with zf:
                os.mkdir(tmp, 0o700)
                extract(zf, entries, str(tmp), self._limits, len(data))
            os.chmod(tmp, 0o755)
        except OSError as exc:
            self._discard(tmp)
            raise ServiceError("Failed to unpack the deployment package") from exc
        except BaseException:
            self._discard(tmp)
            raise
        return tmp

    def _publish(self, tmp: Path, sha256_hex: str) -> None:
        """Rename ``tmp`` to the tree's final name unless another caller got there first."""
        try:
            os.rename(tmp, self._unpacked / sha256_hex)
        except OSError:
            # ENOTEMPTY/EEXIST: a concurrent caller published the same content first.
            if not (self._unpacked / sha256_hex).is_dir():
                raise

    def _write_zip(self, sha256_hex: str, data: bytes) -> None:
        tmp = self._tmp_path(self._zips)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self._zip_path(sha256_hex))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self._zips)

    @staticmethod
    def _discard(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)

    def _sweep(self) -> None:
        """Remove temp files left by dead processes (crashes mid-put or mid-remove)."""
        for parent in (self._zips, self._unpacked):
            for child in parent.iterdir():
                name = child.name
                if not name.startswith(_TMP_PREFIX):
                    continue
                pid_text = name[len(_TMP_PREFIX) :].split("-", 1)[0]
                if pid_text.isdigit() and _pid_alive(int(pid_text)):
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        child.unlink()
