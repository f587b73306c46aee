"""The operator's API calls on children, as plain dicts: server-side apply, list by label, delete, and the
AgentDeployment's status. Only the kinds and verbs of cluster.rbac's Role are used here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from plait.cluster.rbac import OPERATOR_NAME
from plait.cluster.spec import GROUP, PLURAL, VERSION

_APPLY = "application/apply-patch+yaml"   # server-side apply; JSON is YAML, so the body goes as JSON
# kind -> (API class, the method suffix of the typed client: patch_namespaced_<suffix>, ...)
_KINDS: dict[str, tuple[Any, str]] = {
    "StatefulSet": (client.AppsV1Api, "stateful_set"),
    "Deployment": (client.AppsV1Api, "deployment"),
    "Service": (client.CoreV1Api, "service"),
    "ConfigMap": (client.CoreV1Api, "config_map"),
    "NetworkPolicy": (client.NetworkingV1Api, "network_policy"),
}


class Conflict(Exception):
    """A server-side apply found a field it sets now managed by someone else (HTTP 409); the message says who."""


@dataclass
class Children:
    """Calls on one namespace's children through `api` (a kubernetes ApiClient)."""

    api: client.ApiClient
    namespace: str

    def _typed(self, kind: str) -> tuple[Any, str]:
        cls, suffix = _KINDS[kind]
        return cls(self.api), suffix

    def apply(self, obj: dict[str, Any], force: bool) -> dict[str, Any]:
        """Create or update `obj` by server-side apply as the operator's field manager; returns the object as
        stored (with its status). Without `force` a field another manager changed raises Conflict."""
        typed, suffix = self._typed(obj["kind"])
        try:
            response = getattr(typed, f"patch_namespaced_{suffix}")(
                obj["metadata"]["name"], self.namespace, obj, field_manager=OPERATOR_NAME, force=force,
                _content_type=_APPLY, _preload_content=False)
        except client.ApiException as err:
            if err.status == 409:
                raise Conflict(_message(err)) from None
            raise
        return dict(json.loads(response.data))

    def list(self, kind: str, selector: str) -> list[dict[str, Any]]:
        typed, suffix = self._typed(kind)
        response = getattr(typed, f"list_namespaced_{suffix}")(self.namespace, label_selector=selector,
                                                               _preload_content=False)
        return list(json.loads(response.data)["items"])

    def delete(self, kind: str, name: str) -> None:
        typed, suffix = self._typed(kind)
        try:
            getattr(typed, f"delete_namespaced_{suffix}")(name, self.namespace, _preload_content=False)
        except client.ApiException as err:
            if err.status != 404:   # already gone is what we wanted
                raise

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, {"status": status},
            _content_type="application/merge-patch+json", _preload_content=False)


def _message(err: client.ApiException) -> str:
    try:
        return str(json.loads(err.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason)
