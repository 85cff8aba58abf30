"""Client commands of the ``hearth`` CLI: ``deploy``, ``invoke``, ``logs``, ``ls``, ``rm``.

They talk to a Hearth server through its public HTTP API with boto3, exactly like any
AWS client would; nothing here imports server internals.

Connection settings:

* endpoint: ``--endpoint-url``, else ``$HEARTH_ENDPOINT``, else ``http://127.0.0.1:8910``;
* credentials: the standard AWS chain (environment, shared files, ``$AWS_PROFILE``;
  the EC2 metadata lookup is off unless ``AWS_EC2_METADATA_DISABLED`` is set to
  something else), falling back to ``test``/``test`` - the key a server on a loopback
  address accepts when none are configured;
* region: ``$AWS_DEFAULT_REGION``, else ``$AWS_REGION``, else ``us-east-1``.

Exit codes: 0 success; 1 a failure the command reports itself (a function error, a
missing function or log group, a failed deployment); 2 an API or connection error.
Every error is one ``error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.cli._output import (
    error,
    human_size,
    iso_ms,
    parse_since,
    short_stream,
    short_time,
    table,
)
from hearth.cli._zip import PackageError, build_package

DEFAULT_ENDPOINT = "http://127.0.0.1:8910"
DEFAULT_REGION = "us-east-1"
FALLBACK_ACCOUNT = "000000000000"
DEFAULT_ROLE_NAME = "hearth-function"
#: How long ``deploy`` waits for the function to become Active / Successful.
DEFAULT_WAIT_SECONDS = 300.0
#: Invocations may run for up to 15 minutes; the read timeout must outlast them.
INVOKE_READ_TIMEOUT = 960
FOLLOW_INTERVAL = 1.0

_ACCOUNT_IN_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[^:]*:(\d{12}):")

Command = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A failure to report as ``error: <message>`` with exit code ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- connection -------------------------------------------------------------------------


def _endpoint(args: argparse.Namespace) -> str:
    url: str = args.endpoint_url or os.environ.get("HEARTH_ENDPOINT") or DEFAULT_ENDPOINT
    return url.rstrip("/")


def _credentials() -> tuple[str, str, str | None]:
    import boto3

    # Hearth keys never come from instance metadata, and probing for it costs seconds
    # off EC2.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    creds = boto3.Session().get_credentials()
    if creds is None:
        return "test", "test", None
    frozen = creds.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def _client(args: argparse.Namespace, service: str, *, read_timeout: int = 60) -> Any:
    import boto3
    from botocore.config import Config

    key, secret, token = _credentials()
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    config = Config(
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 2},
        user_agent_extra="hearth-cli",
    )
    return boto3.client(
        service,
        endpoint_url=_endpoint(args),
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=config,
    )


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    code: str = response.get("Error", {}).get("Code", "")
    return code


def _error_text(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    err = response.get("Error", {})
    code = (
        err.get("Code") or f"HTTP {response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')}"
    )
    message = err.get("Message") or err.get("message") or ""
    return f"{code}: {message}" if message else str(code)


def _command(fn: Command) -> Command:
    """Turn every expected failure of ``fn`` into one ``error:`` line and an exit code."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        endpoint = _endpoint(args)
        try:
            return fn(args)
        except CliError as exc:
            error(exc.message)
            return exc.status
        except ClientError as exc:
            error(_error_text(exc))
            return 2
        except ConnectTimeoutError:
            error(f"timed out connecting to Hearth at {endpoint}")
            return 2
        except EndpointConnectionError:
            error(f"cannot reach Hearth at {endpoint} (is 'hearth server' running?)")
            return 2
        except ConnectionClosedError:
            error(f"Hearth at {endpoint} closed the connection before answering")
            return 2
        except ReadTimeoutError:
            error(f"timed out waiting for Hearth at {endpoint} to answer")
            return 2
        except BotoCoreError as exc:
            error(str(exc))
            return 2
        except BrokenPipeError:
            # The reader went away (e.g. `hearth logs fn | head`): stop quietly, and keep
            # the interpreter from complaining when it flushes stdout at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
        except KeyboardInterrupt:
            return 130

    return run


# -- deploy -----------------------------------------------------------------------------


