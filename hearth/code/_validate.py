"""Validation of an untrusted deployment package, before a byte of it touches disk.

:func:`inspect` turns zip bytes into a list of :class:`Entry` that is safe to extract:
every name is a clean relative path, every symlink stays inside the tree, no entry
shadows another, and the *declared* sizes fit the limits. The declared sizes come from
the attacker, so :mod:`hearth.code._extract` counts the real bytes again while it
writes; this module only rejects early and cheaply what the headers already give away.

Error messages: where AWS Lambda has a message for the condition it is used verbatim
(corrupt archive, unzipped size, request size); conditions AWS does not document get an
``InvalidParameterValueException`` naming the offending entry.

Symlink policy: a symlink entry (``S_IFLNK`` in the high 16 bits of ``external_attr``)
is kept as a symlink when its target is relative and resolves inside the package.
Resolution is done against the archive's own tree, following symlinks the archive
itself creates exactly as the kernel would, so ``d/up -> ..`` with ``esc -> d/up/..``
is caught although ``d/up/..`` is lexically just ``d``. Absolute targets, targets that
climb out with ``..``, loops and entries that would be written *through* a symlink are
rejected. Keeping in-tree links matters for ``node_modules/.bin`` style packages.

Hostile archives also attack the validator's own cost, so every pass here is linear in
the size of the central directory: the records are counted before :mod:`zipfile`
builds objects for them, directories implied by paths count as entries, paths are at
most :data:`MAX_DEPTH` components deep, and symlink resolution shares one step budget.
"""

from __future__ import annotations

import enum
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

from hearth.code._limits import CodeLimits
from hearth.errors import InvalidParameterValue, RequestEntityTooLarge

#: AWS Lambda's message for an archive it cannot read.
UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."

#: What reading a hostile archive from memory can raise: all mean "not a usable zip".
READ_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    OSError,
)

_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_NAME_MAX = 255  # bytes in one path component (Linux NAME_MAX)
_PATH_MAX = 4096  # bytes in a whole path, so the runtime can open it by name
_LINK_MAX = 4095  # bytes in a symlink target (PATH_MAX - 1)
_MAX_LINK_HOPS = 40  # the kernel's MAXSYMLINKS
#: Most components in an entry's path. Real packages stay under ~40; the cap keeps the
#: per-entry work of validation and extraction (one fd per level) small and bounded.
MAX_DEPTH = 128
#: Path components the symlink walk may visit for the whole archive. Ordinary links
#: take a handful each; the cap bounds the work a hostile archive can ask for.
LINK_STEP_BUDGET = 1_000_000


def unzip_failed(detail: str | None = None) -> InvalidParameterValue:
    """AWS's corrupt-archive error; ``detail`` (optional) names what was wrong."""
    message = UNZIP_FAILED if detail is None else f"{UNZIP_FAILED} ({detail})"
    return InvalidParameterValue(message)


def unzipped_too_large(limits: CodeLimits) -> InvalidParameterValue:
    """AWS's message, verbatim, with the configured limit."""
    return InvalidParameterValue(f"Unzipped size must be smaller than {limits.max_unzipped} bytes")


def zipped_too_large(limits: CodeLimits, operation: str | None = None) -> RequestEntityTooLarge:
    """413 ``RequestEntityTooLargeException`` for a zip over ``max_zipped``.

    AWS checks the request body, in which the zip travels base64-encoded, and says
    "Request must be smaller than 69905067 bytes for the CreateFunction operation" (as
    users of CreateFunction and UpdateFunctionCode report it); 69,905,067 is the base64
    length of 50 MB. Without ``operation`` the message stops before it.
    """
    encoded = -(-limits.max_zipped * 4 // 3)
    where = f" for the {operation} operation" if operation else ""
    return RequestEntityTooLarge(f"Request must be smaller than {encoded} bytes{where}")


def bad_entry(name: str, problem: str) -> InvalidParameterValue:
    """A policy violation by one entry; ``name`` is shown with ``repr`` so control
    characters and NULs are visible rather than interpreted."""
    return InvalidParameterValue(f"Invalid deployment package: entry {name!r} {problem}")


def bad_archive(problem: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Invalid deployment package: {problem}")


def bomb_entry(name: str, limits: CodeLimits) -> InvalidParameterValue:
    return bad_entry(
        name, f"expands more than {limits.max_ratio} times its compressed size (zip bomb)"
    )


def bomb_archive(limits: CodeLimits) -> InvalidParameterValue:
    return bad_archive(
        f"the archive expands more than {limits.max_ratio} times its size (zip bomb)"
    )


def too_many_entries(limits: CodeLimits) -> InvalidParameterValue:
    return bad_archive(f"more than {limits.max_entries} entries")


class Kind(enum.Enum):
    DIR = "directory"
    FILE = "file"
    SYMLINK = "symbolic link"


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member that passed validation.

    ``parts`` is the normalized relative path (no empty, ``.`` or ``..`` components),
    ``path`` the same joined with ``/``;
    ``target`` is set for symlinks only; ``executable`` for files only.
    """

    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    path: str
    kind: Kind
    executable: bool = False
    target: str | None = None


# --- central directory pre-scan -------------------------------------------------------

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def count_entries(data: bytes, limits: CodeLimits) -> int:
    """Count central-directory records without building them, stopping past the limit.

    :class:`zipfile.ZipFile` materialises a ``ZipInfo`` for every record, and a 50 MB
    archive can hold a million 46-byte records: hundreds of MB of objects. This walk
    locates the central directory the way :mod:`zipfile` does (last end-of-central-
    directory signature, Zip64 locator if present) and only steps over the records.
    Anything it cannot walk is corrupt; :mod:`zipfile` would refuse it too.
    """
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if eocd < 0 or eocd + _EOCD.size > len(data):
        raise unzip_failed()
    _sig, _disk, _cd_disk, _n_disk, _n_total, cd_size, _cd_off, _clen = _EOCD.unpack_from(
        data, eocd
    )
    loc = eocd - _ZIP64_LOCATOR.size
    if loc >= 0 and data[loc : loc + 4] == b"PK\x06\x07":
        rec = loc - _ZIP64_EOCD.size
        if rec < 0 or data[rec : rec + 4] != b"PK\x06\x06":
            raise unzip_failed()
        cd_size = _ZIP64_EOCD.unpack_from(data, rec)[8]
        cd_end = rec
    else:
        cd_end = eocd
    pos = cd_end - cd_size
    if pos < 0:
        raise unzip_failed()
    count = 0
    while pos < cd_end:
        if pos + 46 > cd_end or data[pos : pos + 4] != b"PK\x01\x02":
            raise unzip_failed()
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
        count += 1
        if count > limits.max_entries:
            raise too_many_entries(limits)
    return count


# --- per-entry checks -----------------------------------------------------------------


def _check_name(info: zipfile.ZipInfo) -> tuple[str, ...] | None:
    """Return the normalized path components, or None for a no-op entry such as ``./``."""
    # zipfile truncates names at NUL; orig_filename keeps what the archive said.
    raw = info.orig_filename
    if "\x00" in raw:
        raise bad_entry(raw, "has a NUL character in its name")
    if "\\" in raw:
        raise bad_entry(raw, "has a backslash in its name")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise bad_entry(raw, "has a control character in its name")
    if raw.startswith("/"):
        raise bad_entry(raw, "is an absolute path")
    pieces = raw.split("/")
    if ".." in pieces:
        raise bad_entry(raw, "has a '..' path component")
    parts = tuple(p for p in pieces if p not in ("", "."))
    if not parts:
        if raw.endswith("/"):
            return None  # "./": the package root itself
        raise bad_entry(raw, "has an empty name")
    if len(raw.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise bad_entry(raw, f"has a path longer than {_PATH_MAX} bytes")
    if len(parts) > MAX_DEPTH:
        raise bad_entry(raw, f"has more than {MAX_DEPTH} path components")
    for p in parts:
        if len(p.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise bad_entry(raw, f"has a path component longer than {_NAME_MAX} bytes")
    return parts


def _classify(info: zipfile.ZipInfo) -> tuple[Kind, bool]:
    """Kind and executable bit from the Unix mode in ``external_attr``'s high 16 bits.

    The mode is honoured whenever it is non-zero, whatever ``create_system`` claims:
    a device or FIFO is refused however it is labelled. A zero mode (DOS/Windows
    tools) falls back to the trailing slash.
    """
    name = info.orig_filename
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    slash = name.endswith("/")
    if fmt == stat.S_IFLNK:
        kind = Kind.SYMLINK
    elif fmt == stat.S_IFDIR or (fmt == 0 and slash):
        kind = Kind.DIR
    elif fmt in (0, stat.S_IFREG):
        kind = Kind.FILE
    else:
        what = {
            stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device",
            stat.S_IFIFO: "a FIFO",
            stat.S_IFSOCK: "a socket",
        }.get(fmt, f"of unknown file type {fmt:#o}")
        raise bad_entry(name, f"is {what}; only files, directories and symlinks are allowed")
    if slash and kind is not Kind.DIR:
        raise bad_entry(name, f"ends with '/' but is marked as a {kind.value}")
    if kind is Kind.DIR and info.file_size != 0:
        raise bad_entry(name, "is a directory but has content")
    return kind, kind is Kind.FILE and bool(mode & 0o111)


def _read_link(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    name = info.orig_filename
    if info.file_size > _LINK_MAX:
        raise bad_entry(name, f"is a symbolic link whose target exceeds {_LINK_MAX} bytes")
    try:
        with zf.open(info) as src:
            raw = src.read(_LINK_MAX + 1)
    except READ_ERRORS:
        raise unzip_failed() from None
    if len(raw) > _LINK_MAX:
        raise bad_entry(name, f"is a symbolic link whose target exceeds {_LINK_MAX} bytes")
    if not raw:
        raise bad_entry(name, "is a symbolic link with an empty target")
    if b"\x00" in raw:
        raise bad_entry(name, "is a symbolic link whose target has a NUL character")
    target = raw.decode("utf-8", "surrogateescape")
    if target.startswith("/"):
        raise bad_entry(name, f"is a symbolic link to an absolute path ({target!r})")
    return target


class _LinkWalker:
    """Resolves symlink targets inside the archive's own tree, within a step budget."""

    def __init__(self, links: dict[str, str]) -> None:
        self.links = links
        self.budget = LINK_STEP_BUDGET

    def problem(self, link: tuple[str, ...], target: str) -> str | None:
        """Why ``link -> target`` is unacceptable, or None.

        ``cur`` always holds a path free of symlinks, so ``..`` pops exactly as the
        kernel would; a component that is itself a symlink of the archive is expanded
        in place. Components that do not exist are walked lexically, which can only be
        stricter.
        """
        outside = f"is a symbolic link that points outside the package ({target!r})"
        cur = list(link[:-1])
        pending = list(reversed(target.split("/")))
        hops = 0
        while pending:
            self.budget -= 1
            if self.budget < 0:
                return (
                    "is a symbolic link past the verification budget "
                    f"({LINK_STEP_BUDGET} path steps for all links of a package)"
                )
            comp = pending.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if not cur:
                    return outside
                cur.pop()
                continue
            cur.append(comp)
            hop = self.links.get("/".join(cur))
            if hop is not None:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return f"is a symbolic link that loops ({target!r})"
                if hop.startswith("/"):
                    return outside
                cur.pop()
                pending.extend(reversed(hop.split("/")))
        return None


def _check_overlap(infos: list[zipfile.ZipInfo], size: int) -> None:
    """Refuse members whose data overlap or run past the end of the upload.

    Overlapping members are how non-recursive zip bombs reuse one compressed stream
    thousands of times. A member occupies at least its 30-byte local header plus its
    compressed data; the real footprint is larger, so valid archives always pass.
    """
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise unzip_failed(f"entry {info.orig_filename!r} overlaps another entry")
        end = info.header_offset + 30 + info.compress_size
    if end > size:
        raise unzip_failed()


def inspect(data: bytes, limits: CodeLimits) -> tuple[zipfile.ZipFile, list[Entry]]:
    """Open ``data`` and validate every entry; return the archive and its entries.

    Raises :class:`InvalidParameterValue` (see module docstring for the messages). The
    caller must still count real bytes while extracting; declared sizes are checked
    here only to refuse obvious bombs without decompressing anything.
    """
    count_entries(data, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except READ_ERRORS:
        raise unzip_failed() from None
    try:
        if len(infos) > limits.max_entries:
            raise too_many_entries(limits)
        _check_overlap(infos, len(data))
        entries = _check_entries(zf, infos, len(data), limits)
    except BaseException:
        zf.close()
        raise
    return zf, entries


def _check_entries(
    zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], size: int, limits: CodeLimits
) -> list[Entry]:
    entries: list[Entry] = []
    kinds: dict[str, Kind] = {}
    for info in infos:
        name = info.orig_filename
        if info.flag_bits & 0x1:
            raise unzip_failed(f"entry {name!r} is encrypted")
        if info.compress_type not in _SUPPORTED_METHODS:
            raise unzip_failed(
                f"entry {name!r} uses compression method {info.compress_type}; "
                "only stored and deflated are supported"
            )
        parts = _check_name(info)
        kind, executable = _classify(info)
        if parts is None:
            continue
        path = "/".join(parts)
        if path in kinds:
            raise bad_entry(name, "is a duplicate")
        kinds[path] = kind
        entries.append(Entry(info, parts, path, kind, executable))

    # Declared sizes: AWS's own size check first, then the bomb heuristics.
    total = sum(e.info.file_size for e in entries)
    if total >= limits.max_unzipped:
        raise unzipped_too_large(limits)
    for e in entries:
        usize = e.info.file_size
        if usize > limits.ratio_floor and usize > e.info.compress_size * limits.max_ratio:
            raise bomb_entry(e.info.orig_filename, limits)
    if total > limits.ratio_floor and total > size * limits.max_ratio:
        raise bomb_archive(limits)

    _check_ancestors(entries, kinds, limits)

    links: dict[str, str] = {}
    for i, e in enumerate(entries):
        if e.kind is Kind.SYMLINK:
            target = _read_link(zf, e.info)
            links[e.path] = target
            entries[i] = Entry(e.info, e.parts, e.path, e.kind, False, target)
    walker = _LinkWalker(links)
    for e in entries:
        if e.target is not None:
            problem = walker.problem(e.parts, e.target)
            if problem is not None:
                raise bad_entry(e.info.orig_filename, problem)
    return entries


def _check_ancestors(entries: list[Entry], kinds: dict[str, Kind], limits: CodeLimits) -> None:
    """Every ancestor of every entry must be a directory, and the whole tree, including
    directories that only exist implicitly, must fit ``max_entries``.

    Nothing may live under a file or a symlink: it would be written through the link,
    or fail. ``verified`` holds directories whose whole ancestry is checked, so each
    directory is visited once and the cost is linear in the size of the tree.
    """
    verified = {""}
    nodes = len(kinds)
    for e in entries:
        path, walked = e.path, []
        while True:
            cut = path.rfind("/")
            path = path[:cut] if cut >= 0 else ""
            if path in verified:
                break
            above = kinds.get(path)
            if above is Kind.FILE or above is Kind.SYMLINK:
                raise bad_entry(e.info.orig_filename, f"is inside {above.value} {path!r}")
            if above is None:
                nodes += 1
                if nodes > limits.max_entries:
                    raise too_many_entries(limits)
            walked.append(path)
        verified.update(walked)
        if e.kind is Kind.DIR:
            verified.add(e.path)
