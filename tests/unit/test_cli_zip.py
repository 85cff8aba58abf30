"""The deterministic zipper behind ``hearth deploy``."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from hearth.cli._zip import FIXED_DATE_TIME, PackageError, build_package


def _tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "app.py").write_text("def handler(e, c):\n    return e\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.json").write_text('{"a": 1}')
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o750)
    (root / "empty").mkdir()
    return root


def _open(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def _mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def test_same_tree_same_bytes_regardless_of_mtimes_and_creation_order(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a")
    first = build_package(a).data
    for p in a.rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))
    assert build_package(a).data == first

    # The same content created in a different order (different inode/dirent order).
    b = tmp_path / "b"
    b.mkdir()
    (b / "empty").mkdir()
    run = b / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o700)  # any execute bit gives 0755
    (b / "pkg" / "sub").mkdir(parents=True)
    (b / "pkg" / "sub" / "data.json").write_text('{"a": 1}')
    (b / "pkg" / "__init__.py").write_text("")
    (b / "app.py").write_text("def handler(e, c):\n    return e\n")
    second = build_package(b).data
    assert hashlib.sha256(second).digest() == hashlib.sha256(first).digest()


def test_content_change_changes_the_hash(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    before = build_package(root).data
    (root / "app.py").write_text("def handler(e, c):\n    return 1\n")
    assert build_package(root).data != before


def test_entries_sorted_fixed_time_normalized_modes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    (root / "app.py").chmod(0o600)
    pkg = build_package(root)
    with _open(pkg.data) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert names == [
            "app.py",
            "empty/",
            "pkg/",
            "pkg/__init__.py",
            "pkg/sub/",
            "pkg/sub/data.json",
            "run.sh",
        ]
        by_name = {i.filename: i for i in infos}
        for info in infos:
            assert info.date_time == FIXED_DATE_TIME
            assert info.create_system == 3
        assert _mode(by_name["app.py"]) == stat.S_IFREG | 0o644
        assert _mode(by_name["run.sh"]) == stat.S_IFREG | 0o755
        assert _mode(by_name["pkg/"]) == stat.S_IFDIR | 0o755
        assert by_name["app.py"].compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("pkg/sub/data.json") == b'{"a": 1}'
        assert zf.testzip() is None
    assert pkg.files == 4
    assert pkg.unpacked_bytes == sum((root / n).stat().st_size for n in by_name if "." in n)


def test_skips_pycache_git_and_pyc(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "stale.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "pkg" / ".git").write_text("gitdir: ../.git\n")  # a worktree's .git file
    (root / ".gitignore").write_text("*.pyc\n")  # not skipped: only .git itself is
    with _open(build_package(root).data) as zf:
        names = zf.namelist()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n == ".git/" or n.startswith(".git/") or n.endswith("/.git")]
    assert ".gitignore" in names


def test_internal_symlinks_are_kept_as_relative_links(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    (root / "link.py").symlink_to("app.py")
    (root / "pkg" / "up.json").symlink_to("../pkg/sub/data.json")
    (root / "abs.py").symlink_to(root / "pkg" / "__init__.py")  # absolute, inside
    (root / "subdir").symlink_to("pkg/sub")
    with _open(build_package(root).data) as zf:
        by_name = {i.filename: i for i in zf.infolist()}
        for name in ("link.py", "pkg/up.json", "abs.py", "subdir"):
            assert stat.S_ISLNK(_mode(by_name[name])), name
        assert zf.read("link.py") == b"app.py"
        assert zf.read("pkg/up.json") == b"../pkg/sub/data.json"
        assert zf.read("abs.py") == b"pkg/__init__.py"
        assert zf.read("subdir") == b"pkg/sub"
        # A symlinked directory is not walked: its contents appear once, at the target.
        assert "subdir/data.json" not in by_name


@pytest.mark.parametrize(
    "target",
    ["../outside.txt", "{outside}", "pkg/../../outside.txt"],
    ids=["relative", "absolute", "sneaky"],
)
def test_symlink_leaving_the_directory_is_refused(tmp_path: Path, target: str) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = _tree(tmp_path / "t")
    (root / "leak").symlink_to(target.format(outside=outside))
    with pytest.raises(PackageError, match="points outside"):
        build_package(root)


def test_symlink_escaping_through_another_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_text("x")
    root = _tree(tmp_path / "t")
    (root / "hop").symlink_to(tmp_path / "elsewhere")  # itself outside
    with pytest.raises(PackageError, match="points outside"):
        build_package(root)
    (root / "hop").unlink()
    # Reads as inside ("pkg/esc/f") but "pkg/esc" leads outside.
    (root / "pkg" / "esc").symlink_to("../../elsewhere")
    (root / "via").symlink_to("pkg/esc/f")
    with pytest.raises(PackageError, match="points outside"):
        build_package(root)


def test_package_root_may_itself_be_a_symlink(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    (root / "link.py").symlink_to(root / "app.py")
    assert build_package(alias).data == build_package(root).data


def test_special_files_and_non_directories_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    with pytest.raises(PackageError, match="not a directory"):
        build_package(root / "app.py")
    with pytest.raises(PackageError, match="not a directory"):
        build_package(tmp_path / "missing")
    os.mkfifo(root / "pipe")
    with pytest.raises(PackageError, match="pipe is not a regular file"):
        build_package(root)


def test_empty_directory_gives_a_valid_empty_archive(tmp_path: Path) -> None:
    pkg = build_package(tmp_path)
    with _open(pkg.data) as zf:
        assert zf.namelist() == []
    assert pkg.files == 0