def _parse_env(items: list[str] | None) -> dict[str, str] | None:
    if items is None:
        return None
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid --env {item!r}: expected KEY=VALUE", 2)
        env[key] = value
    return env


def _existing(client: Any, name: str) -> tuple[dict[str, Any] | None, str]:
    """The function's configuration (None if it does not exist) and the account id."""
    from botocore.exceptions import ClientError

    try:
        cfg: dict[str, Any] = client.get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        m = _ACCOUNT_IN_ARN.search(_error_text(exc))
        return None, m.group(1) if m else FALLBACK_ACCOUNT
    m = _ACCOUNT_IN_ARN.search(cfg.get("FunctionArn", ""))
    return cfg, m.group(1) if m else FALLBACK_ACCOUNT


def _wait_ready(client: Any, name: str, timeout: float) -> dict[str, Any]:
    """Poll until State is Active and LastUpdateStatus is Successful (bounded)."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    shown: tuple[str, str] | None = None
    while True:
        cfg: dict[str, Any] = client.get_function_configuration(FunctionName=name)
        state = cfg.get("State", "Active")
        update = cfg.get("LastUpdateStatus", "Successful")
        if state == "Failed":
            reason = cfg.get("StateReason") or "no reason given"
            code = cfg.get("StateReasonCode") or "Failed"
            raise CliError(f"function {name} failed to become Active: {code}: {reason}")
        if update == "Failed":
            reason = cfg.get("LastUpdateStatusReason") or "no reason given"
            code = cfg.get("LastUpdateStatusReasonCode") or "Failed"
            raise CliError(f"update of function {name} failed: {code}: {reason}")
        if state == "Active" and update == "Successful":
            return cfg
        if time.monotonic() >= deadline:
            raise CliError(
                f"timed out after {timeout:g}s waiting for {name} to become ready"
                f" (State {state}, LastUpdateStatus {update})"
            )
        if shown != (state, update):
            print(f"  waiting: State {state}, LastUpdateStatus {update} …", flush=True)
            shown = (state, update)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _config_changes(
    cfg: dict[str, Any], args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    """UpdateFunctionConfiguration members whose requested value differs from ``cfg``.

    Runtime and handler are always compared; the optional settings only when given on
    the command line (an omitted option leaves the function's current value alone).
    """
    wanted: dict[str, Any] = {"Runtime": args.runtime, "Handler": args.handler}
    if args.memory is not None:
        wanted["MemorySize"] = args.memory
    if args.timeout is not None:
        wanted["Timeout"] = args.timeout
    if args.role is not None:
        wanted["Role"] = args.role
    if args.description is not None:
        wanted["Description"] = args.description
    changes = {k: v for k, v in wanted.items() if cfg.get(k) != v}
    if env is not None and cfg.get("Environment", {}).get("Variables", {}) != env:
        changes["Environment"] = {"Variables": env}
    return changes


@_command
def deploy(args: argparse.Namespace) -> int:
    name: str = args.name
    env = _parse_env(args.env)
    directory = Path(args.directory)
    print(f"Packaging {directory} …", flush=True)
    try:
        package = build_package(directory)
    except PackageError as exc:
        raise CliError(str(exc), 2) from None
    sha = base64.b64encode(hashlib.sha256(package.data).digest()).decode()
    print(
        f"  {package.files} file{'' if package.files == 1 else 's'},"
        f" {human_size(package.unpacked_bytes)}"
        f" → {human_size(len(package.data))} zip (CodeSha256 {sha})",
        flush=True,
    )
    client = _client(args, "lambda")
    cfg, account = _existing(client, name)
    if cfg is None:
        print(f"Creating function {name} ({args.runtime}, handler {args.handler}) …", flush=True)
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": args.runtime,
            "Handler": args.handler,
            "Role": args.role or f"arn:aws:iam::{account}:role/{DEFAULT_ROLE_NAME}",
            "Code": {"ZipFile": package.data},
        }
        if args.memory is not None:
            params["MemorySize"] = args.memory
        if args.timeout is not None:
            params["Timeout"] = args.timeout
        if args.description is not None:
            params["Description"] = args.description
        if env is not None:
            params["Environment"] = {"Variables": env}
        client.create_function(**params)
    else:
        print(f"Updating function {name} …", flush=True)
        cfg = _wait_ready(client, name, args.wait_timeout)
        if cfg.get("CodeSha256") == sha:
            print("  code unchanged", flush=True)
        else:
            print("  updating code", flush=True)
            client.update_function_code(FunctionName=name, ZipFile=package.data)
            cfg = _wait_ready(client, name, args.wait_timeout)
        changes = _config_changes(cfg, args, env)
        if changes:
            print(f"  updating configuration: {', '.join(sorted(changes))}", flush=True)
            client.update_function_configuration(FunctionName=name, **changes)
        else:
            print("  configuration unchanged", flush=True)
    final = _wait_ready(client, name, args.wait_timeout)
    print(f"Active: {final['FunctionArn']} (CodeSha256 {final['CodeSha256']})", flush=True)
    return 0


# -- invoke -----------------------------------------------------------------------------


def _read_payload(spec: str | None) -> bytes | None:
    if spec is None:
        return None
    path: str | None = None
    if spec.startswith("@"):
        path = spec[1:]
    elif spec.startswith("file://"):
        path = spec[len("file://") :]
    if path is None:
        return spec.encode()
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read payload file {path}: {exc.strerror}", 2) from None


@_command
def invoke(args: argparse.Namespace) -> int:
    payload = _read_payload(args.payload)
    client = _client(args, "lambda", read_timeout=INVOKE_READ_TIMEOUT)
    params: dict[str, Any] = {
        "FunctionName": args.name,
        "InvocationType": "Event" if args.event else "RequestResponse",
    }
    if payload is not None:
        params["Payload"] = payload
    if args.qualifier:
        params["Qualifier"] = args.qualifier
    if args.log and not args.event:
        params["LogType"] = "Tail"
    resp = client.invoke(**params)
    if args.event:
        print(f"Accepted ({resp.get('StatusCode', 202)})", flush=True)
        return 0
    body: bytes = resp["Payload"].read()
    if args.log and resp.get("LogResult"):
        tail = base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")
        sys.stderr.write(tail if tail.endswith("\n") else tail + "\n")
        sys.stderr.flush()
    out = sys.stdout.buffer
    out.write(body)
    if not body.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    function_error = resp.get("FunctionError")
    if function_error:
        print(f"function error: {function_error}", file=sys.stderr, flush=True)
        return 1
    return 0


# -- logs -------------------------------------------------------------------------------


def _events(client: Any, group: str, start_ms: int) -> list[dict[str, Any]]:
    """Every event of ``group`` from ``start_ms`` on, all pages, in time order."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    events: list[dict[str, Any]] = []
    while True:
        page = client.filter_log_events(**kwargs)
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    events.sort(key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))
    return events


