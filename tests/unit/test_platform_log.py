from __future__ import annotations

import json

from hearth.worker.platform_log import PlatformLog, Report


def test_text_lines_are_lambdas() -> None:
    """Each line ends as Lambda's log event does: a newline, REPORT's after a last tab."""
    log = PlatformLog()
    assert log.start("r1", "$LATEST") == "START RequestId: r1 Version: $LATEST\n"
    assert log.end("r1", None) == "END RequestId: r1\n"
    line = log.report(Report("r1", 1.234, 2, 128, 40, init_ms=101.5))
    assert line == (
        "REPORT RequestId: r1\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB"
        "\tMax Memory Used: 40 MB\tInit Duration: 101.50 ms\t\n"
    )
    restored = log.report(Report("r1", 1.0, 1, 128, 40, init_ms=20.2, restore=True))
    assert restored is not None
    assert restored.endswith("\tRestore Duration: 20.20 ms\tBilled Restore Duration: 21 ms\t\n")
    timed_out = log.report(Report("r1", 3000, 3000, 128, 40, error_type="Sandbox.Timedout"))
    assert timed_out is not None and timed_out.endswith("\tStatus: timeout\t\n")
    crashed = log.report(Report("r1", 3, 3, 128, 40, error_type="Runtime.ExitError"))
    assert crashed is not None and crashed.endswith(
        "\tStatus: error\tError Type: Runtime.ExitError\t\n"
    )
    arn = "arn:aws:lambda:us-east-1::runtime:" + "ab" * 32
    assert log.init_start("python:3.13.v1", arn) == (
        f"INIT_START Runtime Version: python:3.13.v1\tRuntime Version ARN: {arn}\n"
    )
    restore = log.init_start("python:3.13.v1", arn, restore=True)
    assert restore is not None and restore.startswith("RESTORE_START Runtime Version: ")


def test_init_start_json_record() -> None:
    log = PlatformLog("JSON", "INFO")
    doc = json.loads(log.init_start("python:3.12.v1", "arn:x", phase="init") or "")
    assert doc["type"] == "platform.initStart"
    assert doc["record"] == {
        "runtimeVersion": "python:3.12.v1",
        "runtimeVersionArn": "arn:x",
        "phase": "init",
    }
    assert PlatformLog("JSON", "WARN").init_start("python:3.12.v1", "arn:x") is None


def test_json_records() -> None:
    log = PlatformLog("JSON", "INFO")
    start = json.loads(log.start("r1", "7") or "")
    assert start["type"] == "platform.start" and start["record"] == {
        "requestId": "r1",
        "version": "7",
    }
    assert start["time"].endswith("Z")
    done = json.loads(log.end("r1", "Sandbox.Timedout") or "")
    assert done["type"] == "platform.runtimeDone" and done["record"]["status"] == "timeout"
    report = json.loads(log.report(Report("r1", 1.234, 2, 128, 40, init_ms=101.5)) or "")
    assert report["type"] == "platform.report"
    assert report["record"] == {
        "requestId": "r1",
        "metrics": {
            "durationMs": 1.23,
            "billedDurationMs": 2,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 40,
            "initDurationMs": 101.5,
        },
        "status": "success",
    }
    oom = json.loads(
        log.report(Report("r1", 1, 1, 128, 128, error_type="Runtime.OutOfMemory")) or ""
    )
    assert (
        oom["record"]["status"] == "error" and oom["record"]["errorType"] == "Runtime.OutOfMemory"
    )


def test_system_log_level_above_info_drops_platform_records() -> None:
    for level in ("WARN", "ERROR", "FATAL"):
        log = PlatformLog("JSON", level)
        assert log.start("r", "1") is None and log.end("r", None) is None
        assert log.report(Report("r", 1, 1, 128, 1)) is None
    assert PlatformLog("JSON", "DEBUG").start("r", "1") is not None


def test_restore_report_text_and_json() -> None:
    """Lambda's RESTORE_REPORT (runtime-environment page): the duration, and a status when
    the restore failed; the Telemetry API's platform.restoreReport in JSON."""
    log = PlatformLog()
    assert log.restore_report(511.254) == "RESTORE_REPORT Restore Duration: 511.25 ms\n"
    assert log.restore_report(1236.04, "Sandbox.Timedout") == (
        "RESTORE_REPORT Restore Duration: 1236.04 ms\tStatus: timeout\n"
    )
    assert log.restore_report(1236.04, "Runtime.ExitError") == (
        "RESTORE_REPORT Restore Duration: 1236.04 ms\tStatus: error"
        "\tError Type: Runtime.ExitError\n"
    )
    doc = json.loads(PlatformLog("JSON").restore_report(12.345, "Runtime.ExitError") or "")
    assert doc["type"] == "platform.restoreReport"
    assert doc["record"] == {
        "status": "error",
        "metrics": {"durationMs": 12.35},
        "errorType": "Runtime.ExitError",
    }
    ok = json.loads(PlatformLog("JSON").restore_report(1.0) or "")
    assert ok["record"] == {"status": "success", "metrics": {"durationMs": 1.0}}
    assert PlatformLog("JSON", "WARN").restore_report(1.0) is None
