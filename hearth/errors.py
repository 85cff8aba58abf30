"""The exception tree. Every error that reaches a client is an :class:`AwsError`.

::

    HearthError
    ├── AwsError                       carries an AWS error code, HTTP status and message
    │   ├── ResourceNotFound           404 ResourceNotFoundException
    │   ├── ResourceConflict           409 ResourceConflictException
    │   ├── InvalidParameterValue      400 InvalidParameterValueException
    │   ├── InvalidRequestContent      400 InvalidRequestContentException
    │   ├── RequestTooLarge            413 RequestTooLargeException
    │   │   └── RequestEntityTooLarge  413 RequestEntityTooLargeException
    │   ├── TooManyRequests            429 TooManyRequestsException
    │   ├── ServiceError               500 ServiceException
    │   └── AuthError                  403 (InvalidSignatureException, ...)
    ├── SandboxError                   a sandbox could not be started or controlled
    └── InvalidStateError              a lifecycle transition that is not allowed

Backend errors (OSError, sqlite3.Error, ...) are translated into this tree at the
boundary that sees them; the API layer turns an ``AwsError`` into the wire shape of
the protocol that was spoken (REST-JSON headers or JSON 1.1 ``__type``).
"""

from __future__ import annotations


class HearthError(Exception):
    """Base of every error Hearth raises on purpose."""


class AwsError(HearthError):
    """An error with an AWS wire identity."""

    code: str = "ServiceException"
    status: int = 500
    #: "User" or "Service": the ``Type`` member of Lambda's REST-JSON error bodies.
    kind: str = "User"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        #: extra members of the error body (e.g. ``Reason`` of a throttle)
        self.extra = extra or {}
        #: extra response headers (e.g. ``Retry-After``)
        self.headers = headers or {}


class ResourceNotFound(AwsError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflict(AwsError):
    code = "ResourceConflictException"
    status = 409


class InvalidParameterValue(AwsError):
    code = "InvalidParameterValueException"
    status = 400


class InvalidRequestContent(AwsError):
    code = "InvalidRequestContentException"
    status = 400


class RequestTooLarge(AwsError):
    code = "RequestTooLargeException"
    status = 413


class RequestEntityTooLarge(RequestTooLarge):
    """What AWS's front end answers for a request body past an operation's limit, a code
    outside botocore's model (clients see a plain ClientError): "Request must be smaller
    than 69905067 bytes for the CreateFunction operation" (a ZipFile over 50 MB, as many
    users report it), "<n> byte payload is too large for the Event invocation type (limit
    <m> bytes)" for an asynchronous Invoke. A synchronous Invoke over 6 MB stays
    ``RequestTooLargeException``, the code AWS's Invoke reference and botocore give it
    (so ``lambda.exceptions.RequestTooLargeException`` catches it), with the front end's
    message. Client traces of that message show ``RequestEntityTooLargeException``
    (aws-athena-query-federation#793, streetwarp-web#14); the documented contract wins
    here because SDK users catch the modeled class."""

    code = "RequestEntityTooLargeException"
    status = 413


class TooManyRequests(AwsError):
    code = "TooManyRequestsException"
    status = 429


def throttle(
    reason: str = "ConcurrentInvocationLimitExceeded", message: str = "Rate Exceeded."
) -> TooManyRequests:
    """Lambda's throttle: a 429 with the limit that was hit as its ``Reason`` and a
    ``Retry-After`` header, as AWS answers an invoke over a concurrency limit."""
    return TooManyRequests(
        message, extra={"Reason": reason, "Type": "User"}, headers={"Retry-After": "1"}
    )


class ServiceError(AwsError):
    code = "ServiceException"
    status = 500
    kind = "Service"


class AuthError(AwsError):
    """A request whose signature or credentials are not accepted (403)."""

    code = "InvalidSignatureException"
    status = 403


class SandboxError(HearthError):
    """A sandbox could not be started, controlled or inspected."""


class InvalidStateError(HearthError):
    """A lifecycle transition that the state machine does not allow."""
