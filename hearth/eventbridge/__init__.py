"""EventBridge on the default event bus: rules (schedules and event patterns), Lambda
and SQS targets, PutEvents (``_service``); rules kept in the main store (``_rules``);
delivery and the scheduler (``_deliver``); schedule expressions (``_schedule``).
Imports point down: eventbridge → invoke (router), queues, esm (pattern matching)."""

from hearth.eventbridge._deliver import Deliverer, Scheduler
from hearth.eventbridge._rules import RuleStore
from hearth.eventbridge._service import EventBridgeService

__all__ = ["Deliverer", "EventBridgeService", "RuleStore", "Scheduler"]
