"""SQS errors as botocore expects them from the JSON 1.0 protocol of a query-compatible service.

The body's ``__type`` names the modeled exception shape (boto3's ``client.exceptions.X``)
and the ``x-amzn-query-error`` header carries the historical query error code (what
``err.response["Error"]["Code"]`` reads) and the fault side.
"""

from __future__ import annotations

from hearth.errors import AwsError


class SqsError(AwsError):
    status = 400
    shape = "InvalidParameterValue"
    fault = "Sender"


def _err(name: str, shape: str, code: str, status: int = 400) -> type[SqsError]:
    return type(name, (SqsError,), {"shape": shape, "code": code, "status": status})


QueueDoesNotExist = _err(
    "QueueDoesNotExist", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"
)
QueueNameExists = _err("QueueNameExists", "QueueNameExists", "QueueAlreadyExists")
QueueDeletedRecently = _err(
    "QueueDeletedRecently",
    "QueueDeletedRecently",
    "AWS.SimpleQueueService.QueueDeletedRecently",
)
InvalidAttributeName = _err("InvalidAttributeName", "InvalidAttributeName", "InvalidAttributeName")
InvalidAttributeValue = _err(
    "InvalidAttributeValue", "InvalidAttributeValue", "InvalidAttributeValue"
)
InvalidParameterValue = _err(
    "InvalidParameterValue", "InvalidParameterValueException", "InvalidParameterValue"
)
MissingParameter = _err("MissingParameter", "MissingParameterException", "MissingParameter")
InvalidMessageContents = _err(
    "InvalidMessageContents", "InvalidMessageContents", "InvalidMessageContents"
)
TooManyEntriesInBatchRequest = _err(
    "TooManyEntriesInBatchRequest",
    "TooManyEntriesInBatchRequest",
    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
)
EmptyBatchRequest = _err(
    "EmptyBatchRequest", "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest"
)
BatchEntryIdsNotDistinct = _err(
    "BatchEntryIdsNotDistinct",
    "BatchEntryIdsNotDistinct",
    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
)
InvalidBatchEntryId = _err(
    "InvalidBatchEntryId", "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId"
)
BatchRequestTooLong = _err(
    "BatchRequestTooLong", "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"
)
ReceiptHandleIsInvalid = _err(
    "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid"
)
MessageNotInflight = _err(
    "MessageNotInflight", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"
)
PurgeQueueInProgress = _err(
    "PurgeQueueInProgress", "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress"
)
OverLimit = _err("OverLimit", "OverLimit", "OverLimit", 403)
UnsupportedOperation = _err(
    "UnsupportedOperation", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"
)
InvalidAction = _err("InvalidAction", "InvalidAction", "InvalidAction")
ResourceNotFound = _err(
    "ResourceNotFound", "ResourceNotFoundException", "ResourceNotFoundException", 404
)


def queue_does_not_exist() -> SqsError:
    return QueueDoesNotExist("The specified queue does not exist.")


def invalid_value(name: str, value: object, reason: str) -> SqsError:
    return InvalidParameterValue(f"Value {value} for parameter {name} is invalid. Reason: {reason}")
