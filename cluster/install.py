"""Install the manifests on a cluster without kubectl (`plait manifests --apply`): each object is created, or
replaced where it exists, in file order; the CRD is waited for until the server serves it.

Replacing (not merging) is what `kubectl apply` converges to for objects only plait writes, and needs no
field-manager support from older servers (the 1.20 test server).
"""

from __future__ import annotations

import time
from typing import Any

from plait.cluster.api_errors import ClusterAPIError, api_errors

ESTABLISH_TIMEOUT_S = 30.0


def apply_objects(api: Any, objects: list[dict[str, Any]], server: str) -> list[str]:
    """Create or replace each object; returns one line per object (`kind/name created|configured`)."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    with api_errors("discover the cluster's API resources", "-", server):
        dynamic = DynamicClient(api)
    lines = []
    for obj in objects:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "-")
        what = f"{obj['kind']}/{meta['name']}"
        with api_errors(f"apply {what}", namespace, server):
            resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            try:
                resource.create(body=obj, namespace=meta.get("namespace"))
                verb = "created"
            except ApiException as err:
                if err.status != 409:
                    raise
                current = resource.get(name=meta["name"], namespace=meta.get("namespace"))
                body = {**obj, "metadata": {**meta, "resourceVersion": current.metadata.resourceVersion}}
                resource.replace(body=body, namespace=meta.get("namespace"))
                verb = "configured"
        if obj["kind"] == "CustomResourceDefinition":
            _await_established(resource, meta["name"], server)
        lines.append(f"{what} {verb}")
    return lines


def _await_established(resource: Any, name: str, server: str) -> None:
    """Until the new CRD's resource is served (condition Established): a submit right after must not 404."""
    deadline = time.monotonic() + ESTABLISH_TIMEOUT_S
    while time.monotonic() < deadline:
        with api_errors(f"read CustomResourceDefinition/{name}", "-", server):
            got = resource.get(name=name)
        conditions = (got.to_dict().get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise ClusterAPIError(f"CustomResourceDefinition/{name} was created but is not Established after "
                          f"{ESTABLISH_TIMEOUT_S:g} s\n  To fix: check the API server's log; then run the command again.")
