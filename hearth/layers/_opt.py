"""The merged ``/opt`` tree of a function's layers, built once per distinct layer list.

Each layer is extracted by the layer code store (its validated, safe extraction into
``unpacked/<sha256>``); the merged tree is then made of hard links to those files, in
the function's layer order, a later layer replacing whatever an earlier one put at the
same path (a file over a directory or a directory over a file replaces it whole, as
extracting the layers one over the other does on Lambda). Symlinks are copied as links
(the code store has already checked that each one stays inside its layer).

Trees are content-addressed by the ordered list of layer sha256s
(``<root>/<sha256 of the list>``), built in a temporary directory and renamed into
place, so concurrent cold starts of the same list race harmlessly and a tree, once
there, is never modified. The sandbox mounts it read-only at ``/opt``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path


def tree_key(shas: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()


def _remove(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _merge(src: str, dst: str) -> None:
    """Overlay the tree ``src`` onto the existing directory ``dst`` with hard links."""
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        existing = os.path.lexists(target)
        if entry.is_dir(follow_symlinks=False):
            if existing and not (os.path.isdir(target) and not os.path.islink(target)):
                _remove(target)
                existing = False
            if not existing:
                os.mkdir(target, 0o755)
            _merge(entry.path, target)
            continue
        if existing:
            _remove(target)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        else:
            os.link(entry.path, target)


class OptTrees:
    """Builds and caches merged /opt trees under ``root``."""

    def __init__(self, root: str | os.PathLike[str], unpacked: Callable[[str], str]) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._unpacked = unpacked
        for leftover in self._root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def tree(self, shas: Sequence[str]) -> str:
        """Path of the merged tree for the layers ``shas`` (in order), building it if needed.

        Blocking (disk work): call it from an executor.
        """
        final = self._root / tree_key(shas)
        if final.is_dir():
            return str(final)
        tmp = self._root / f".tmp-{os.getpid()}-{secrets.token_hex(8)}"
        os.mkdir(tmp, 0o700)
        try:
            for sha in shas:
                _merge(self._unpacked(sha), str(tmp))
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)
        return str(final)


def tree_size(path: str) -> int:
    """Bytes of regular files (and link targets) under ``path``, as extraction counted them."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode):
                total += len(os.fsencode(os.readlink(os.path.join(dirpath, name))))
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
