"""AWS conformance review, fourth pass: answers checked against botocore's output shapes,
every Lambda paginator driven end to end, and the AWS words of the bad inputs the third
pass left (each followed by a good request: the server keeps serving).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hearth.api.names import FUNCTION_URL_FUNCTION_NAME_PATTERN, UNQUALIFIED_FUNCTION_NAME_PATTERN
from hearth.esm._api import EVENT_SOURCE_ARN_PATTERN
from hearth.eventbridge._service import BUS_PATTERN
from tests.conftest import ROLE, error_of, invoke_json
from tests.helpers import ServerProcess, make_zip
from tests.integration.test_function_urls import ECHO, request, url_host
from tests.model_shapes import watch

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"
PREFIX = "arn:aws:lambda:us-east-1:000000000000:function:"


def _raw(server: ServerProcess) -> Any:
    """A client that sends what it is given (no client-side validation)."""
    return boto3.client(
        "lambda", endpoint_url=server.endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )  # fmt: skip


def test_answers_hold_only_the_models_members(
    server: ServerProcess, make_function: Any, sqs: Any
) -> None:
    """The raw JSON of each operation's answer, walked against botocore's output shape: no
    key outside the model, no null, types and enum values as modeled, required members
    present (boto3's parser would hide most of these)."""
    lam = server.client("lambda")
    problems = watch(lam)
    name = make_function(
        CODE,
        Environment={"Variables": {"STAGE": "test"}},
        Tags={"team": "core"},
        TracingConfig={"Mode": "Active"},
        EphemeralStorage={"Size": 1024},
        LoggingConfig={"LogFormat": "JSON"},
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"},
    )["FunctionName"]
    lam.get_function(FunctionName=name)
    lam.get_function_configuration(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Timeout=6)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": CODE + "#\n"}))
    lam.publish_version(FunctionName=name)
    lam.list_versions_by_function(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.get_alias(FunctionName=name, Name="live")
    lam.update_alias(FunctionName=name, Name="live", Description="d")
    lam.list_aliases(FunctionName=name)
    lam.list_functions(FunctionVersion="ALL")
    lam.get_account_settings()
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    lam.get_function_concurrency(FunctionName=name)
    lam.add_permission(
        FunctionName=name, StatementId="s", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::bucket",
    )  # fmt: skip
    lam.get_policy(FunctionName=name)
    lam.list_tags(Resource=PREFIX + name)
    lam.create_function_url_config(FunctionName=name, AuthType="NONE", Cors={"MaxAge": 5})
    lam.get_function_url_config(FunctionName=name)
    lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    lam.list_function_url_configs(FunctionName=name)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    lam.update_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=100)
    lam.get_function_event_invoke_config(FunctionName=name)
    lam.list_function_event_invoke_configs(FunctionName=name)
    lam.get_runtime_management_config(FunctionName=name)
    lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="FunctionUpdate")
    lam.get_function_recursion_config(FunctionName=name)
    lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    layer = lam.publish_layer_version(
        LayerName=f"{name}-layer", Content={"ZipFile": make_zip({"python/m.py": "x = 1\n"})},
        CompatibleRuntimes=["python3.11"], CompatibleArchitectures=["x86_64"], LicenseInfo="MIT",
    )  # fmt: skip
    try:
        lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
        lam.list_layers(CompatibleRuntime="python3.11")
        lam.list_layer_versions(LayerName=f"{name}-layer")
        lam.add_layer_version_permission(
            LayerName=f"{name}-layer", VersionNumber=1, StatementId="all",
            Action="lambda:GetLayerVersion", Principal="*",
        )  # fmt: skip
        lam.get_layer_version_policy(LayerName=f"{name}-layer", VersionNumber=1)
        lam.update_function_configuration(FunctionName=name, Layers=[layer["LayerVersionArn"]])
        lam.get_function_configuration(FunctionName=name)
    finally:
        lam.delete_layer_version(LayerName=f"{name}-layer", VersionNumber=1)
    sqs.create_queue(QueueName=f"{name}-q", Attributes={"VisibilityTimeout": "60"})
    arn = f"arn:aws:sqs:us-east-1:000000000000:{name}-q"
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)
    lam.get_event_source_mapping(UUID=mapping["UUID"])
    lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=3)
    lam.list_event_source_mappings(FunctionName=name)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    assert problems == []


