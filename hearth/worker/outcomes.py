"""How an invocation ended, as the environment settles it: the runtime's answer or error,
or a failure of the environment itself, in the payloads Lambda gives them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hearth.sandbox.base import ExitInfo
from hearth.worker.invocation import error_payload


@dataclass(slots=True)
class Outcome:
    payload: bytes
    error_type: str | None = None
    platform_message: str | None = None
    """A plain-text init error (the launcher's): shown as ``RequestId: <id> Error: ...``."""


#: Restore failures of SnapStart environments: errors of the Invoke call itself (botocore
#: models them as SnapStartException 400 and SnapStartTimeoutException 408).
RESTORE_FAILURES = {
    "SnapStartException": (
        400,
        "The afterRestore() runtime hook encountered an error. For more information, check"
        " the Amazon CloudWatch logs.",
    ),
    "SnapStartTimeoutException": (
        408,
        "Lambda couldn't restore the snapshot within the timeout limit.",
    ),
}


def exit_outcome(info: ExitInfo, request_id: str, init_error: Outcome | None) -> Outcome:
    """The outcome of an invocation whose runtime exited (or was killed) before answering:
    Init's error if Init failed, else an out-of-memory kill or the exit, as Lambda words
    them."""
    rid = request_id
    if init_error is not None:
        if init_error.platform_message is not None and init_error.error_type:
            msg = f"RequestId: {rid} Error: {init_error.platform_message}"
            return Outcome(error_payload(init_error.error_type, msg), init_error.error_type)
        return init_error
    if info.oom_killed:
        return Outcome(
            error_payload(
                "Runtime.OutOfMemory",
                f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
            ),
            "Runtime.OutOfMemory",
        )
    if info.signal is not None:
        how = f"with error: signal: {signal_name(info.signal)}"
    elif info.returncode == 0:  # as Lambda: a clean exit carries no error to report
        how = "without providing a reason"
    else:
        how = f"with error: exit status {info.returncode}"
    return Outcome(
        error_payload("Runtime.ExitError", f"RequestId: {rid} Error: Runtime exited {how}"),
        "Runtime.ExitError",
    )


def runtime_error(error_type: str, body: bytes) -> bytes:
    """The payload of an error the runtime posted: its JSON document as it is, else the
    text wrapped in Lambda's error document."""
    if is_json_object(body):
        return body
    return error_payload(error_type, body.decode("utf-8", "replace"))


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def signal_name(sig: int) -> str:
    names = {9: "killed", 15: "terminated", 11: "segmentation fault", 6: "aborted"}
    return names.get(sig, f"signal {sig}")
