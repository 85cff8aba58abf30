"""Deterministic deployment packages: the same tree always gives the same bytes.

* entries are sorted by their archive path; directories get entries of their own (so
  empty directories survive) and come before their contents;
* every entry carries the same timestamp (1980-01-01 00:00:00, the zip epoch) and a
  Unix ``external_attr`` with a normalized mode: files 0644, or 0755 when any execute
  bit is set; directories 0755. Owners, other timestamps and extra fields are not
  recorded;
* ``__pycache__`` and ``.git`` (directories or files) and ``*.pyc`` files are skipped;
* a symlink is stored as a symlink when it resolves inside the packaged directory (an
  absolute target is rewritten relative to the link); a symlink that leaves the
  directory, and any special file (fifo, socket, device), is refused with
  :class:`PackageError`.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: The zip format's epoch; every entry gets it so that packaging is reproducible.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
SKIP_NAMES = frozenset({"__pycache__", ".git"})
SKIP_SUFFIXES = (".pyc",)
_UNIX = 3  # ZipInfo.create_system for Unix: makes readers honour external_attr modes


class PackageError(Exception):
    """The directory cannot be packaged (message is meant for humans)."""


@dataclass(frozen=True, slots=True)
class Package:
    data: bytes
    files: int
    unpacked_bytes: int


def _skipped(name: str) -> bool:
    return name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES)


def _info(arcname: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
    info.create_system = _UNIX
    info.external_attr = mode << 16
    return info


def _link_target(root: Path, link: Path, rel: str) -> str:
    """The relative target to store for ``link``, or raise if it leaves ``root``."""
    raw = os.readlink(link)
    parent = link.parent
    # Resolve lexically first (how the link reads), then through the file system (where
    # it really goes, following any further links); both must stay inside root.
    lexical = Path(os.path.normpath(raw if os.path.isabs(raw) else parent / raw))
    real = Path(os.path.realpath(link))
    for where in (lexical, real):
        if where != root and root not in where.parents:
            raise PackageError(
                f"symlink {rel} -> {raw} points outside {root}; refusing to package it"
            )
    if os.path.isabs(raw):
        return os.path.relpath(lexical, parent)
    return raw


def _walk(
    root: Path, directory: Path, prefix: str, out: list[tuple[str, Path, os.stat_result]]
) -> None:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise PackageError(f"cannot read {directory}: {exc.strerror}") from None
    for name in names:
        if _skipped(name):
            continue
        path = directory / name
        rel = prefix + name
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise PackageError(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            out.append((rel + "/", path, st))
            _walk(root, path, rel + "/", out)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            out.append((rel, path, st))
        else:
            raise PackageError(f"{rel} is not a regular file, directory or symlink")


def build_package(directory: str | os.PathLike[str]) -> Package:
    """Zip ``directory`` deterministically (see the module docstring)."""
    root = Path(os.path.realpath(directory))
    if not root.is_dir():
        raise PackageError(f"{directory} is not a directory")
    entries: list[tuple[str, Path, os.stat_result]] = []
    _walk(root, root, "", entries)
    # Sorting the full archive paths (not per directory) keeps "a/b" after "a/" but also
    # orders "a-b" vs "a/" the same way on every machine.
    entries.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    files = 0
    unpacked = 0
    with zipfile.ZipFile(buf, "w") as zf:
        for arcname, path, st in entries:
            if stat.S_ISDIR(st.st_mode):
                zf.writestr(_info(arcname, stat.S_IFDIR | 0o755), b"")
            elif stat.S_ISLNK(st.st_mode):
                target = _link_target(root, path, arcname)
                info = _info(arcname, stat.S_IFLNK | 0o777)
                zf.writestr(info, target.encode(), compress_type=zipfile.ZIP_STORED)
            else:
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise PackageError(f"cannot read {path}: {exc.strerror}") from None
                zf.writestr(
                    _info(arcname, stat.S_IFREG | mode),
                    data,
                    compress_type=zipfile.ZIP_DEFLATED,
                    compresslevel=9,
                )
                files += 1
                unpacked += len(data)
    return Package(buf.getvalue(), files, unpacked)
