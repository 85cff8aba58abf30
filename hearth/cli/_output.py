"""Human output helpers for the client commands: tables, times, durations."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def error(message: str) -> None:
    """``error: <message>`` on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()
) -> str:
    """A plain text table; columns listed in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def parse_since(value: str, now: float | None = None) -> int:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``, ``1w``;
    a bare number is seconds) or an ISO 8601 time (naive means UTC). Returns epoch ms."""
    now = time.time() if now is None else now
    m = _DURATION.match(value)
    if m:
        return int((now - float(m.group(1)) * _UNITS[m.group(2)]) * 1000)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid --since {value!r}: use a duration like 30s, 10m, 2h, 1d or an ISO time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """``2024-05-01T12:34:56.789Z``."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def short_time(lambda_time: str) -> str:
    """Lambda's ``LastModified`` (``2024-05-01T12:34:56.789+0000``) as
    ``2024-05-01 12:34:56`` UTC; anything unparsable is shown as it came."""
    try:
        dt = datetime.strptime(lambda_time, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return lambda_time
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def short_stream(stream: str) -> str:
    """Lambda log stream ``2024/05/01/[$LATEST]0123abcd…`` → ``0123abcd`` (8 hex)."""
    tail = stream.rsplit("]", 1)[-1]
    return tail[:8] if tail else stream


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns
