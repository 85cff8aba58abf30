"""EventBridge schedule expressions: ``rate(value unit)`` and six-field ``cron(...)``.

``cron(minutes hours day-of-month month day-of-week year)`` as EventBridge reads it (UTC):
``*``, ``?`` (day-of-month or day-of-week, exactly one of them), values, ranges ``a-b``,
lists ``a,b``, steps ``*/n`` / ``a/n``, month names ``JAN`` to ``DEC``, day names
``SUN`` to ``SAT`` (day-of-week 1 to 7 is SUN to SAT) and ``L`` (last day of the month). ``W`` and
``#`` are refused (not implemented). A rate fires every period from the moment the rule
was written, as on EventBridge.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(([^)]*)\)")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
#: how far ahead a cron expression is searched for its next time
_HORIZON_DAYS = 366 * 8


class InvalidSchedule(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rate:
    seconds: int

    def next_after(self, start: datetime, now: datetime) -> datetime:
        """The first firing strictly after ``now`` of a rate started at ``start``."""
        periods = int((now - start).total_seconds() // self.seconds) + 1
        return start + timedelta(seconds=periods * self.seconds)


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: '?'
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday … 7 = Saturday; None: '?'
    years: frozenset[int] | None  # None: any year

    def next_after(self, start: datetime, now: datetime) -> datetime | None:
        t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = t.replace(hour=0, minute=0)
        for _ in range(_HORIZON_DAYS):
            if self._day_ok(day):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        cand = day.replace(hour=h, minute=m)
                        if cand >= t:
                            return cand
            day += timedelta(days=1)
        return None

    def _day_ok(self, d: datetime) -> bool:
        if self.years is not None and d.year not in self.years:
            return False
        if d.month not in self.months:
            return False
        if self.weekdays is not None:
            return (d.isoweekday() % 7) + 1 in self.weekdays
        if self.last_day:
            return d.day == calendar.monthrange(d.year, d.month)[1]
        return self.days is None or d.day in self.days


Schedule = Rate | Cron


def parse(expr: str) -> Schedule:
    """Parse a ScheduleExpression; raise InvalidSchedule when EventBridge would refuse it."""
    m = _RATE.fullmatch(expr.strip())
    if m is not None:
        value, unit = int(m.group(1)), m.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise InvalidSchedule(expr)
        return Rate(value * _UNIT[unit.rstrip("s")])
    m = _CRON.fullmatch(expr.strip())
    if m is None:
        raise InvalidSchedule(expr)
    fields = m.group(1).split()
    if len(fields) != 6:
        raise InvalidSchedule(expr)
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):  # exactly one of the two is '?'
        raise InvalidSchedule(expr)
    return Cron(
        minutes=_field(minute, 0, 59, {}),
        hours=_field(hour, 0, 23, {}),
        days=None if dom in ("?", "L") else _field(dom, 1, 31, {}),
        last_day=dom == "L",
        months=_field(month, 1, 12, _MONTHS),
        weekdays=None if dow == "?" else _field(dow, 1, 7, _DAYS),
        years=None if year in ("*", "?") else _field(year, 1970, 2199, {}),
    )


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _value(step_text, 1, hi, {})
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, y = part.split("-", 1)
            a, b = _value(x, lo, hi, names), _value(y, lo, hi, names)
        else:
            a = _value(part, lo, hi, names)
            b = hi if step != 1 else a
        if a > b:
            raise InvalidSchedule(text)
        out.update(range(a, b + 1, step))
    return frozenset(out)


def _value(text: str, lo: int, hi: int, names: dict[str, int]) -> int:
    key = text.upper()
    if key in names:
        return names[key]
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise InvalidSchedule(text)
    return int(text)


def utcnow() -> datetime:
    return datetime.now(UTC)