def test_every_lambda_paginator_pages_end_to_end(lam: Any, make_function: Any, sqs: Any) -> None:
    """Each paginator of botocore's paginators-1.json, one item a page, then capped by
    MaxItems: the same items as one unpaged call, in the same order."""
    name = make_function(CODE, Timeout=10)["FunctionName"]
    make_function(CODE)
    make_function(CODE)
    layer = f"{name}-layer"
    layers = [f"{name}-l{i}" for i in range(3)]
    for i in range(3):
        lam.update_function_configuration(FunctionName=name, Description=str(i))
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name=f"a{i}", FunctionVersion=str(i + 1))
        lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier=f"a{i}", MaximumRetryAttempts=0
        )
        lam.create_function_url_config(FunctionName=name, Qualifier=f"a{i}", AuthType="NONE")
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=str(i + 1), ProvisionedConcurrentExecutions=1
        )
        zipped = make_zip({"python/m.py": f"x = {i}\n"})
        lam.publish_layer_version(LayerName=layer, Content={"ZipFile": zipped})
        lam.publish_layer_version(LayerName=layers[i], Content={"ZipFile": zipped})
        sqs.create_queue(QueueName=f"{name}-q{i}", Attributes={"VisibilityTimeout": "60"})
        lam.create_event_source_mapping(
            FunctionName=name, EventSourceArn=f"arn:aws:sqs:us-east-1:000000000000:{name}-q{i}"
        )
    try:
        for op, kw, key in (
            ("list_functions", {}, "Functions"),
            ("list_versions_by_function", {"FunctionName": name}, "Versions"),
            ("list_aliases", {"FunctionName": name}, "Aliases"),
            ("list_layers", {}, "Layers"),
            ("list_layer_versions", {"LayerName": layer}, "LayerVersions"),
            ("list_event_source_mappings", {"FunctionName": name}, "EventSourceMappings"),
            ("list_function_event_invoke_configs", {"FunctionName": name},
             "FunctionEventInvokeConfigs"),
            ("list_provisioned_concurrency_configs", {"FunctionName": name},
             "ProvisionedConcurrencyConfigs"),
            ("list_function_url_configs", {"FunctionName": name}, "FunctionUrlConfigs"),
        ):  # fmt: skip
            whole = getattr(lam, op)(**kw)[key]
            assert len(whole) >= 3, (op, whole)
            paginator = lam.get_paginator(op)
            pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}, **kw))
            assert [len(p[key]) for p in pages] == [1] * len(whole), op
            assert [item for p in pages for item in p[key]] == whole, op
            capped = paginator.paginate(PaginationConfig={"PageSize": 1, "MaxItems": 2}, **kw)
            result = capped.build_full_result()
            assert result[key] == whole[:2] and result["NextToken"], op
    finally:
        for i in range(3):
            lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=str(i + 1))
            lam.delete_layer_version(LayerName=layer, VersionNumber=i + 1)
            lam.delete_layer_version(LayerName=layers[i], VersionNumber=1)
        for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=m["UUID"])


