"""SQS-compatible queues: durable storage (``_db``, ``_engine``), rules (``_model``) and the
JSON 1.0 API (``_service``, with queue-policy permissions in ``_permissions`` and
dead-letter redrive tasks in ``_move``; the older query protocol in ``_query``).
Imports point down: service → engine → db; nothing here imports
``invoke`` or ``events`` (they use the engine)."""

from hearth.queues._db import QueueDb
from hearth.queues._engine import SCHEMA, Message, NewMessage, QueueEngine, QueueInfo
from hearth.queues._model import (
    attributes_to_json,
    md5_of_attributes,
    md5_of_body,
    parse_queue_arn,
    queue_arn,
)
from hearth.queues._query import SqsQueryService
from hearth.queues._service import SqsService, system_attributes

__all__ = [
    "SCHEMA",
    "Message",
    "NewMessage",
    "QueueDb",
    "QueueEngine",
    "QueueInfo",
    "SqsQueryService",
    "SqsService",
    "attributes_to_json",
    "md5_of_attributes",
    "md5_of_body",
    "parse_queue_arn",
    "queue_arn",
    "system_attributes",
]
