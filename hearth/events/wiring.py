"""Start the queue features in the server: queue database → SQS engine and API → event
invoke configs → async dispatcher (behind ``router.events``) → event source mappings →
EventBridge (rules in the main store, delivery through the dispatcher and the queues) →
SNS topics (the same).

Shutdown runs backwards (pollers, dispatcher, then the database), after the HTTP
listener has stopped and before the worker goes: in-flight invocations are cut short
and their events and messages stay queued for the next start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.esm import EventSourceMappings
from hearth.eventbridge import Deliverer, EventBridgeService, RuleStore, Scheduler
from hearth.events._api import EventInvokeConfigApi
from hearth.events._config import EventInvokeConfigs
from hearth.events._dispatcher import AsyncSettings, DurableEventQueue
from hearth.events._table import SCHEMA as EVENTS_SCHEMA
from hearth.invoke.router import Router
from hearth.queues import SCHEMA as QUEUES_SCHEMA
from hearth.queues import QueueDb, QueueEngine, SqsQueryService, SqsService
from hearth.sns import SnsService, SnsStore
from hearth.store.sqlite import SqliteStore


@dataclass(slots=True)
class QueueFeatures:
    db: QueueDb
    queues: QueueEngine
    events: DurableEventQueue
    configs: EventInvokeConfigs
    mappings: EventSourceMappings

    async def function_deleted(self, account_id: str, name: str) -> None:
        """A deleted function's event invoke configs go with it (as on AWS); its queued
        events are dropped (logged) when they come up, its mappings stay (and fail)."""
        await self.configs.delete(account_id, name)


async def install(
    stack: contextlib.AsyncExitStack,
    data_dir: Path,
    store: SqliteStore,
    router: Router,
    lambda_api: Any,
    app: Any,
    environ: Mapping[str, str],
) -> QueueFeatures:
    db = QueueDb(data_dir / "queues.db")
    await db.open(QUEUES_SCHEMA + EVENTS_SCHEMA)
    stack.push_async_callback(db.aclose)
    queues = QueueEngine(db)
    await queues.open()
    sqs = SqsService(queues)
    stack.push_async_callback(sqs.aclose)
    app.add_service(sqs)
    app.add_service(SqsQueryService(sqs))

    configs = EventInvokeConfigs(store)
    await configs.open()
    EventInvokeConfigApi(configs, router).register(lambda_api.add_route)

    events = DurableEventQueue(
        db, queues, router, configs, AsyncSettings.from_environ(dict(environ))
    )
    await events.open()
    stack.push_async_callback(events.aclose)
    router.events = events

    mappings = EventSourceMappings(store, queues, router)
    await mappings.open()
    mappings.register(lambda_api.add_route)
    stack.push_async_callback(mappings.aclose)

    rules = RuleStore(store)
    await rules.open()
    deliverer = Deliverer(router, queues)
    eventbridge = EventBridgeService(rules, deliverer)
    app.add_service(eventbridge)
    scheduler = Scheduler(rules, deliverer)
    scheduler.start()
    stack.push_async_callback(scheduler.aclose)

    topics = SnsStore(store)
    await topics.open()
    sns = SnsService(topics, router, queues)
    app.add_service(sns)

    async def external(arn: str, record: bytes, function_arn: str, success: bool) -> None:
        """Async invocation records to an SNS topic or the default EventBridge bus."""
        if arn.startswith("arn:aws:sns:"):
            await sns.publish_record(arn, record.decode())
        else:
            await eventbridge.invocation_result(arn, record, function_arn, success)

    events.external = external
    return QueueFeatures(db, queues, events, configs, mappings)