def test_environment_variable_names_in_aws_words(server: ServerProcess, lam: Any) -> None:
    """Keys must match ``[a-zA-Z]([a-zA-Z0-9_])+`` (two characters at least). AWS names the
    map, not the key, as users' reports quote it (serverless-secrets#39, amplify-backend#2290):
    the variables are a sensitive shape, so no value is echoed."""
    raw = _raw(server)
    message = (
        "1 validation error detected: Value at 'environment.variables' failed to satisfy"
        " constraint: Map keys must satisfy constraint: [Member must satisfy regular"
        " expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
    )
    name = "fourth-env"
    code = {"ZipFile": make_zip({"app.py": CODE})}
    for key in ("A", "1ABC", "MY-VAR", "_X"):
        with pytest.raises(ClientError) as exc:
            raw.create_function(
                FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                Code=code, Environment={"Variables": {key: "secret-value"}},
            )  # fmt: skip
        assert error_of(exc) == ("ValidationException", 400, message)
        assert "secret-value" not in str(exc.value)
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler", Code=code,
        Environment={"Variables": {"AB": "1"}},
    )  # fmt: skip
    try:
        with pytest.raises(ClientError) as exc:
            raw.update_function_configuration(
                FunctionName=name, Environment={"Variables": {"B": "x"}}
            )
        assert error_of(exc) == ("ValidationException", 400, message)
        assert invoke_json(lam, name)[1] == {"v": "$LATEST"}
    finally:
        lam.delete_function(FunctionName=name)


