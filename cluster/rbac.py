"""The operator's RBAC: only the verbs and resources it uses (least privilege).

`plait manifests` writes these rules into the operator's Role; the tests run the operator under that Role's
service-account token (tests/test_cluster_operator.py), so a rule missing here fails a test, and a verb not
needed is not here. Each rule names who uses it: kopf (watching the resource, its progress annotations and
finalizer, Events) or cluster.operator (server-side apply of the children, the rollout's listing, deleting the
pools a spec dropped, the status). The operator serves one namespace with kopf's cluster scanning off, and
discovery is open to every authenticated user, so it needs no cluster-wide rule.
"""

from __future__ import annotations

from typing import Any

from plait.cluster.spec import GROUP, PLURAL

OPERATOR_NAME = "plait-operator"


def operator_rules() -> list[dict[str, Any]]:
    """The namespaced Role's rules of the operator's service account."""
    return [
        # kopf: list and watch the resources; patch for its progress annotations and finalizer.
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["list", "watch", "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
        # A child's owner reference sets blockOwnerDeletion, which clusters running the
        # OwnerReferencesPermissionEnforcement admission plugin allow only to who may update the owner's finalizers.
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        # Server-side apply is a patch, and a create where the child is missing; list and watch feed the rollout
        # and the child-watch handler; delete removes the pools a spec dropped.
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["list", "watch", "create", "patch", "delete"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "watch", "create", "patch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch"]},
        # Apply of the NetworkPolicies that keep the router's control ports and the pools to the deployment's pods.
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["create", "patch"]},
        # kopf posts Events about the resources it handles (core/v1 only).
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def cluster_rules() -> list[dict[str, Any]]:
    """The ClusterRole's rules: none, while the operator serves one namespace (`plait operator -n NS`).

    kopf lists and watches namespaces and CRDs only when its cluster scanning is on; the operator turns it off."""
    return []
