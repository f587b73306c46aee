"""The operator's RBAC: only the verbs and resources it uses (least privilege).

`plait manifests` writes these rules into the operator's Role; the tests run the operator under
that Role's service-account token, so a rule missing here fails a test, and a verb not needed
should not be here. The operator owns its children by owner references, so it needs no
cluster-wide access beyond reading its own CRD.
"""

from __future__ import annotations

from typing import Any

from plait.cluster.spec import GROUP, PLURAL

OPERATOR_NAME = "plait-operator"

# What reconcile creates and repairs.
_CHILD_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def operator_rules() -> list[dict[str, Any]]:
    """The namespaced Role's rules of the operator's service account."""
    return [
        # The custom resource: watched, patched for finalizers and kopf's annotations, status written.
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch", "update"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets", "deployments"], "verbs": _CHILD_VERBS},
        {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": _CHILD_VERBS},
        # Readiness per pool comes from the StatefulSets' status; pods are only read.
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        # kopf posts events about the resources it handles.
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]


def cluster_rules() -> list[dict[str, Any]]:
    """The ClusterRole's rules: kopf lists CRDs and namespaces to find what it serves."""
    return [
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    ]
