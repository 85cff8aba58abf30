"""Deployments of HTTP APIs: Create / Get / Update / Delete Deployment and GetDeployments.

Hearth serves every stage from the API's live routes and integrations (see
:mod:`hearth.gateway.apis`), so a deployment changes nothing that is served: it is a
record, as the usual client flow (create routes, ``create-deployment --stage-name``)
expects, and it is always ``DEPLOYED`` at once. With ``stageName`` the stage must exist
and its ``deploymentId`` becomes the new deployment's. A deployment a stage points at
cannot be deleted (a ``BadRequestException``, as on AWS).
"""

from __future__ import annotations

from typing import Any

from hearth.gateway.api_items import iso_now, new_id, string_member
from hearth.gateway.apis_store import ApiDoc
from hearth.gateway.errors import BadRequest, NotFound

#: Deployments kept per API; the oldest unreferenced one is dropped beyond this.
MAX_DEPLOYMENTS = 100


def create_deployment(d: ApiDoc, body: dict[str, Any]) -> dict[str, Any]:
    stage_name = string_member(body, "stageName", lo=1, hi=128)
    description = string_member(body, "description", hi=1024)
    if stage_name is not None and stage_name not in d.stages:
        raise NotFound(f"Invalid Stage identifier specified {d.account_id}:{stage_name}", "Stage")
    item: dict[str, Any] = {
        "autoDeployed": False,
        "createdDate": iso_now(),
        "deploymentId": new_id(6),
        "deploymentStatus": "DEPLOYED",
    }
    if description is not None:
        item["description"] = description
    d.deployments[item["deploymentId"]] = item
    if stage_name is not None:
        stage = d.stages[stage_name]
        stage["deploymentId"] = item["deploymentId"]
        stage["lastUpdatedDate"] = item["createdDate"]
    _trim(d)
    return item


def deployment_of(d: ApiDoc, ident: str) -> dict[str, Any]:
    item = d.deployments.get(ident)
    if item is None:
        raise NotFound(f"Invalid Deployment identifier specified {d.account_id}:{ident}")
    return item


def update_deployment(d: ApiDoc, ident: str, body: dict[str, Any]) -> dict[str, Any]:
    item = deployment_of(d, ident)
    description = string_member(body, "description", hi=1024)
    if description is not None:
        item["description"] = description
    return item


def delete_deployment(d: ApiDoc, ident: str) -> None:
    deployment_of(d, ident)
    users = sorted(s for s, stage in d.stages.items() if stage.get("deploymentId") == ident)
    if users:
        raise BadRequest(
            f"Active stages pointing to this deployment must be moved or deleted: {users[0]}"
        )
    del d.deployments[ident]


def _trim(d: ApiDoc) -> None:
    used = {s.get("deploymentId") for s in d.stages.values()}
    for ident in list(d.deployments):
        if len(d.deployments) <= MAX_DEPLOYMENTS:
            break
        if ident not in used:
            del d.deployments[ident]
