"""Event source mappings from Hearth queues: the configuration and its AWS wire form.

State machine (as Lambda reports it): Create → ``Creating`` → ``Enabled``; Update →
``Updating`` → ``Enabled`` or ``Disabling`` → ``Disabled``; ``Disabled`` → ``Enabling``
→ ``Enabled``; Delete → ``Deleting`` → gone. The transient states are what the API
answers while the pollers start or stop; the settled state is stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hearth.api.wire import check_enum, check_int, validation_error
from hearth.errors import InvalidParameterValue
from hearth.esm._filter import parse_filters

DEFAULT_BATCH = 10
#: pollers of a mapping without ScalingConfig.MaximumConcurrency (Lambda scales to 1,250;
#: a single node has far fewer cores, so Hearth bounds it lower)
DEFAULT_MAX_POLLERS = 20


@dataclass(slots=True)
class Mapping:
    uuid: str
    account_id: str
    region: str
    function_name: str
    qualifier: str | None
    event_source_arn: str
    batch_size: int = DEFAULT_BATCH
    window: int = 0
    response_types: list[str] = field(default_factory=list)
    max_concurrency: int | None = None
    enabled: bool = True
    last_modified: float = 0.0
    state: str = "Enabled"
    filters: list[str] = field(default_factory=list)
    """FilterCriteria patterns as given (JSON text)."""

    @property
    def function_arn(self) -> str:
        base = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"
        return f"{base}:{self.qualifier}" if self.qualifier else base

    @property
    def report_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.response_types

    @property
    def pollers(self) -> int:
        return self.max_concurrency or DEFAULT_MAX_POLLERS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Mapping:
        return cls(**json.loads(text))

    def wire(self, state: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "UUID": self.uuid,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.window,
            "EventSourceArn": self.event_source_arn,
            "FunctionArn": self.function_arn,
            "LastModified": self.last_modified,
            "State": state or self.state,
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": list(self.response_types),
            "EventSourceMappingArn": (
                f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:{self.uuid}"
            ),
        }
        if self.filters:
            doc["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in self.filters]}
        if self.max_concurrency is not None:
            doc["ScalingConfig"] = {"MaximumConcurrency": self.max_concurrency}
        return doc


_UNSUPPORTED = (
    "StartingPosition",
    "StartingPositionTimestamp",
    "ParallelizationFactor",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "Topics",
    "Queues",
    "SelfManagedEventSource",
)


#: The model's ranges of the stream-only members: checked (a ValidationException) before
#: the member is refused for an SQS source, as AWS validates the request first.
_STREAM_RANGES = {
    "ParallelizationFactor": (1, 10),
    "MaximumRecordAgeInSeconds": (-1, 604800),
    "MaximumRetryAttempts": (-1, 10000),
    "TumblingWindowInSeconds": (0, 900),
}


def apply_settings(m: Mapping, body: dict[str, Any]) -> None:
    """Validate and apply the settable members of Create/UpdateEventSourceMapping."""
    if body.get("StartingPosition") is not None:
        check_enum(
            body["StartingPosition"], "startingPosition", ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
        )
    for key, (lo, hi) in _STREAM_RANGES.items():
        if body.get(key) is not None:
            check_int(body[key], key[0].lower() + key[1:], lo=lo, hi=hi)
    if body.get("StartingPosition") is not None:
        # AWS's words, as SDK users report them (boto/boto3#1613, node-lambda#466).
        raise InvalidParameterValue("StartingPosition is not valid for SQS event sources.")
    for key in _UNSUPPORTED:
        if body.get(key) not in (None, [], {}):
            raise InvalidParameterValue(
                f"Unsupported parameter for SQS event source mappings: {key}"
            )
    if body.get("FilterCriteria") is not None:
        parse_filters(body["FilterCriteria"])  # validates
        filters = body["FilterCriteria"].get("Filters") or []
        m.filters = [str(f["Pattern"]) for f in filters]
    if body.get("DestinationConfig"):
        raise InvalidParameterValue(
            "DestinationConfig is not supported for SQS event source mappings. Use a"
            " dead-letter queue on the source queue (RedrivePolicy)."
        )
    if body.get("BatchSize") is not None:
        m.batch_size = check_int(body["BatchSize"], "batchSize", lo=1, hi=10000)
    if body.get("MaximumBatchingWindowInSeconds") is not None:
        m.window = check_int(
            body["MaximumBatchingWindowInSeconds"], "maximumBatchingWindowInSeconds", lo=0, hi=300
        )
    if m.window > 0 and m.event_source_arn.endswith(".fifo"):
        raise InvalidParameterValue("Batching window is not supported for FIFO queues")
    if m.batch_size > 10 and m.window < 1:
        raise InvalidParameterValue(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is"
            " greater than 10"
        )
    if body.get("FunctionResponseTypes") is not None:
        types = body["FunctionResponseTypes"]
        if not isinstance(types, list):
            raise InvalidParameterValue("FunctionResponseTypes must be a list.")
        shown = "[" + ", ".join(str(t) for t in types) + "]"
        if len(types) > 1:
            raise validation_error(
                shown, "functionResponseTypes", "have length less than or equal to 1"
            )
        if any(t != "ReportBatchItemFailures" for t in types):
            # The model's list-of-enum form (a ValidationException, as for Architectures).
            raise validation_error(
                shown,
                "functionResponseTypes",
                "satisfy constraint: [Member must satisfy enum value set:"
                " [ReportBatchItemFailures], Member must not be null]",
            )
        m.response_types = list(dict.fromkeys(types))
    if body.get("ScalingConfig") is not None:
        sc = body["ScalingConfig"]
        mc = sc.get("MaximumConcurrency") if isinstance(sc, dict) else None
        m.max_concurrency = (
            None if mc is None else check_int(mc, "scalingConfig.maximumConcurrency", lo=2, hi=1000)
        )
    if body.get("Enabled") is not None:
        m.enabled = bool(body["Enabled"])
