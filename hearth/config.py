"""Server configuration: defaults, overridden by environment, overridden by flags.

Nothing here is read at import time; :func:`load_config` is called with the environment
and the parsed command-line flags.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8910
    data_dir: str = ".hearth"
    region: str = "us-east-1"
    keys_file: str | None = None
    idle_timeout: float = 600.0
    memory_capacity_mb: int = 0
    """0 = host memory minus a reserve for the host itself."""
    disk_capacity_mb: int = 0
    """What the sandboxes' ``/tmp`` images may hold in all (each promises its
    EphemeralStorage); 0 = free space of the data directory's filesystem at start, minus a
    reserve (:func:`default_disk_capacity_mb`)."""
    zygote_idle_timeout: float = 600.0
    """Seconds without a fork after which an account's runtime zygote is let go."""
    max_zygotes: int = 32
    """Zygotes serving at once; past it, the least recently used one is let go."""
    account_concurrency: int = 1000
    min_unreserved_concurrency: int = 100
    """What reserved concurrency must leave unreserved (AWS: 100)."""
    egress: bool = True
    memory_merge: bool = False
    """Let the kernel merge identical pages of Python sandboxes (KSM); off by default:
    merged pages are shared across functions and accounts, a timing side channel
    (see :mod:`hearth.sandbox.merging`)."""
    log_level: str = "INFO"


def _host_memory_mb() -> int:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        return int(pages * size // (1024 * 1024))
    except (ValueError, OSError):
        return 4096


def default_capacity_mb() -> int:
    total = _host_memory_mb()
    reserve = max(1024, total // 8)
    return max(512, total - reserve)


#: Disk kept out of the sandboxes' reach, at least: the stores (SQLite, logs, code packages
#: and their unpacked trees) grow on the same filesystem, and every ``/tmp`` image, empty,
#: still takes ~0.5 MB (its ext4 metadata: ~2 GB at the 3,600 environments of a density run).
DISK_RESERVE_MB = 4096
#: ... or this share of the free space if more (stores grow with the host's use).
DISK_RESERVE_SHARE = 10


def default_disk_capacity_mb(path: str) -> int:
    """Free space of ``path``'s filesystem (to an unprivileged user: the blocks ext4 keeps
    for root stay spare too), minus the larger of :data:`DISK_RESERVE_MB` and a tenth."""
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    free = st.f_bavail * st.f_frsize >> 20
    return max(0, free - max(DISK_RESERVE_MB, free // DISK_RESERVE_SHARE))


def load_config(environ: Mapping[str, str], **flags: object) -> Config:
    def pick(name: str, env: str, cast: type, default: object) -> object:
        if flags.get(name) is not None:
            return flags[name]
        if env in environ and environ[env] != "":
            return cast(environ[env])
        return default

    d = Config()
    egress_env = environ.get("HEARTH_EGRESS", "")
    egress = d.egress if egress_env == "" else egress_env.lower() not in ("0", "false", "off", "no")
    if flags.get("egress") is not None:
        egress = bool(flags["egress"])
    merge_env = environ.get("HEARTH_MEMORY_MERGE", "")
    merge = d.memory_merge if merge_env == "" else merge_env.lower() in ("1", "true", "on", "yes")
    if flags.get("memory_merge") is not None:
        merge = bool(flags["memory_merge"])
    return Config(
        host=str(pick("host", "HEARTH_HOST", str, d.host)),
        port=int(pick("port", "HEARTH_PORT", int, d.port)),  # type: ignore[call-overload]
        data_dir=str(pick("data_dir", "HEARTH_DATA_DIR", str, d.data_dir)),
        region=str(pick("region", "HEARTH_REGION", str, d.region)),
        keys_file=pick("keys_file", "HEARTH_KEYS_FILE", str, None),  # type: ignore[arg-type]
        idle_timeout=float(pick("idle_timeout", "HEARTH_IDLE_TIMEOUT", float, d.idle_timeout)),  # type: ignore[arg-type]
        memory_capacity_mb=int(
            pick("memory_capacity_mb", "HEARTH_MEMORY_CAPACITY_MB", int, 0)  # type: ignore[call-overload]
        )
        or default_capacity_mb(),
        disk_capacity_mb=int(
            pick("disk_capacity_mb", "HEARTH_DISK_CAPACITY_MB", int, d.disk_capacity_mb)  # type: ignore[call-overload]
        ),
        zygote_idle_timeout=float(
            pick("zygote_idle_timeout", "HEARTH_ZYGOTE_IDLE_TIMEOUT", float, d.zygote_idle_timeout)  # type: ignore[arg-type]
        ),
        max_zygotes=int(
            pick("max_zygotes", "HEARTH_MAX_ZYGOTES", int, d.max_zygotes)  # type: ignore[call-overload]
        ),
        account_concurrency=int(
            pick("account_concurrency", "HEARTH_ACCOUNT_CONCURRENCY", int, d.account_concurrency)  # type: ignore[call-overload]
        ),
        min_unreserved_concurrency=int(
            pick("min_unreserved_concurrency", "HEARTH_MIN_UNRESERVED_CONCURRENCY", int, 100)  # type: ignore[call-overload]
        ),
        egress=egress,
        memory_merge=merge,
        log_level=str(pick("log_level", "HEARTH_LOG_LEVEL", str, d.log_level)),
    )


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
