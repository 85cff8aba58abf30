"""Hearth's Python runtime: the process inside each sandbox that speaks the Lambda Runtime API.

Started as ``/var/lang/bin/python3.X -s -B /var/runtime/bootstrap.py`` with cwd ``/var/task``
and Lambda's documented environment. It must stay ONE file, standard library only, and run
unmodified on Python 3.9 to 3.13: no ``match``, no ``X | Y`` evaluated at runtime, no 3.10+
APIs, and nothing imported from the server (``hearth`` is not importable in the sandbox).

Protocol (AWS "Using the Lambda runtime API for custom runtimes", version 2018-06-01):

1. Put ``$LAMBDA_TASK_ROOT``, ``/opt/python/lib/python3.X/site-packages`` and ``/opt/python``
   at the front of ``sys.path``; route the root logger to the framed log channel (or, without
   one, stdout) in Lambda's text (or JSON) format.
2. Import the ``_HANDLER`` module ONCE (the init phase). A failure is logged, POSTed to
   ``/runtime/init/error`` and the process exits with status 1.
3. Loop: ``GET /runtime/invocation/next`` (blocks until the worker has an event), set
   ``_X_AMZN_TRACE_ID``, call ``handler(event, context)``, flush stdout/stderr (the worker
   reads the invocation's log output when the result arrives), then POST the JSON result to
   ``/runtime/invocation/{id}/response`` or an error document to ``.../{id}/error``.
4. ``sys.exit()`` in a handler, a signal or a crash ends the process; the worker reports
   ``Runtime.ExitError``.

Observable behaviour (error types and messages, the context object, the log line format, the
error log record, JSON marshalling) follows awslambdaric, the runtime interface client that
Lambda's managed Python runtimes run, so functions behave the same here as on Lambda.

Why a hand-written HTTP client: measured on the target box (research/hotpath-floor.md),
``http.client`` in the runtime costs ~224 us of CPU per invoke against ~50 us for a lean
raw-socket client, and halves warm throughput. The client below keeps one HTTP/1.1
connection alive, sets TCP_NODELAY, writes each request in one ``sendall`` and parses only
what the Runtime API sends (Content-Length bodies, plus chunked bodies for robustness).
Re-measured with this file on Python 3.11 against a raw-socket fake API (echo handler,
20k invokes): ~110 us runtime CPU per invoke, against ~430 us for the same loop on
``http.client`` and ~55 us for a bare socket loop with no context, logging or errors.

Log records: when the environment has a framed log channel (its fd number in
``_LAMBDA_TELEMETRY_LOG_FD``, removed from the environment as awslambdaric does), each
``logging`` record, ``context.log()`` message and uncaught-error record is written to it
as one frame (``hearth.observe.frames`` describes the layout), so that the worker makes it
one log event however many lines it has -- a traceback stays one event, as on Lambda. The
records' text is awslambdaric's: an error record is its lines joined by newlines, with no
newline at the end (Lambda's LogResult shows ``...last line of the tracebackEND RequestId``);
a ``logging`` record ends with one, also when its traceback ends it (as on stdout before).
``print`` output goes to stdout as before: one event per line.

Cold start: besides the interpreter, ``logging``, ``json`` and ``socket`` are imported at
start (logging must be configured before user code runs); everything else is imported
lazily. As the main script this file is compiled on every start (~10 ms); a zygote that
pre-loads it pays that once.

The module has no side effects on import: ``main()`` runs only as ``__main__``, so a zygote
can pre-load this file and call ``main()`` in each forked child.
"""

import json
import logging
import os
import socket
import sys
import time

_API_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_NBSP = "\u00a0"  # Lambda indents error-log traceback lines with NO-BREAK SPACE.
_INIT_FAILURE_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function "
    "code. However, in rare cases, a Lambda runtime update can cause unexpected function "
    "behavior. For functions using managed runtimes, runtime updates can be triggered by a "
    "function change, or can be applied automatically. To determine if the runtime has been "
    "updated, check the runtime version in the INIT_START log entry. If this error correlates "
    "with a change in the runtime version, you may be able to mitigate this error by "
    "temporarily rolling back to the previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

# The request id of the invocation in progress; read by the logging filter. "" outside one.
_current_request_id = ""
_current_tenant_id = None

# --------------------------------------------------------------------------- log frames

