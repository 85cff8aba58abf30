"""API Gateway's errors (apigatewayv2 and the v1 subset): REST-JSON with ``{"message"}``.

botocore reads the error code from the ``x-amzn-ErrorType`` header and the message from
the body's ``message`` member, for both API Gateway models.
"""

from __future__ import annotations

import json
import uuid

from hearth.api.types import Response
from hearth.errors import AwsError


class BadRequest(AwsError):
    code = "BadRequestException"
    status = 400


class NotFound(AwsError):
    code = "NotFoundException"
    status = 404

    def __init__(self, message: str, resource_type: str = "") -> None:
        super().__init__(message, extra={"resourceType": resource_type} if resource_type else {})


class Conflict(AwsError):
    code = "ConflictException"
    status = 409


#: Lambda-flavoured input errors the shared helpers raise (a body that is not JSON...);
#: API Gateway reports every bad input as a ``BadRequestException``.
_LAMBDA_INPUT_ERRORS = frozenset(
    {"InvalidRequestContentException", "ValidationException", "InvalidParameterValueException"}
)


def apigw_error(err: AwsError) -> Response:
    code = "BadRequestException" if err.code in _LAMBDA_INPUT_ERRORS else err.code
    doc: dict[str, object] = {"message": err.message}
    doc.update(err.extra)
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amzn-ErrorType", code),
    ]
    headers.extend(err.headers.items())
    return Response(err.status, headers, json.dumps(doc).encode())
