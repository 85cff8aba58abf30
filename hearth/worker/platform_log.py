"""Platform log records (Lambda's "system logs"): text lines or JSON records.

With ``LoggingConfig.LogFormat`` ``Text`` Lambda writes ``START`` / ``END`` / ``REPORT``
lines; with ``JSON`` it writes one JSON object per event instead, shaped like the
Telemetry API's platform events (``time``, ``type``, ``record``):

* ``platform.start``: ``{"requestId", "version"}``;
* ``platform.runtimeDone``: ``{"requestId", "status"}`` (``success``, ``error``,
  ``timeout``);
* ``platform.report``: ``{"requestId", "metrics": {"durationMs", "billedDurationMs",
  "memorySizeMB", "maxMemoryUsedMB"[, "initDurationMs" | "restoreDurationMs"]},
  "status"[, "errorType"]}``.

These are INFO-level events: ``SystemLogLevel`` ``WARN`` (or higher) drops them, as on
Lambda. :class:`PlatformLog` formats; the environment decides when each is written.

Text lines end as Lambda's log events do: ``START ... Version: $LATEST\n``,
``END RequestId: ...\n``, ``REPORT ...\tMax Memory Used: 30 MB\t\n`` (each field,
the last included, followed by a tab), ``INIT_START Runtime Version: python:3.13.v14
\tRuntime Version ARN: arn:aws:lambda:<region>::runtime:<hex>\n`` once per execution
environment (``RESTORE_START`` for a SnapStart restore, then, when the restore is over,
``RESTORE_REPORT Restore Duration: 511.25 ms\n``, or with ``\tStatus: timeout`` /
``\tStatus: error\tError Type: ...`` when it failed, as Lambda's runtime-environment
page shows them). A JSON record is one line too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

#: SystemLogLevel values whose threshold lets INFO events through.
_INFO_PASSES = frozenset({"DEBUG", "INFO"})


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Report:
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_mb: int
    init_ms: float | None = None
    restore: bool = False
    """``init_ms`` is a SnapStart restore's duration."""
    error_type: str | None = None
    """``Sandbox.Timedout``, ``Runtime.ExitError``, ``Runtime.OutOfMemory``: a failed run."""


class PlatformLog:
    def __init__(self, log_format: str = "Text", system_level: str = "INFO") -> None:
        self.json = log_format == "JSON"
        self.enabled = not self.json or system_level.upper() in _INFO_PASSES

    def _record(self, kind: str, record: Mapping[str, object]) -> str:
        return json.dumps({"time": iso_now(), "type": kind, "record": record}) + "\n"

    def init_start(
        self, runtime: str, version_arn: str, *, restore: bool = False, **record: str
    ) -> str | None:
        """``INIT_START`` (``RESTORE_START``): the runtime version an environment runs.
        ``record``: the JSON record's other fields (initializationType, functionName...)."""
        if not self.enabled:
            return None
        if self.json:
            kind = "platform.restoreStart" if restore else "platform.initStart"
            doc = {"runtimeVersion": runtime, "runtimeVersionArn": version_arn, **record}
            return self._record(kind, doc)
        word = "RESTORE_START" if restore else "INIT_START"
        return f"{word} Runtime Version: {runtime}\tRuntime Version ARN: {version_arn}\n"

    def restore_report(self, duration_ms: float, error_type: str | None = None) -> str | None:
        """``RESTORE_REPORT``: a SnapStart restore is over (``error_type``: it failed;
        ``Sandbox.Timedout`` for a restore past its time)."""
        if not self.enabled:
            return None
        if self.json:
            if error_type is None:
                status = "success"
            else:
                status = "timeout" if error_type == "Sandbox.Timedout" else "error"
            record: dict[str, object] = {
                "status": status,
                "metrics": {"durationMs": round(duration_ms, 2)},
            }
            if status == "error":
                record["errorType"] = error_type
            return self._record("platform.restoreReport", record)
        suffix = ""
        if error_type == "Sandbox.Timedout":
            suffix = "\tStatus: timeout"
        elif error_type is not None:
            suffix = f"\tStatus: error\tError Type: {error_type}"
        return f"RESTORE_REPORT Restore Duration: {duration_ms:.2f} ms{suffix}\n"

    def start(self, request_id: str, version: str) -> str | None:
        if not self.enabled:
            return None
        if self.json:
            return self._record("platform.start", {"requestId": request_id, "version": version})
        return f"START RequestId: {request_id} Version: {version}\n"

    def end(self, request_id: str, error_type: str | None) -> str | None:
        if not self.enabled:
            return None
        if self.json:
            record = {"requestId": request_id, "status": _status(error_type)}
            return self._record("platform.runtimeDone", record)
        return f"END RequestId: {request_id}\n"

    def report(self, r: Report) -> str | None:
        if not self.enabled:
            return None
        if self.json:
            metrics: dict[str, object] = {
                "durationMs": round(r.duration_ms, 2),
                "billedDurationMs": r.billed_ms,
                "memorySizeMB": r.memory_mb,
                "maxMemoryUsedMB": r.max_memory_mb,
            }
            if r.init_ms is not None:
                key = "restoreDurationMs" if r.restore else "initDurationMs"
                metrics[key] = round(r.init_ms, 2)
            record: dict[str, object] = {
                "requestId": r.request_id,
                "metrics": metrics,
                "status": _status(r.error_type),
            }
            if r.error_type in _FAILURES:
                record["errorType"] = r.error_type
            return self._record("platform.report", record)
        if r.init_ms is None:
            init = ""
        elif r.restore:
            init = (
                f"\tRestore Duration: {r.init_ms:.2f} ms"
                f"\tBilled Restore Duration: {-(-r.init_ms // 1):.0f} ms"
            )
        else:
            init = f"\tInit Duration: {r.init_ms:.2f} ms"
        status = ""
        if r.error_type == "Sandbox.Timedout":
            status = "\tStatus: timeout"
        elif r.error_type in _FAILURES:
            status = "\tStatus: error\tError Type: " + r.error_type
        return (
            f"REPORT RequestId: {r.request_id}\tDuration: {r.duration_ms:.2f} ms"
            f"\tBilled Duration: {r.billed_ms} ms\tMemory Size: {r.memory_mb} MB"
            f"\tMax Memory Used: {r.max_memory_mb} MB{init}{status}\t\n"
        )


_FAILURES = frozenset({"Runtime.ExitError", "Runtime.OutOfMemory"})


def _status(error_type: str | None) -> str:
    if error_type == "Sandbox.Timedout":
        return "timeout"
    if error_type in _FAILURES:
        return "error"
    return "success"
