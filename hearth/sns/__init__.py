"""SNS topics with Lambda and SQS subscriptions (pub/sub fan-out): the query-protocol API
and delivery (``_service``), topics and subscriptions in the main store (``_model``).
Imports point down: sns → invoke (router), queues, esm (filter policies)."""

from hearth.sns._model import SnsStore
from hearth.sns._service import SnsService

__all__ = ["SnsService", "SnsStore"]
