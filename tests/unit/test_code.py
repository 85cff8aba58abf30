"""hearth.code: validation of hostile zips, the content-addressed store, the unpack cache."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import struct
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from hearth.code import UNZIP_FAILED, CodeLimits, CodeRef, CodeStore
from hearth.code._extract import extract
from hearth.code._validate import inspect
from hearth.errors import (
    InvalidParameterValue,
    RequestTooLarge,
    ResourceNotFound,
)

MiB = 1 << 20


# --- archive builders -----------------------------------------------------------------


def make_zip(*members: tuple[str, bytes] | tuple[str, bytes, int]) -> bytes:
    """A real zip; a third tuple item is the full Unix mode (type bits included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            name, data = member[0], member[1]
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            if len(member) == 3:
                info.external_attr = member[2] << 16
            elif name.endswith("/"):
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def link(name: str, target: str) -> tuple[str, bytes, int]:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


@dataclass
class Raw:
    """One hand-made member: every header field is whatever the test says."""

    name: bytes
    payload: bytes  # the bytes stored (already compressed for method 8)
    crc: int
    usize: int
    method: int = 8
    flags: int = 0
    mode: int = stat.S_IFREG | 0o644
    offset: int | None = None  # force the central directory's local-header offset


def raw_zip(*members: Raw) -> bytes:
    out = bytearray()
    cd = bytearray()
    for m in members:
        offset = len(out)
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, m.flags, m.method, 0, 33,
            m.crc, len(m.payload), m.usize, len(m.name), 0,
        )  # fmt: skip
        out += m.name + m.payload
        cd += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, m.flags, m.method, 0, 33,
            m.crc, len(m.payload), m.usize, len(m.name), 0, 0, 0, 0, m.mode << 16,
            offset if m.offset is None else m.offset,
        )  # fmt: skip
        cd += m.name
    n = len(members) & 0xFFFF  # zipfile ignores the count; only the walk matters
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(cd), len(out), 0)
    return bytes(out + cd + eocd)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zeros_stream(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zeros, built without compressing them all:
    one fully flushed (self-contained) block repeated, then an empty final block."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * mib + c.flush()


def zeros_crc(mib: int) -> int:
    crc, chunk = 0, bytes(MiB)
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return crc


def raw_file(name: bytes, data: bytes, **kw: int) -> Raw:
    return Raw(name, deflate(data), zlib.crc32(data), len(data), **kw)


# --- fixtures / helpers ---------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code")


def rejected(store: CodeStore, data: bytes) -> str:
    """Assert ``put`` refuses ``data`` with InvalidParameterValue and leaves no trace."""
    root = Path(store._root)
    before = sorted(root.rglob("*"))
    with pytest.raises(InvalidParameterValue) as exc:
        store.put(data)
    err = exc.value
    assert err.code == "InvalidParameterValueException" and err.status == 400
    assert sorted(root.rglob("*")) == before
    return err.message


ABS = "is a symbolic link to an absolute path"
OUT = "is a symbolic link that points outside the package"


def entry_error(name: str, problem: str) -> str:
    return f"Invalid deployment package: entry {name!r} {problem}"


APP = make_zip(
    ("lambda_function.py", b"def handler(e, c):\n    return 1\n"),
    ("bin/", b""),
    ("bin/tool", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o4775),
    ("pkg/sub/data.txt", b"x" * 5000, stat.S_IFREG | 0o666),
    link("pkg/current", "sub/data.txt"),
    link("bin/data", "../pkg/sub"),
)


# --- happy paths ----------------------------------------------------------------------


def test_put_is_content_addressed_and_idempotent(store: CodeStore) -> None:
    ref = store.put(APP)
    digest = hashlib.sha256(APP).digest()
    assert ref == CodeRef(digest.hex(), base64.b64encode(digest).decode(), len(APP))
    assert store.has(ref.sha256_hex)
    assert store.read(ref.sha256_hex) == APP
    zip_path = Path(store._root) / "zips" / f"{ref.sha256_hex}.zip"
    assert zip_path.read_bytes() == APP
    mtime = zip_path.stat().st_mtime_ns
    assert store.put(APP) == ref  # idempotent: nothing rewritten
    assert zip_path.stat().st_mtime_ns == mtime
    other = store.put(make_zip(("a.py", b"2")))
    assert other.sha256_hex != ref.sha256_hex
    assert sorted(p.name for p in (Path(store._root) / "zips").iterdir()) == sorted(
        [f"{ref.sha256_hex}.zip", f"{other.sha256_hex}.zip"]
    )


def test_unpacked_tree_contents_and_modes(store: CodeStore) -> None:
    ref = store.put(APP)
    tree = Path(store.unpacked(ref.sha256_hex))
    assert tree == Path(store._root) / "unpacked" / ref.sha256_hex
    assert (tree / "lambda_function.py").read_bytes().startswith(b"def handler")
    assert (tree / "pkg/sub/data.txt").read_bytes() == b"x" * 5000
    assert os.readlink(tree / "pkg/current") == "sub/data.txt"
    assert (tree / "pkg/current").read_bytes() == b"x" * 5000
    assert os.readlink(tree / "bin/data") == "../pkg/sub"
    modes = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for n in [*dirnames, *filenames, "."]:
            p = Path(dirpath, n)
            st = p.lstat()
            if not stat.S_ISLNK(st.st_mode):
                modes[str(p.relative_to(tree))] = stat.S_IMODE(st.st_mode)
                assert st.st_uid == os.geteuid()
    assert modes["."] == 0o755
    assert modes["bin"] == 0o755 and modes["pkg/sub"] == 0o755
    assert modes["lambda_function.py"] == 0o644
    assert modes["pkg/sub/data.txt"] == 0o644  # 0666 in the zip: write bits dropped
    assert modes["bin/tool"] == 0o755  # exec kept, setuid dropped
    assert all(m & 0o022 == 0 for m in modes.values())


def test_unpacked_fast_path_and_rebuild(store: CodeStore) -> None:
    ref = store.put(APP)
    tree = store.unpacked(ref.sha256_hex)
    assert store.unpacked(ref.sha256_hex) == tree
    import shutil

    shutil.rmtree(tree)
    assert store.unpacked(ref.sha256_hex) == tree
    assert (Path(tree) / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"


def test_concurrent_unpacked(tmp_path: Path) -> None:
    files = [(f"m{i}/f{j}.py", os.urandom(2000)) for i in range(10) for j in range(6)]
    data = make_zip(*files)
    ref = CodeStore(tmp_path / "c").put(data)
    import shutil

    shutil.rmtree(tmp_path / "c" / "unpacked" / ref.sha256_hex)
    store = CodeStore(tmp_path / "c")
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(store.unpacked(ref.sha256_hex))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    tree = Path(results[0])
    for name, content in files:
        assert (tree / name).read_bytes() == content
    assert [p.name for p in (tmp_path / "c" / "unpacked").iterdir()] == [ref.sha256_hex]


def test_concurrent_put(store: CodeStore) -> None:
    barrier = threading.Barrier(4)
    refs: list[CodeRef] = []

    def worker() -> None:
        barrier.wait()
        refs.append(store.put(APP))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refs) == 4 and len(set(refs)) == 1
    root = Path(store._root)
    assert [p.name for p in (root / "unpacked").iterdir()] == [refs[0].sha256_hex]
    assert [p.name for p in (root / "zips").iterdir()] == [f"{refs[0].sha256_hex}.zip"]


def test_remove_and_missing(store: CodeStore) -> None:
    ref = store.put(APP)
    tree = store.unpacked(ref.sha256_hex)
    store.remove(ref.sha256_hex)
    assert not store.has(ref.sha256_hex)
    assert not os.path.exists(tree)
    store.remove(ref.sha256_hex)  # absent: fine
    with pytest.raises(ResourceNotFound):
        store.read(ref.sha256_hex)
    with pytest.raises(ResourceNotFound):
        store.unpacked(ref.sha256_hex)
    for bad in ("../../etc/passwd", "A" * 64, ref.sha256_hex[:-1], ""):
        assert not store.has(bad)
        with pytest.raises(ResourceNotFound):
            store.read(bad)
        with pytest.raises(ResourceNotFound):
            store.unpacked(bad)


def test_empty_archive_and_zip64(store: CodeStore) -> None:
    ref = store.put(make_zip())
    assert os.listdir(store.unpacked(ref.sha256_hex)) == []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, zf.open("big.txt", "w", force_zip64=True) as f:
        f.write(b"zip64" * 100)
    ref = store.put(buf.getvalue())
    assert (Path(store.unpacked(ref.sha256_hex)) / "big.txt").read_bytes() == b"zip64" * 100


def test_sweep_removes_dead_tmp(tmp_path: Path) -> None:
    root = tmp_path / "c"
    CodeStore(root)
    dead = root / "unpacked" / ".tmp-999999999-aa"
    (dead / "x").mkdir(parents=True)
    (root / "zips" / ".tmp-999999999-bb").write_bytes(b"partial")
    live = root / "unpacked" / f".tmp-{os.getpid()}-cc"
    live.mkdir()
    CodeStore(root)
    assert not dead.exists() and not (root / "zips" / ".tmp-999999999-bb").exists()
    assert live.exists()


# --- sizes ----------------------------------------------------------------------------


def test_zipped_limit_is_413(store: CodeStore) -> None:
    with pytest.raises(RequestTooLarge) as exc:
        store.put(bytes(52_428_801))
    assert exc.value.code == "RequestEntityTooLargeException" and exc.value.status == 413
    assert exc.value.message == "Request must be smaller than 69905067 bytes"
    with pytest.raises(RequestTooLarge) as exc:
        store.put(bytes(52_428_801), "CreateFunction")
    assert exc.value.message == (
        "Request must be smaller than 69905067 bytes for the CreateFunction operation"
    )
    small = CodeStore(Path(store._root).parent / "s", CodeLimits(max_zipped=len(APP) - 1))
    with pytest.raises(RequestTooLarge):
        small.put(APP)


def test_unzipped_limit_declared(store: CodeStore) -> None:
    # 300 MB of zeros deflates to ~300 KB; refused from the headers, nothing inflated.
    bomb = raw_zip(Raw(b"zeros.bin", zeros_stream(300), zeros_crc(300), 300 * MiB))
    assert len(bomb) < 1 * MiB
    t0 = time.monotonic()
    assert rejected(store, bomb) == "Unzipped size must be smaller than 262144000 bytes"
    assert time.monotonic() - t0 < 2.0


def test_unzipped_limit_sum_of_entries(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "c", CodeLimits(max_unzipped=10_000))
    data = make_zip(("a", os.urandom(6000)), ("b", os.urandom(4000)))  # == limit: refused
    assert rejected(store, data) == "Unzipped size must be smaller than 10000 bytes"
    store.put(make_zip(("a", os.urandom(6000)), ("b", os.urandom(3999))))


def test_entry_ratio_bomb(store: CodeStore) -> None:
    bomb = raw_zip(
        raw_file(b"ok.txt", b"hello"),
        Raw(b"zeros.bin", zeros_stream(100), zeros_crc(100), 100 * MiB),
    )
    assert rejected(store, bomb) == entry_error(
        "zeros.bin", "expands more than 200 times its compressed size (zip bomb)"
    )


def test_archive_ratio_bomb(store: CodeStore) -> None:
    # Each entry is exactly at the ratio floor (exempt), together they are a bomb.
    one = Raw(b"", zeros_stream(1), zeros_crc(1), MiB)
    bomb = raw_zip(*(Raw(f"z{i}".encode(), one.payload, one.crc, one.usize) for i in range(200)))
    assert rejected(store, bomb) == (
        "Invalid deployment package: the archive expands more than 200 times its size (zip bomb)"
    )


def test_header_lies_small_size(store: CodeStore) -> None:
    # Declares 1000 bytes, streams 300 MB: at most 1000 bytes are ever produced, and the
    # CRC (of the whole 300 MB) does not match them.
    liar = raw_zip(Raw(b"liar.bin", zeros_stream(300), zeros_crc(300), 1000))
    t0 = time.monotonic()
    assert rejected(store, liar) == UNZIP_FAILED
    assert time.monotonic() - t0 < 2.0  # nowhere near 300 MB inflated
    # With a CRC that matches the first 1000 bytes, only those 1000 bytes exist.
    honest_prefix = raw_zip(Raw(b"liar.bin", zeros_stream(300), zlib.crc32(bytes(1000)), 1000))
    ref = store.put(honest_prefix)
    assert (Path(store.unpacked(ref.sha256_hex)) / "liar.bin").stat().st_size == 1000


def test_real_bytes_counted_and_extraction_stops(tmp_path: Path) -> None:
    # Declared sizes pass the inspection limits; the extraction budget is lower, so the
    # real byte count must trip it mid-entry and stop writing.
    data = make_zip(("a.bin", os.urandom(8 * MiB)), ("b.bin", os.urandom(10)))
    zf, entries = inspect(data, CodeLimits())
    dest = tmp_path / "t"
    dest.mkdir()
    with pytest.raises(InvalidParameterValue) as exc:
        extract(zf, entries, str(dest), CodeLimits(max_unzipped=3 * MiB), len(data))
    assert exc.value.message == f"Unzipped size must be smaller than {3 * MiB} bytes"
    assert (dest / "a.bin").stat().st_size <= 3 * MiB
    assert not (dest / "b.bin").exists()


def test_too_many_entries(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "c", CodeLimits(max_entries=10))
    store.put(make_zip(*((f"f{i}", b"") for i in range(10))))
    data = make_zip(*((f"f{i}", b"") for i in range(11)))
    assert rejected(store, data) == "Invalid deployment package: more than 10 entries"


# --- corrupt archives -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        os.urandom(4096),
        b"PK\x03\x04" + os.urandom(200),
        APP[: len(APP) // 2],
        APP[:-10],
        APP[:-30] + os.urandom(30),
    ],
    ids=["empty", "random", "zip-magic-then-random", "half", "truncated-eocd", "garbled-eocd"],
)
def test_not_a_zip(store: CodeStore, data: bytes) -> None:
    assert rejected(store, data) == UNZIP_FAILED


def test_bad_crc(store: CodeStore) -> None:
    good = raw_file(b"a.py", b"print('hi')\n" * 10)
    assert rejected(store, raw_zip(Raw(good.name, good.payload, good.crc ^ 1, good.usize))) == (
        UNZIP_FAILED
    )


def test_corrupt_deflate_stream(store: CodeStore) -> None:
    good = raw_file(b"a.py", os.urandom(5000))
    broken = bytes([good.payload[0] | 0x06]) + good.payload[1:]  # invalid block type 3
    assert rejected(store, raw_zip(Raw(good.name, broken, good.crc, good.usize))) == (UNZIP_FAILED)


def test_local_and_central_names_differ(store: CodeStore) -> None:
    data = bytearray(raw_zip(raw_file(b"good.py", b"x")))
    data[30:37] = b"evil.py"  # local header name only
    assert rejected(store, bytes(data)) == UNZIP_FAILED


def test_overlapping_entries(store: CodeStore) -> None:
    one = raw_file(b"a", bytes(1000))
    data = raw_zip(one, Raw(b"b", one.payload, one.crc, one.usize, offset=0))
    assert rejected(store, data) == f"{UNZIP_FAILED} (entry 'b' overlaps another entry)"


def test_encrypted_entry(store: CodeStore) -> None:
    data = raw_zip(raw_file(b"secret.py", b"x", flags=0x1))
    assert rejected(store, data) == f"{UNZIP_FAILED} (entry 'secret.py' is encrypted)"


def test_unsupported_method(store: CodeStore) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("a.py", b"x" * 100)
    assert rejected(store, buf.getvalue()) == (
        f"{UNZIP_FAILED} (entry 'a.py' uses compression method 12; "
        "only stored and deflated are supported)"
    )


# --- hostile names and entry types ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", "has a '..' path component"),
        ("a/../../evil.py", "has a '..' path component"),
        ("a/..", "has a '..' path component"),
        ("/etc/x", "is an absolute path"),
        ("//etc/x", "is an absolute path"),
        ("a\\..\\..\\x", "has a backslash in its name"),
        ("C:\\x", "has a backslash in its name"),
        ("a\nb", "has a control character in its name"),
        ("x" * 256, "has a path component longer than 255 bytes"),
        ("a/" * 2100 + "b", "has a path longer than 4096 bytes"),
    ],
)
def test_bad_names(store: CodeStore, name: str, problem: str) -> None:
    assert rejected(store, make_zip((name, b"x"))) == entry_error(name, problem)


def test_nul_in_name(store: CodeStore) -> None:
    data = raw_zip(raw_file(b"ok.py\x00../../x", b"x"))
    assert rejected(store, data) == entry_error(
        "ok.py\x00../../x", "has a NUL character in its name"
    )


@pytest.mark.parametrize(
    ("fmt", "what"),
    [
        (stat.S_IFIFO, "a FIFO"),
        (stat.S_IFCHR, "a character device"),
        (stat.S_IFBLK, "a block device"),
        (stat.S_IFSOCK, "a socket"),
    ],
)
def test_special_files(store: CodeStore, fmt: int, what: str) -> None:
    data = make_zip(("dev", b"", fmt | 0o666))
    assert rejected(store, data) == entry_error(
        "dev", f"is {what}; only files, directories and symlinks are allowed"
    )


@pytest.mark.parametrize(
    ("members", "bad", "problem"),
    [
        ([link("passwd", "/etc/passwd")], "passwd", f"{ABS} ('/etc/passwd')"),
        ([link("a/b/x", "../../../x")], "a/b/x", f"{OUT} ('../../../x')"),
        ([link("x", "../../x")], "x", f"{OUT} ('../../x')"),
        ([link("x", "a/../../x")], "x", f"{OUT} ('a/../../x')"),
        # Lexically "a/../.." is "..", but the kernel resolves a (-> ".") first, then
        # climbs twice from the root: outside. The walk must follow the archive's links.
        ([link("a", "."), link("b", "a/../..")], "b", f"{OUT} ('a/../..')"),
        # Lexically "d/up/.." is "d", inside; really it is the root's parent.
        ([("d/", b""), link("d/up", ".."), link("esc", "d/up/..")], "esc", f"{OUT} ('d/up/..')"),
        ([link("l1", "l2"), link("l2", "l1")], "l1", "is a symbolic link that loops ('l2')"),
        ([link("e", "")], "e", "is a symbolic link with an empty target"),
    ],
)
def test_bad_symlinks(
    store: CodeStore, members: list[tuple[str, bytes, int]], bad: str, problem: str
) -> None:
    assert rejected(store, make_zip(*members)) == entry_error(bad, problem)