def _print_event(event: dict[str, Any]) -> None:
    message = str(event.get("message", "")).rstrip("\n")
    stream = short_stream(str(event.get("logStreamName", "")))
    print(f"{iso_ms(int(event.get('timestamp', 0)))} {stream} {message}", flush=True)


def _follow(client: Any, group: str, start_ms: int) -> int:
    from botocore.exceptions import ClientError

    seen: dict[str, int] = {}
    waiting = False
    try:
        while True:
            try:
                events = _events(client, group, start_ms)
            except ClientError as exc:
                if _error_code(exc) != "ResourceNotFoundException":
                    raise
                if not waiting:
                    print(
                        f"waiting for log group {group} to appear … (Ctrl-C to stop)",
                        file=sys.stderr,
                        flush=True,
                    )
                    waiting = True
                events = []
            for event in events:
                event_id = str(event.get("eventId", ""))
                if event_id in seen:
                    continue
                ts = int(event.get("timestamp", 0))
                seen[event_id] = ts
                _print_event(event)
            if seen:
                # Re-read from the newest timestamp (more events may share that
                # millisecond) and forget ids older than it: they cannot come back.
                start_ms = max(start_ms, *seen.values())
                seen = {k: v for k, v in seen.items() if v >= start_ms}
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        return 0