def test_a_required_member_left_out_is_value_null(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    """AWS writes an absent required member ``Value null at 'member'`` (unquoted) with
    ``Member must not be null``, whatever the member's other constraints."""
    raw = _raw(server)
    name = make_function(CODE)["FunctionName"]
    lam.publish_layer_version(
        LayerName=f"{name}-layer", Content={"ZipFile": make_zip({"python/m.py": "x = 1\n"})}
    )
    calls = (
        ("updateRuntimeOn", lambda: raw.put_runtime_management_config(FunctionName=name)),
        ("recursiveLoop", lambda: raw.put_function_recursion_config(FunctionName=name)),
        ("tags", lambda: raw.tag_resource(Resource=PREFIX + name)),
        ("tagKeys", lambda: raw.untag_resource(Resource=PREFIX + name)),
        ("content", lambda: raw.publish_layer_version(LayerName=f"{name}-layer")),
        (
            "statementId",
            lambda: raw.add_layer_version_permission(
                LayerName=f"{name}-layer",
                VersionNumber=1,
                Action="lambda:GetLayerVersion",
                Principal="*",
            ),
        ),
        (
            "functionName",
            lambda: raw.create_event_source_mapping(
                EventSourceArn="arn:aws:sqs:us-east-1:000000000000:q"
            ),
        ),
    )
    try:
        for member, call in calls:
            with pytest.raises(ClientError) as exc:
                call()
            assert error_of(exc) == (
                "ValidationException",
                400,
                f"1 validation error detected: Value null at '{member}' failed to satisfy"
                " constraint: Member must not be null",
            ), member
        with pytest.raises(ClientError) as exc:
            raw.create_event_source_mapping(
                FunctionName="", EventSourceArn="arn:aws:sqs:us-east-1:000000000000:q"
            )
        assert error_of(exc) == (
            "ValidationException",
            400,
            "1 validation error detected: Value '' at 'functionName' failed to satisfy"
            " constraint: Member must have length greater than or equal to 1",
        )
    finally:
        lam.delete_layer_version(LayerName=f"{name}-layer", VersionNumber=1)
    assert invoke_json(lam, name)[1] == {"v": "$LATEST"}


def test_provisioned_concurrency_configs_page_by_marker(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    name = make_function(CODE, Timeout=10)["FunctionName"]
    for _ in range(2):
        lam.update_function_configuration(FunctionName=name, Description=os.urandom(4).hex())
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    try:
        first = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=1)
        assert len(first["ProvisionedConcurrencyConfigs"]) == 1 and first["NextMarker"]
        second = lam.list_provisioned_concurrency_configs(
            FunctionName=name, MaxItems=1, Marker=first["NextMarker"]
        )
        assert len(second["ProvisionedConcurrencyConfigs"]) == 1 and "NextMarker" not in second
        arns = {
            c["FunctionArn"]
            for page in (first, second)
            for c in page["ProvisionedConcurrencyConfigs"]
        }
        assert arns == {f"{PREFIX}{name}:1", f"{PREFIX}{name}:2"}
        with pytest.raises(ClientError) as exc:
            _raw(server).list_provisioned_concurrency_configs(FunctionName=name, Marker="junk")
        assert error_of(exc) == ("InvalidParameterValueException", 400, "Invalid marker")
    finally:
        for version in ("1", "2"):
            lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_event_and_dry_run_answer_only_a_status_code(lam: Any, make_function: Any) -> None:
    """Event: "The API response only includes a status code" (the Lambda invocation-type
    reference): 202, no ExecutedVersion even through an alias or version; DryRun: 204."""
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    for kw in (
        {"FunctionName": name},
        {"FunctionName": name, "Qualifier": "live"},
        {"FunctionName": f"{name}:1"},
        {"FunctionName": f"{PREFIX}{name}:live"},
    ):
        for kind, status in (("Event", 202), ("DryRun", 204)):
            resp = lam.invoke(InvocationType=kind, Payload=b"{}", **kw)
            assert resp["StatusCode"] == status and resp["Payload"].read() == b""
            assert "ExecutedVersion" not in resp
            assert "x-amz-executed-version" not in resp["ResponseMetadata"]["HTTPHeaders"]
    sync = lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    assert sync["ExecutedVersion"] == "1"


def test_oversized_function_url_request_is_lambdas_413(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    """A function URL request whose event passes 6 MB: Lambda's front end answers it with
    ``X-Amzn-ErrorType: RequestEntityTooLargeException`` and its InvokeFunction message."""
    name = make_function(ECHO, Timeout=30)["FunctionName"]
    host = url_host(
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    )
    status, headers, _, data = request(
        server, "POST", "/", host=host, headers=[("Content-Type", "text/plain")],
        body=b"x" * (6 * 1024 * 1024),
    )  # fmt: skip
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert json.loads(data) == {
        "Message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    }
    status, _, _, data = request(server, "POST", "/", host=host, body=b"ok")
    assert status == 200 and json.loads(data)["body"] == "ok"


def test_aws_cli_drives_versions_aliases_and_invocation_types(
    server: ServerProcess, lam: Any, tmp_path: Path
) -> None:
    """The aws CLI (v1, from PyPI) through the calls a deploy script makes."""
    aws = str(Path(sys.executable).with_name("aws"))
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    zipped = tmp_path / "fn.zip"
    zipped.write_bytes(make_zip({"app.py": CODE}))
    name = "fourth-cli"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [aws, "--endpoint-url", server.endpoint, "--output", "json", "lambda", *args],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip

    def ok(*args: str) -> Any:
        proc = cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    created = ok(
        "create-function", "--function-name", name, "--runtime", "python3.11",
        "--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{zipped}",
        "--environment", "Variables={STAGE=dev}",
    )  # fmt: skip
    try:
        assert created["State"] == "Active"
        assert created["Environment"] == {"Variables": {"STAGE": "dev"}}
        ok("wait", "function-active-v2", "--function-name", name)
        assert ok("publish-version", "--function-name", name)["Version"] == "1"
        ok("create-alias", "--function-name", name, "--name", "live", "--function-version", "1")
        out = tmp_path / "out.json"
        sync = ok("invoke", "--function-name", f"{name}:live", "--log-type", "Tail", str(out))
        assert (sync["StatusCode"], sync["ExecutedVersion"]) == (200, "1") and sync["LogResult"]
        assert json.loads(out.read_text()) == {"v": "1"}
        assert ok(
            "invoke", "--function-name", name, "--qualifier", "live",
            "--invocation-type", "Event", str(out),
        ) == {"StatusCode": 202}  # fmt: skip
        versions = ok("list-versions-by-function", "--function-name", name)["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST", "1"]
        missing = cli("get-function", "--function-name", f"{name}-absent")
        assert missing.returncode == 255
        assert (
            "An error occurred (ResourceNotFoundException) when calling the GetFunction"
            f" operation: Function not found: {PREFIX}{name}-absent"
        ) in missing.stderr
    finally:
        ok("delete-function", "--function-name", name)


def test_function_name_shapes_that_admit_no_version(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    """botocore gives Get/PutFunctionRecursionConfig an ``UnqualifiedFunctionName`` (no
    ``:qualifier``) and the function URL operations a ``FunctionUrlFunctionName`` (an
    alias may follow the name, a version or ``$LATEST`` may not): outside them, the
    model's ValidationException naming that pattern."""
    raw = _raw(server)
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    def refused(ident: str, pattern: str) -> tuple[str, int, str]:
        return (
            "ValidationException",
            400,
            f"1 validation error detected: Value '{ident}' at 'functionName' failed to satisfy"
            f" constraint: Member must satisfy regular expression pattern: {pattern}",
        )

    for ident in (f"{name}:1", f"{name}:live", f"{PREFIX}{name}:$LATEST"):
        for op, kw in (
            ("get_function_recursion_config", {}),
            ("put_function_recursion_config", {"RecursiveLoop": "Allow"}),
        ):
            with pytest.raises(ClientError) as exc:
                getattr(raw, op)(FunctionName=ident, **kw)
            assert error_of(exc) == refused(ident, UNQUALIFIED_FUNCTION_NAME_PATTERN)
    assert lam.get_function_recursion_config(FunctionName=PREFIX + name)["RecursiveLoop"] == (
        "Terminate"
    )
    for ident in (f"{name}:1", f"{PREFIX}{name}:$LATEST"):
        for op, kw in (
            ("create_function_url_config", {"AuthType": "NONE"}),
            ("get_function_url_config", {}),
            ("list_function_url_configs", {}),
        ):
            with pytest.raises(ClientError) as exc:
                getattr(raw, op)(FunctionName=ident, **kw)
            assert error_of(exc) == refused(ident, FUNCTION_URL_FUNCTION_NAME_PATTERN)
    made = lam.create_function_url_config(FunctionName=f"{name}:live", AuthType="NONE")
    assert made["FunctionArn"] == f"{PREFIX}{name}:live"
    got = lam.get_function_url_config(FunctionName=name, Qualifier="live")
    assert got["FunctionUrl"] == made["FunctionUrl"]


def test_event_source_arn_outside_the_models_pattern(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    raw = _raw(server)
    name = make_function(CODE)["FunctionName"]
    expected = (
        "ValidationException",
        400,
        "1 validation error detected: Value 'my-queue' at 'eventSourceArn' failed to satisfy"
        f" constraint: Member must satisfy regular expression pattern: {EVENT_SOURCE_ARN_PATTERN}",
    )
    with pytest.raises(ClientError) as exc:
        raw.create_event_source_mapping(FunctionName=name, EventSourceArn="my-queue")
    assert error_of(exc) == expected
    with pytest.raises(ClientError) as exc:
        raw.list_event_source_mappings(EventSourceArn="my-queue")
    assert error_of(exc) == expected
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_stream_only_mapping_members_on_a_queue(
    server: ServerProcess, lam: Any, sqs: Any, make_function: Any
) -> None:
    """The model's ranges first (a ValidationException); then a StartingPosition on a
    queue is AWS's "StartingPosition is not valid for SQS event sources." (as SDK users
    report it: boto/boto3#1613, motdotla/node-lambda#466)."""
    raw = _raw(server)
    name = make_function(CODE)["FunctionName"]
    sqs.create_queue(QueueName=f"{name}-q")
    arn = f"arn:aws:sqs:us-east-1:000000000000:{name}-q"
    for kw, expected in (
        (
            {"StartingPosition": "NOW"},
            (
                "ValidationException",
                400,
                "1 validation error detected: Value 'NOW' at 'startingPosition' failed to satisfy"
                " constraint: Member must satisfy enum value set: [TRIM_HORIZON, LATEST,"
                " AT_TIMESTAMP]",
            ),
        ),
        (
            {"ParallelizationFactor": 11},
            (
                "ValidationException",
                400,
                "1 validation error detected: Value '11' at 'parallelizationFactor' failed to"
                " satisfy constraint: Member must have value less than or equal to 10",
            ),
        ),
        (
            {"MaximumRetryAttempts": -2},
            (
                "ValidationException",
                400,
                "1 validation error detected: Value '-2' at 'maximumRetryAttempts' failed to"
                " satisfy constraint: Member must have value greater than or equal to -1",
            ),
        ),
        (
            {"StartingPosition": "LATEST"},
            (
                "InvalidParameterValueException",
                400,
                "StartingPosition is not valid for SQS event sources.",
            ),
        ),
    ):
        with pytest.raises(ClientError) as exc:
            raw.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, **kw)
        assert error_of(exc) == expected
    made = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)
    lam.delete_event_source_mapping(UUID=made["UUID"])


def test_eventbridge_absent_lists_and_bus_names_in_the_models_words(server: ServerProcess) -> None:
    events = boto3.client(
        "events", endpoint_url=server.endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )  # fmt: skip
    events.put_rule(Name="fourth-rule", ScheduleExpression="rate(1 hour)")
    try:
        for call, member in (
            (lambda: events.put_targets(Rule="fourth-rule"), "targets"),
            (lambda: events.remove_targets(Rule="fourth-rule"), "ids"),
            (lambda: events.put_events(), "entries"),
        ):
            with pytest.raises(ClientError) as exc:
                call()
            assert error_of(exc) == (
                "ValidationException",
                400,
                f"1 validation error detected: Value null at '{member}' failed to satisfy"
                " constraint: Member must not be null",
            )
        with pytest.raises(ClientError) as exc:
            events.describe_rule(Name="fourth-rule", EventBusName="my bus")
        assert error_of(exc) == (
            "ValidationException",
            400,
            "1 validation error detected: Value 'my bus' at 'eventBusName' failed to satisfy"
            f" constraint: Member must satisfy regular expression pattern: {BUS_PATTERN}",
        )
        with pytest.raises(ClientError) as exc:
            events.describe_rule(Name="fourth-rule", EventBusName="other")
        assert error_of(exc) == (
            "ResourceNotFoundException",
            400,
            "Event bus other does not exist.",
        )
        with pytest.raises(ClientError) as exc:
            events.list_rules(NamePrefix="no spaces")
        assert error_of(exc)[:2] == ("ValidationException", 400)
        names = [r["Name"] for r in events.list_rules(NamePrefix="fourth-")["Rules"]]
        assert names == ["fourth-rule"]
    finally:
        events.delete_rule(Name="fourth-rule")


def test_sns_publish_without_a_target_in_aws_words(server: ServerProcess) -> None:
    sns = server.client("sns")
    with pytest.raises(ClientError) as exc:
        sns.publish(Message="hello")  # TopicArn is optional in the model (TargetArn, phone)
    assert error_of(exc) == (
        "InvalidParameter",
        400,
        "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
    )
    topic = sns.create_topic(Name="fourth-topic")["TopicArn"]
    try:
        assert sns.publish(TopicArn=topic, Message="hello")["MessageId"]
    finally:
        sns.delete_topic(TopicArn=topic)


def test_error_bodies_carry_the_models_members(lam: Any, make_function: Any) -> None:
    """boto3 lifts an error body's modeled members into the parsed error: the message key
    is the one the exception's shape names (ResourceNotFoundException ``Message``,
    InvalidParameterValueException ``message``), next to ``Type``."""
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function(FunctionName="fourth-absent")
    missing = exc.value.response
    assert missing["Type"] == "User"
    assert (
        missing["Message"]
        == missing["Error"]["Message"]
        == (f"Function not found: {PREFIX}fourth-absent")
    )
    name = make_function(CODE)["FunctionName"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.delete_function(FunctionName=name, Qualifier="$LATEST")
    invalid = exc.value.response
    assert invalid["Type"] == "User" and "Message" not in invalid
    assert (
        invalid["message"]
        == invalid["Error"]["Message"]
        == ("$LATEST version cannot be deleted without deleting the function.")
    )