def test_good_symlink_chain(store: CodeStore) -> None:
    data = make_zip(
        ("d/real.txt", b"r"), link("d/up", ".."), link("top", "d/up/d/real.txt"), link("dot", ".")
    )
    tree = Path(store.unpacked(store.put(data).sha256_hex))
    assert (tree / "top").read_bytes() == b"r"


def test_symlink_target_nul(store: CodeStore) -> None:
    data = raw_zip(raw_file(b"l", b"ok\x00/etc", mode=stat.S_IFLNK | 0o777))
    assert rejected(store, data) == entry_error(
        "l", "is a symbolic link whose target has a NUL character"
    )


@pytest.mark.parametrize(
    ("members", "bad", "problem"),
    [
        (
            [link("lib", "real"), ("real/", b""), ("lib/x.py", b"x")],
            "lib/x.py",
            "is inside symbolic link 'lib'",
        ),
        (
            [link("lib", "/etc"), ("lib/passwd", b"x")],
            "lib/passwd",
            "is inside symbolic link 'lib'",
        ),
        ([("a", b"f"), ("a/b", b"x")], "a/b", "is inside file 'a'"),
        ([("a.py", b"1"), ("a.py", b"2")], "a.py", "is a duplicate"),
        ([("a/", b""), ("a", b"2")], "a", "is a duplicate"),
        ([("a/", b""), ("./a/", b"")], "./a/", "is a duplicate"),
        ([("x", b"1"), link("x", "y")], "x", "is a duplicate"),
        ([("dir/", b"data")], "dir/", "is a directory but has content"),
        ([("f/", b"", stat.S_IFREG | 0o644)], "f/", "ends with '/' but is marked as a file"),
    ],
)
def test_structural_conflicts(
    store: CodeStore, members: list[tuple[str, bytes, int]], bad: str, problem: str
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        data = make_zip(*members)
    message = rejected(store, data)
    assert message.startswith(entry_error(bad, problem)), message


def test_dos_zip_without_modes(store: CodeStore) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in (("dir/", b""), ("dir/a.txt", b"a")):
            info = zipfile.ZipInfo(name)
            info.create_system = 0
            info.external_attr = 0x10 if name.endswith("/") else 0
            zf.writestr(info, data)
    tree = Path(store.unpacked(store.put(buf.getvalue()).sha256_hex))
    assert stat.S_IMODE((tree / "dir/a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tree / "dir").stat().st_mode) == 0o755


# --- structure limits and archive variants --------------------------------------------


def test_depth_limit(store: CodeStore) -> None:
    ok = "/".join(["d"] * 127) + "/f"
    store.put(make_zip((ok, b"x")))
    deep = "/".join(["d"] * 128) + "/f"
    assert rejected(store, make_zip((deep, b"x"))) == entry_error(
        deep, "has more than 128 path components"
    )


def test_implied_directories_count_as_entries(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "c", CodeLimits(max_entries=5))
    store.put(make_zip(("a/b/c/d/e", b"x")))  # 4 implied dirs + 1 file
    data = make_zip(("a/b/c/d/e/f", b"x"))
    assert rejected(store, data) == "Invalid deployment package: more than 5 entries"


def test_interleaved_deep_entries(store: CodeStore) -> None:
    # Archive order alternates between two deep subtrees; extraction sorts, so each
    # directory is opened once.
    a = "/".join(["a"] * 100)
    b = "/".join(["b"] * 100)
    members = [(f"{(a, b)[i % 2]}/f{i}", b"x") for i in range(400)]
    tree = Path(store.unpacked(store.put(make_zip(*members)).sha256_hex))
    assert (tree / a / "f0").read_bytes() == b"x" and (tree / b / "f399").read_bytes() == b"x"


def test_link_walk_budget(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth.code._validate as v

    monkeypatch.setattr(v, "LINK_STEP_BUDGET", 10)
    data = make_zip(*(link(f"l{i}", "a/b/c") for i in range(5)))
    assert rejected(store, data) == entry_error(
        "l3",  # 3 steps per link: the fourth exceeds 10
        "is a symbolic link past the verification budget "
        "(10 path steps for all links of a package)",
    )


def test_zip64_end_record(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # forces the Zip64 EOCD
    data = make_zip(("a.py", b"a"), ("b.py", b"b"))
    monkeypatch.undo()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    tree = Path(store.unpacked(store.put(data).sha256_hex))
    assert (tree / "b.py").read_bytes() == b"b"
    limited = CodeStore(Path(store._root).parent / "l", CodeLimits(max_entries=1))
    assert rejected(limited, data) == "Invalid deployment package: more than 1 entries"


def test_streamed_zip_with_data_descriptors(store: CodeStore) -> None:
    class Unseekable(io.BytesIO):
        def seek(self, offset: int, whence: int = 0) -> int:
            raise OSError("not seekable")

    out = Unseekable()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", b"exports.handler = async () => 1;\n" * 50)
    data = out.getvalue()
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x08
    tree = Path(store.unpacked(store.put(data).sha256_hex))
    assert (tree / "index.js").read_bytes().startswith(b"exports.handler")


def test_prefixed_archive(store: CodeStore) -> None:
    # Self-extracting style: junk before the first local header is allowed by zip.
    tree = Path(store.unpacked(store.put(b"#!/bin/sh\nexit 0\n" + APP).sha256_hex))
    assert (tree / "bin/tool").exists()