@_command
def logs(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    group = f"/aws/lambda/{args.name}"
    try:
        start_ms = parse_since(args.since)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    client = _client(args, "logs")
    if args.follow:
        return _follow(client, group, start_ms)
    try:
        events = _events(client, group, start_ms)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        raise CliError(
            f"log group {group} does not exist (has {args.name} been invoked yet?)"
        ) from None
    for event in events:
        _print_event(event)
    return 0


# -- ls / rm ----------------------------------------------------------------------------


@_command
def ls(args: argparse.Namespace) -> int:
    client = _client(args, "lambda")
    functions: list[dict[str, Any]] = []
    for page in client.get_paginator("list_functions").paginate():
        functions.extend(page.get("Functions", []))
    if not functions:
        print("No functions.")
        return 0
    rows = [
        [
            str(f.get("FunctionName", "")),
            str(f.get("Runtime", "-")),
            f"{f.get('MemorySize', '-')} MB",
            f"{f.get('Timeout', '-')} s",
            short_time(str(f.get("LastModified", ""))),
        ]
        for f in sorted(functions, key=lambda f: str(f.get("FunctionName", "")))
    ]
    print(
        table(["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED (UTC)"], rows, right=(2, 3))
    )
    return 0


@_command
def rm(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    client = _client(args, "lambda")
    try:
        client.delete_function(FunctionName=args.name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        raise CliError(f"no function named {args.name!r} (ResourceNotFoundException)") from None
    print(f"Deleted {args.name}")
    return 0


# -- argparse ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_client_commands(sub: Any) -> None:
    """Register ``deploy``, ``invoke``, ``logs``, ``ls`` and ``rm`` on ``sub`` (the
    ``add_subparsers()`` object of the ``hearth`` parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=f"Hearth API endpoint (default $HEARTH_ENDPOINT or {DEFAULT_ENDPOINT})",
    )

    p = sub.add_parser(
        "deploy",
        parents=[common],
        help="package a directory and create or update a function",
        description=(
            "Zip DIR deterministically and create the function, or update its code and"
            " configuration if it exists; then wait until it is Active. On update, options"
            " that are not given keep the function's current values."
        ),
    )
    p.add_argument("directory", metavar="DIR", help="directory holding the function code")
    p.add_argument("--name", required=True, help="function name")
    p.add_argument("--runtime", required=True, help="runtime, e.g. python3.12")
    p.add_argument("--handler", required=True, help="handler, e.g. app.handler")
    p.add_argument("--memory", type=_positive_int, metavar="MB", help="memory size in MB")
    p.add_argument("--timeout", type=_positive_int, metavar="S", help="timeout in seconds")
    p.add_argument(
        "--env",
        action="append",
        metavar="K=V",
        help="environment variable; repeat for more (--env A=1 --env B=2). When given,"
        " the function's variables are replaced by exactly these",
    )
    p.add_argument(
        "--role", metavar="ARN", help="execution role (default .../role/hearth-function)"
    )
    p.add_argument("--description", metavar="D", help="function description")
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help=f"how long to wait for the function to be ready (default {DEFAULT_WAIT_SECONDS:g})",
    )
    p.set_defaults(func=deploy)

    p = sub.add_parser("invoke", parents=[common], help="invoke a function")
    p.add_argument("name", metavar="NAME", help="function name or ARN")
    p.add_argument("--payload", metavar="JSON|@FILE", help="event JSON, or @file (@- for stdin)")
    p.add_argument("--log", action="store_true", help="print the log tail to stderr")
    p.add_argument("--qualifier", metavar="Q", help="version or alias")
    p.add_argument(
        "--event", action="store_true", help="invoke asynchronously (InvocationType Event)"
    )
    p.set_defaults(func=invoke)

    p = sub.add_parser("logs", parents=[common], help="print a function's logs")
    p.add_argument("name", metavar="NAME", help="function name")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument(
        "--since",
        default="10m",
        help="start time: a duration back from now (30s, 10m, 2h, 1d) or an ISO time (default 10m)",
    )
    p.set_defaults(func=logs)

    p = sub.add_parser("ls", parents=[common], help="list functions")
    p.set_defaults(func=ls)

    p = sub.add_parser("rm", parents=[common], help="delete a function")
    p.add_argument("name", metavar="NAME", help="function name or ARN")
    p.set_defaults(func=rm)