_FRAME_MAGIC = 0xA55A0000
_FRAME_TIMESTAMPED = 0x2
_FRAME_TEXT = 0x1
# Frame-type level bits (<< 2) of each logging level, as the runtime interface clients set
# them (0: none).
_FRAME_LEVELS = {0: 0, 10: 2, 20: 3, 30: 4, 40: 5, 50: 6}


class _FrameSink:
    """Writes log records to the framed log channel: per record one ``os.write`` of a
    16-byte header (type, length, timestamp in microseconds, big-endian) and the UTF-8
    message. A lock keeps the frames of concurrent threads whole (``logging`` locks only
    per handler)."""

    def __init__(self, fd, text):
        self.fd = fd
        self.text = _FRAME_TEXT if text else 0
        self._new_lock()
        # A child forked while another thread wrote a frame gets a lock of its own (as
        # logging's handlers do), not one held forever.
        os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self):
        import threading  # imported by logging already

        self.lock = threading.Lock()

    def write(self, message, levelno=0):
        data = message.encode("utf-8", "replace")
        level = _FRAME_LEVELS.get(min(50, max(0, levelno)) // 10 * 10, 0)
        kind = _FRAME_MAGIC | level << 2 | _FRAME_TIMESTAMPED | self.text
        head = (
            kind.to_bytes(4, "big")
            + len(data).to_bytes(4, "big")
            + (time.time_ns() // 1000).to_bytes(8, "big")
        )
        view = memoryview(head + data)
        with self.lock:
            while view:
                view = view[os.write(self.fd, view) :]


# The framed log channel, if the environment has one (set by main()).
_sink = None


def _open_sink(env, json_format):
    """The framed log channel named by ``_LAMBDA_TELEMETRY_LOG_FD`` (taken out of the
    environment), or None."""
    fd = env.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is None or not fd.isdigit():
        return None
    try:
        os.fstat(int(fd))
    except OSError:
        return None
    return _FrameSink(int(fd), not json_format)


# --------------------------------------------------------------------------- errors


class FaultException(Exception):
    """A runtime-level fault with a Lambda error type (``Runtime.*``), as awslambdaric has."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


class RuntimeAPIError(Exception):
    """The Runtime API could not be reached or answered with an unexpected status."""


# --------------------------------------------------------------------------- HTTP client


class _ConnectionLost(Exception):
    """The peer closed the connection before a complete response arrived."""

    def __init__(self, partial):
        Exception.__init__(self, "connection closed by the Runtime API")
        self.partial = partial  # True once any byte of the response had been received.


class RuntimeClient:
    """A minimal keep-alive HTTP/1.1 client for the Lambda Runtime API.

    Contract: one request at a time (the runtime is single-threaded); no socket timeout,
    because ``/next`` legitimately blocks until the next event, which can take hours; a
    request on a reused connection that fails before any response byte arrived (the server
    closed the idle keep-alive connection) is retried once on a fresh connection.
    Responses are ``(status, headers, body)`` with lower-cased header names, header values
    decoded as latin-1 (the HTTP default) and ``body`` as bytes-like.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeAPIError(f"bad AWS_LAMBDA_RUNTIME_API {address!r}: expected host:port")
        self._addr = (host.strip("[]"), int(port))
        self._sock = None
        self._buf = bytearray()
        self._next_sent = False
        py = ".".join(str(n) for n in sys.version_info[:3])
        self._common = (f"Host: {address}\r\nUser-Agent: hearth-python/{py}\r\n").encode()
        self._next_head = (
            (f"GET {_API_PREFIX}/invocation/next HTTP/1.1\r\n").encode() + self._common + b"\r\n"
        )

    # -- public API

    def next_invocation(self):
        """Block until the worker hands out the next event; return (headers, body)."""
        if self._next_sent:  # pipelined behind the last result (see post)
            self._next_sent = False
            status, headers, body = self._request(self._next_head, b"", sent=True)
        else:
            status, headers, body = self._request(self._next_head, b"")
        if status != 200:
            raise RuntimeAPIError(f"GET /invocation/next answered {status}: {bytes(body)[:200]!r}")
        return headers, body

    def post_response(self, request_id, body, content_type="application/json"):
        return self.post(
            f"/invocation/{request_id}/response",
            body,
            f"Content-Type: {content_type}\r\n",
            then_next=True,
        )

    def post_error(self, request_id, error_document, error_type):
        return self.post(
            f"/invocation/{request_id}/error",
            error_document,
            f"Content-Type: application/json\r\n{_ERROR_TYPE_HEADER}: {error_type}\r\n",
            then_next=True,
        )

    def post_init_error(self, error_document, error_type):
        return self._post_error("/init/error", error_document, error_type)

    def post_restore_error(self, error_document, error_type):
        return self._post_error("/restore/error", error_document, error_type)

    def _post_error(self, path, error_document, error_type):
        return self.post(
            path,
            error_document,
            f"Content-Type: application/json\r\n{_ERROR_TYPE_HEADER}: {error_type}\r\n",
        )

    def post(self, path, body, extra_headers="", then_next=False):
        """POST ``body`` (bytes) to ``_API_PREFIX + path``; return the status code.

        With ``then_next``, ``GET /invocation/next`` is pipelined behind the POST, in the
        same write; :meth:`next_invocation` then only reads its answer. Hearth's Runtime
        API sends the POST's 202 together with the next event, so one write less per
        invoke on each side and the runtime is not woken for the 202 alone. If the server
        closes the connection after the POST's answer, the pipelined GET is simply sent
        again on a new connection.
        """
        head = (
            (f"POST {_API_PREFIX}{path} HTTP/1.1\r\n").encode("latin-1")
            + self._common
            + (f"{extra_headers}Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        )
        status = self._request(head, body, then=self._next_head if then_next else b"")[0]
        self._next_sent = then_next and self._sock is not None
        return status

    def close(self):
        self._next_sent = False
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = bytearray()

    # -- transport

    def _connect(self):
        sock = socket.create_connection(self._addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buf = bytearray()

    def _request(self, head, body, then=b"", sent=False):
        """One request and its response; ``then`` is a request pipelined behind it (its
        response is left unread); ``sent``: the request went out already (pipelined)."""
        reused = self._sock is not None
        if not reused:
            self._connect()
            sent = False
        try:
            return self._exchange(head, body, then, sent)
        except (_ConnectionLost, ConnectionError) as exc:
            self.close()
            if not reused or getattr(exc, "partial", False):
                raise RuntimeAPIError(f"Runtime API connection failed: {exc}") from exc
        self._connect()
        try:
            return self._exchange(head, body, then, False)
        except (_ConnectionLost, ConnectionError) as exc:
            self.close()
            raise RuntimeAPIError(f"Runtime API connection failed: {exc}") from exc

    def _exchange(self, head, body, then, sent):
        sock = self._sock
        if sent:
            pass
        elif len(body) <= 65536:
            sock.sendall(head + body + then)  # one segment for the common case
        else:
            sock.sendall(head)  # avoid copying a multi-megabyte body just to prepend headers
            sock.sendall(body)
            if then:
                sock.sendall(then)
        return self._read_response()

    def _fill(self, partial):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise _ConnectionLost(partial)
        self._buf += chunk

    def _read_response(self):
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            self._fill(bool(buf))
            buf = self._buf
            end = buf.find(b"\r\n\r\n")
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise RuntimeAPIError(f"malformed status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:  # interim response (never sent by the Runtime API): skip it
            return self._read_response()

        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif status in (204, 304):
            body = b""
        else:  # no framing: the body runs until the server closes the connection
            while True:
                try:
                    self._fill(True)
                except _ConnectionLost:
                    break
            body = bytes(self._buf)
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0"):
            self.close()
        return status, headers, body

    def _read_exact(self, n):
        buf = self._buf
        if len(buf) >= n:
            body = bytes(buf[:n])
            del buf[:n]
            return body
        # Large body: receive straight into a preallocated buffer instead of growing one.
        body = bytearray(n)
        have = len(buf)
        body[:have] = buf
        del buf[:]
        view = memoryview(body)
        recv_into = self._sock.recv_into
        while have < n:
            got = recv_into(view[have:], n - have)
            if not got:
                raise _ConnectionLost(True)
            have += got
        return body

    def _read_line(self):
        buf = self._buf
        end = buf.find(b"\r\n")
        while end < 0:
            self._fill(True)
            buf = self._buf
            end = buf.find(b"\r\n")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _read_chunked(self):
        out = bytearray()
        while True:
            size = int(self._read_line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._read_line():  # trailers, up to the blank line
                    pass
                return out
            out += self._read_exact(size)
            self._read_line()  # CRLF after each chunk


# --------------------------------------------------------------------------- context


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    __slots__ = [
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    ]

    def __repr__(self):
        return "Client([{}])".format(",".join(f"{f}={getattr(self, f)}" for f in self.__slots__))


class ClientContext:
    __slots__ = ["client", "custom", "env"]

    def __repr__(self):
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


def _obj_from_dict(cls, data):
    if data is None:
        return None
    obj = cls()
    get = data.get if isinstance(data, dict) else (lambda _key: None)
    for field in cls.__slots__:
        setattr(obj, field, get(field))
    return obj


_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    """The ``context`` argument, with awslambdaric's attributes and types.

    As on Lambda, ``memory_limit_in_mb`` is the string from AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    ``identity`` is always a CognitoIdentity (its fields None without the header) and
    ``client_context`` is None without the header.
    """

    # Per-environment values, filled once by main() from the environment.
    function_name = None
    function_version = None
    memory_limit_in_mb = None
    log_group_name = None
    log_stream_name = None

    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = {}
        if isinstance(client_context, dict) and "w3c" in client_context:
            raw = client_context.pop("w3c")
            if isinstance(raw, dict):
                for key in _W3C_FIELDS:
                    if isinstance(raw.get(key), str):
                        self._w3c_fields[key] = raw[key]
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        """Milliseconds until the invocation's absolute deadline, never negative."""
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def w3c(self):
        """The W3C trace-context fields carried in the client context, if any."""
        return dict(self._w3c_fields)

    def log(self, msg):
        if _sink is not None:
            _sink.write(str(msg))
        else:
            sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},identity={self.identity},tenant_id={self.tenant_id}])"
        )


def _parse_json_header(value, name):
    try:
        # Header bytes were decoded as latin-1; JSON headers carry UTF-8.
        return json.loads(value.encode("latin-1").decode("utf-8"))
    except Exception as exc:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            f"Unable to parse {name} JSON: {exc}",
        ) from None


# --------------------------------------------------------------------------- marshalling


class _Encoder(json.JSONEncoder):
    """JSON encoder for results. Decimals are written as exact JSON numbers, as
    awslambdaric's simplejson encoder does (boto3 hands DynamoDB numbers out as Decimal);
    ``default`` runs only for types json cannot encode, so plain results pay nothing."""

    def __init__(self, ensure_ascii):
        json.JSONEncoder.__init__(self, ensure_ascii=ensure_ascii)
        self.decimals = None

    def default(self, o):
        decimal = sys.modules.get("decimal")  # a Decimal exists only if decimal was imported
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            if self.decimals is None:
                self.decimals = []
            self.decimals.append(str(o))
            return f"\x00hearth-decimal-{len(self.decimals) - 1}\x00"
        return json.JSONEncoder.default(self, o)

    def encode(self, o):
        self.decimals = None
        text = json.JSONEncoder.encode(self, o)
        if self.decimals:
            for i, literal in enumerate(self.decimals):
                text = text.replace(f'"\\u0000hearth-decimal-{i}\\u0000"', literal, 1)
        return text


def _ensure_ascii():
    """awslambdaric escapes non-ASCII in results up to python3.11, not from python3.12 on.

    Without a recognisable AWS_EXECUTION_ENV it escapes, as awslambdaric does."""
    env = os.environ.get("AWS_EXECUTION_ENV", "")
    prefix = "AWS_Lambda_python3."
    minor = env[len(prefix) :]
    if env.startswith(prefix) and minor.isdigit():
        return int(minor) < 12
    return True


def _marshal(encoder, result):
    """Return (body bytes, content type); bytes results pass through as awslambdaric does."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return encoder.encode(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise FaultException(
            FaultException.MARSHAL_ERROR, f"Unable to marshal response: {exc}"
        ) from None


def _to_json(obj):
    return json.dumps(obj).encode("utf-8")


# --------------------------------------------------------------------------- errors -> documents


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """Traceback frames from the first one outside this file (as awslambdaric trims them)."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame[0]:
            return frames[i:]
    return frames


def _error_from_exception(exc, invoke_id=None):
    import traceback

    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__} object>"
    frames = traceback.format_list(_user_frames(exc.__traceback__))
    return make_error(message, type(exc).__name__, frames, invoke_id)


def _error_from_fault(fault, invoke_id=None):
    return make_error(fault.msg, fault.exception_type, fault.trace, invoke_id)


def _log_error(error, json_format):
    """Write the error record as Lambda formats it: one ERROR frame (without a newline at
    its end, as awslambdaric writes it), or, without a log channel, lines on stderr.

    Text: ``[ERROR] Type: message`` then ``Traceback (most recent call last):`` and the
    frames, leading spaces replaced by NO-BREAK SPACE; JSON: one object.
    """
    if json_format:
        record = {"timestamp": _iso_now(), "level": "ERROR"}
        record.update(error)
        if _sink is not None:
            _sink.write(json.dumps(record), 40)
        else:
            sys.stderr.write(json.dumps(record) + "\n")
        return
    line = "[ERROR]"
    if error.get("errorType"):
        line += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            line += ":"
        line += " " + error["errorMessage"]
    lines = [line]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
                continue
            for trace_line in element.splitlines():
                stripped = trace_line.lstrip(" ")
                lines.append(_NBSP * (len(trace_line) - len(stripped)) + stripped)
    if _sink is not None:
        _sink.write("\n".join(lines), 40)
    else:
        sys.stderr.write("\n".join(lines) + "\n")


def _iso_now():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


# --------------------------------------------------------------------------- logging


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current_request_id
        record.tenant_id = _current_tenant_id
        return True


class _StdoutHandler(logging.Handler):
    """Writes formatted records to whatever ``sys.stdout`` is at the time (like Lambda)."""

    def emit(self, record):
        try:
            text = self.format(record)
            # A record with a traceback ends without a newline (logging appends exc_text
            # after the format's "\n"): end it here, or the next write joins its last line
            # (in LogResult's tail too, where events follow each other as written).
            if not text.endswith("\n"):
                text += "\n"
            if _sink is not None:  # one frame (awslambdaric's handler)
                _sink.write(text, record.levelno)
            else:
                sys.stdout.write(text)
        except Exception:
            self.handleError(record)


_RESERVED_RECORD_FIELDS = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "taskName",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    )
)


class _JsonFormatter(logging.Formatter):
    """AWS_LAMBDA_LOG_FORMAT=JSON: one JSON object per record, as Lambda writes them."""

    def format(self, record):
        import traceback

        level = min(50, max(0, record.levelno)) // 10 * 10
        exc = record.exc_info
        result = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": logging.getLevelName(level),
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED_RECORD_FIELDS and key not in result:
                result[key] = value
        result = {k: v for k, v in result.items() if v is not None}
        return json.dumps(result, ensure_ascii=False, default=str) + "\n"


def _setup_logging(log_format, log_level):
    """Give the root logger Lambda's handler.

    Text format: ``[LEVEL]\\t2024-01-01T00:00:00.000Z\\t<request id>\\t<message>\\n`` in UTC.
    The root level stays WARNING (Python's default, as on Lambda) unless
    AWS_LAMBDA_LOG_LEVEL names a level (TRACE means DEBUG).
    """
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    if log_format == "JSON":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    level = {"TRACE": "DEBUG"}.get(log_level.upper(), log_level.upper())
    root = logging.getLogger()
    if level in ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET"):
        root.setLevel(level)
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)


# --------------------------------------------------------------------------- init


def _setup_sys_path(task_root):
    """Function code first, then layers, then the runtime's own path (Lambda's order)."""
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    front = [task_root, f"/opt/python/lib/{minor}/site-packages", "/opt/python"]
    sys.path[:] = front + [p for p in sys.path if p not in front]


def _get_handler(handler):
    """Import the handler's module and return the function; raise FaultException on failure.

    Accepts ``module.function`` where the module part may use dots or slashes
    (``pkg/sub/mod.fn`` imports ``pkg.sub.mod``). Error types and messages are awslambdaric's.
    Exceptions other than ImportError and SyntaxError propagate and are reported with their
    own class name, as on Lambda.
    """
    import importlib

    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}"
        ) from None
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {modname} as a handler module",
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            f"Unable to import module '{modname}': {exc}",
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{modname}': {exc}",
            trace,
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            f"Handler '{fname}' missing on module '{modname}'",
        ) from None


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would be one more import at every cold start
            stream.flush()
        except Exception:
            pass


def _line_buffered():
    """Flush each log line as it is written (stdout is a pipe, block-buffered by default),
    so output before a timeout kill reaches the worker. Lambda flushes on every write."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - see _flush
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass  # not a TextIOWrapper (replaced stream): leave it alone


# --------------------------------------------------------------------------- main loop


def _invoke(client, handler, encoder, headers, body):
    """Run one invocation and post its outcome. Only BaseExceptions outside Exception escape."""
    global _current_request_id, _current_tenant_id
    get = headers.get
    invoke_id = get("lambda-runtime-aws-request-id", "")
    _current_request_id = invoke_id
    _current_tenant_id = get("lambda-runtime-aws-tenant-id")
    trace_id = get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]

    error = None
    try:
        raw = get("lambda-runtime-client-context")
        client_context = _parse_json_header(raw, "Client Context") if raw else None
        raw = get("lambda-runtime-cognito-identity")
        cognito = _parse_json_header(raw, "Cognito Identity") if raw else None
        deadline = get("lambda-runtime-deadline-ms", "")
        context = LambdaContext(
            invoke_id,
            client_context,
            cognito,
            int(deadline) if deadline.isdigit() else 0,
            get("lambda-runtime-invoked-function-arn"),
            _current_tenant_id,
        )
        content_type = get("content-type")
        if content_type is None or content_type.split(";")[0].strip() == "application/json":
            try:
                event = json.loads(body)
            except Exception as exc:
                raise FaultException(
                    FaultException.UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}"
                ) from None
        else:
            event = bytes(body)
        result = handler(event, context)
        payload, result_type = _marshal(encoder, result)
    except FaultException as fault:
        error = _error_from_fault(fault, invoke_id)
    except Exception as exc:
        error = _error_from_exception(exc, invoke_id)

    if error is None:
        _flush()
        status = client.post_response(invoke_id, payload, result_type)
    else:
        _log_error(error, _JSON_LOGS)
        _flush()
        status = client.post_error(invoke_id, _to_json(error), error["errorType"])
    if status >= 300:
        # E.g. 413 for an oversized response: the worker has already failed the invocation;
        # this environment can still serve the next one.
        sys.stderr.write(
            f"hearth-runtime: Runtime API rejected the result of {invoke_id} with status {status}\n"
        )
        sys.stderr.flush()
    _current_request_id = ""


_JSON_LOGS = False


def _init_failure(exc):
    """Log an Init error as Lambda's runtime does; return its error document."""
    if isinstance(exc, FaultException):
        error = _error_from_fault(exc)
    else:
        error = _error_from_exception(exc)
    logging.warning(_INIT_FAILURE_WARNING)
    _log_error(error, _JSON_LOGS)
    _flush()
    return error


