"""Durable asynchronous invocation: the event queue and dispatcher (``_dispatcher``, rows in
``_table``), retries, destinations and dead-letter queues (``_records``), and the event
invoke config API (``_config``, ``_api``).

Imports point down: events → invoke (the router) and events → queues (destinations);
nothing below imports this package. The server puts a :class:`DurableEventQueue` behind
the router's ``events`` seam.
"""

from hearth.events._api import EventInvokeConfigApi
from hearth.events._config import EventInvokeConfig, EventInvokeConfigs
from hearth.events._dispatcher import AsyncSettings, DurableEventQueue
from hearth.events._table import SCHEMA

__all__ = [
    "SCHEMA",
    "AsyncSettings",
    "DurableEventQueue",
    "EventInvokeConfig",
    "EventInvokeConfigApi",
    "EventInvokeConfigs",
]
