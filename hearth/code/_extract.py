"""Extraction of validated entries, counting the real bytes as they are produced.

The entries come from :func:`hearth.code._validate.inspect`, so names are clean and
nothing is nested under a symlink. Extraction still does not rely on that alone:

* every directory is opened relative to its parent's fd with ``O_NOFOLLOW |
  O_DIRECTORY`` and every file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a
  symlink created by an earlier entry is never followed and nothing is overwritten;
* the bytes actually produced by the decompressor are counted, chunk by chunk, against
  the entry's declared size, the unzipped limit and the expansion ratio; extraction
  stops at the first chunk that crosses a limit.

Modes are fixed, never copied from the archive: directories 0755, files 0644, or 0755
when the archive gave the file any execute bit. setuid/setgid/sticky bits are dropped.
Ownership is the extracting process's (root in production).
"""

from __future__ import annotations

import os
import zipfile

from hearth.code._limits import CodeLimits
from hearth.code._validate import (
    READ_ERRORS,
    Entry,
    Kind,
    bomb_archive,
    bomb_entry,
    unzip_failed,
    unzipped_too_large,
)

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _Chain:
    """The open directory fds from the extraction root down to the current directory.

    Entries are extracted in sorted path order, so every subtree is contiguous: each
    directory is created and opened exactly once, and at most one fd per path level
    (bounded by ``MAX_DEPTH``) is open at any time, whatever order the archive lists.
    """

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._names: tuple[str, ...] = ()
        self._fds: list[int] = []

    def enter(self, parts: tuple[str, ...]) -> int:
        """The fd of directory ``parts``, creating it (0755) and missing parents.

        The fd stays valid until the next call.
        """
        names = self._names
        if names != parts[: len(names)]:
            keep = 0
            for have, want in zip(names, parts, strict=False):
                if have != want:
                    break
                keep += 1
            for fd in self._fds[keep:]:
                os.close(fd)
            del self._fds[keep:]
            names = names[:keep]
        fd = self._fds[-1] if self._fds else self._root
        for name in parts[len(names) :]:
            created = True
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                created = False
            fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            self._fds.append(fd)
            if created:
                os.fchmod(fd, 0o755)  # mkdir's mode is filtered by the umask
        self._names = parts
        return fd

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self._names = ()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Budget:
    """Real bytes produced so far, checked against every limit after each chunk."""

    def __init__(self, limits: CodeLimits, zipped_size: int) -> None:
        self.limits = limits
        self.zipped_size = zipped_size
        self.total = 0

    def charge(self, entry: zipfile.ZipInfo, produced: int, chunk: int) -> None:
        lim = self.limits
        self.total += chunk
        if produced > entry.file_size:
            raise unzip_failed(f"entry {entry.orig_filename!r} is larger than its header says")
        if self.total >= lim.max_unzipped:
            raise unzipped_too_large(lim)
        if produced > lim.ratio_floor and produced > entry.compress_size * lim.max_ratio:
            raise bomb_entry(entry.orig_filename, lim)
        if self.total > lim.ratio_floor and self.total > self.zipped_size * lim.max_ratio:
            raise bomb_archive(lim)


def _write_file(zf: zipfile.ZipFile, entry: Entry, parent: int, budget: _Budget) -> None:
    info = entry.info
    fd = os.open(entry.parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
    try:
        produced = 0
        try:
            src = zf.open(info)
        except READ_ERRORS:
            raise unzip_failed() from None
        with src:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except READ_ERRORS:
                    raise unzip_failed() from None
                if not chunk:
                    break
                produced += len(chunk)
                budget.charge(info, produced, len(chunk))
                _write_all(fd, chunk)
        os.fchmod(fd, 0o755 if entry.executable else 0o644)
    finally:
        os.close(fd)


def extract(
    zf: zipfile.ZipFile, entries: list[Entry], dest: str, limits: CodeLimits, zipped_size: int
) -> int:
    """Write ``entries`` into the existing, empty directory ``dest``; return real bytes.

    Raises :class:`~hearth.errors.InvalidParameterValue` when the archive turns out to
    be corrupt or to exceed a limit while decompressing, and ``OSError`` when the local
    filesystem fails. Either way ``dest`` is left partially written: the caller owns
    it and must discard it.
    """
    root_fd = os.open(dest, _DIR_FLAGS)
    dirs = _Chain(root_fd)
    budget = _Budget(limits, zipped_size)
    try:
        for entry in sorted(entries, key=lambda e: e.parts):
            if entry.kind is Kind.DIR:
                dirs.enter(entry.parts)
                continue
            parent = dirs.enter(entry.parts[:-1])
            if entry.kind is Kind.SYMLINK:
                assert entry.target is not None
                os.symlink(entry.target, entry.parts[-1], dir_fd=parent)
                size = len(os.fsencode(entry.target))
                budget.charge(entry.info, size, size)
            else:
                _write_file(zf, entry, parent, budget)
        return budget.total
    finally:
        dirs.close()
        os.close(root_fd)