def main():
    """Run the runtime until the process is killed or the handler exits it."""
    global _JSON_LOGS, _sink
    env = os.environ
    task_root = env.get("LAMBDA_TASK_ROOT") or "/var/task"
    _setup_sys_path(task_root)
    _line_buffered()
    _JSON_LOGS = env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    _sink = _open_sink(env, _JSON_LOGS)
    _setup_logging("JSON" if _JSON_LOGS else "TEXT", env.get("AWS_LAMBDA_LOG_LEVEL", ""))
    LambdaContext.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
    LambdaContext.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
    LambdaContext.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    LambdaContext.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
    LambdaContext.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")

    template_fd = env.pop("_HEARTH_TEMPLATE_FD", None)
    if template_fd is not None:  # SnapStart: Init once here, then fork environments
        import hearth_template

        handler = hearth_template.run(
            int(template_fd), lambda: _get_handler(env.get("_HANDLER", "")), _init_failure
        )
        _sink = _open_sink(env, _JSON_LOGS)  # a forked environment's own channel
    try:
        client = RuntimeClient(env.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    except RuntimeAPIError as exc:
        sys.stderr.write(f"hearth-runtime: {exc}\n")
        return 1

    if template_fd is not None:
        failed = hearth_template.after_restore()
        if failed is not None:
            error = _error_from_exception(failed)
            _log_error(error, _JSON_LOGS)
            _flush()
            try:
                client.post_restore_error(_to_json(error), error["errorType"])
            except (RuntimeAPIError, OSError) as post_exc:
                sys.stderr.write(f"hearth-runtime: could not report the error: {post_exc}\n")
            return 1
    else:
        try:
            handler = _get_handler(env.get("_HANDLER", ""))
        except Exception as exc:
            error = _init_failure(exc)
            try:
                client.post_init_error(_to_json(error), error["errorType"])
            except (RuntimeAPIError, OSError) as post_exc:
                sys.stderr.write(f"hearth-runtime: could not report the init error: {post_exc}\n")
            return 1

    encoder = _Encoder(_ensure_ascii())
    try:
        while True:
            headers, body = client.next_invocation()
            _invoke(client, handler, encoder, headers, body)
    except (RuntimeAPIError, OSError) as exc:
        _flush()
        sys.stderr.write(f"hearth-runtime: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
