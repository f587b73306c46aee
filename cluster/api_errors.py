"""Kubernetes API failures as one clear message each: what the server said, and the fix.

    with api_errors("create AgentDeployment rag", namespace="default", server=api.configuration.host):
        objects.create_namespaced_custom_object(...)

Forbidden, invalid, conflict, unauthorized, not found, the CRD not installed and an unreachable server each
become a ClusterAPIError (a PlaitError: the CLI prints it without a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from plait.cluster.spec import GROUP, PLURAL, VERSION
from plait.sdk.errors import PlaitError


class ClusterAPIError(PlaitError):
    """The API server refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def body_of(err: Any) -> dict[str, Any]:
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def explain(err: Exception, action: str, namespace: str, server: str) -> ClusterAPIError:
    """`err` (an ApiException, or a connection error) raised while doing `action`, as one message with its fix."""
    from kubernetes.client.exceptions import ApiException

    if not isinstance(err, ApiException):
        return ClusterAPIError(
            f"cannot reach the Kubernetes API server at {server} to {action}: {type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}\n  To fix: start the cluster (for the local test cluster: "
            "`bash scripts/k8s/start.sh DIR`), or point --kubeconfig (or $KUBECONFIG) at a running one.",
            None, "Unreachable")
    body = body_of(err)
    status, reason = err.status, body.get("reason") or err.reason or ""
    said = body.get("message") or (err.body or "").strip()[:300] or str(reason)
    details = body.get("details") or {}
    if status == 401:
        fix = "refresh the credentials in your kubeconfig (the token may have expired or been revoked)."
    elif status == 403:
        fix = (f"ask your cluster admin for a Role in namespace {namespace} allowing this "
               f"(`kubectl auth can-i --list -n {namespace}` shows what you may do), or use another --kubeconfig.")
    elif status == 404 and not details.get("name"):
        return ClusterAPIError(
            f"cannot {action}: the cluster has no AgentDeployment resource ({PLURAL}.{GROUP}/{VERSION} is not "
            "installed)\n  To fix: install plait's manifests (an admin's task): `plait manifests --out manifests/ --apply`, "
            "or `kubectl apply -f manifests/`.", status, "CRDNotInstalled")
    elif status == 404:
        fix = (f"check the name and namespace: `kubectl get {PLURAL} -n {namespace}` lists what is there, or "
               "submit it first with `plait submit`.")
    elif status == 409 and reason == "AlreadyExists":
        fix = "delete it first (`plait delete NAME`), or submit under another --name."
    elif status == 409:
        fix = "it was changed by someone else at the same time: run the command again."
    elif status == 422:
        causes = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in details.get("causes", []))
        said = causes or said
        fix = ("the object does not match the installed CRD's schema: update the CRD with this plait's "
               "(`plait manifests --out manifests/ --apply`), or re-plan (`plait plan FILE:AGENT --out DIR`) if "
               "the plan is the odd one out.")
    else:
        fix = "see the API server's message above; `kubectl get --raw /readyz` checks the server's health."
    return ClusterAPIError(f"cannot {action}: {reason or 'error'} ({status}): {said}\n  To fix: {fix}",
                           status, str(reason))


@contextmanager
def api_errors(action: str, namespace: str, server: str) -> Iterator[None]:
    """Turn API and connection failures inside the block into ClusterAPIError (see `explain`)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except (ApiException, HTTPError, OSError) as err:
        raise explain(err, action, namespace, server) from None
