"""`plait submit`, `plait status` and `plait delete` against an API server: create or update an AgentDeployment
and its ConfigMap, read it back, delete both.

Submitting again replaces the spec (the server raises `metadata.generation`; a changed plan changes
`spec.planHash`, which the operator rolls the pools on). The ConfigMap is owned by the AgentDeployment, so the
garbage collector removes it with the resource; `delete` also removes it itself, for clusters without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.cluster.api_errors import ClusterAPIError, api_errors, body_of
from plait.cluster.from_plan import Bundle, config_map_name
from plait.cluster.spec import GROUP, KIND, PLURAL, VERSION, AgentDeploymentStatus

REQUEST_TIMEOUT_S = 15
_UPDATE_TRIES = 3   # a replace that meets a concurrent write (409) reads the object again and retries


@dataclass(frozen=True)
class Submitted:
    name: str
    namespace: str
    created: bool          # False: an existing resource was updated
    generation: int
    plan_hash: str


class Cluster:
    """One API server and namespace, through the official client (a kubeconfig, else in-cluster config)."""

    def __init__(self, api: Any, namespace: str) -> None:
        from kubernetes import client

        self.api = api
        self.namespace = namespace
        self.server = str(api.configuration.host)
        # Any: the client's typed signatures want its model classes; plait sends and reads plain dicts
        self.objects: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)

    @classmethod
    def connect(cls, kubeconfig: Path | None, namespace: str | None) -> Cluster:
        """From `kubeconfig` (else $KUBECONFIG or ~/.kube/config, else the pod's service account); the namespace
        is `namespace`, else the kubeconfig context's, else 'default'."""
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        context_ns = None
        try:
            if kubeconfig is not None and not kubeconfig.is_file():
                raise ConfigException(f"{kubeconfig} is not a file")
            api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None)
            _, active = config.list_kube_config_contexts(config_file=str(kubeconfig) if kubeconfig else None)
            context_ns = (active or {}).get("context", {}).get("namespace")
        except (ConfigException, OSError) as err:
            if kubeconfig is not None:
                raise ClusterAPIError(f"cannot read kubeconfig {kubeconfig}: {err}\n  To fix: pass --kubeconfig "
                                      "FILE of a cluster (the local test cluster writes DIR/kubeconfig).") from None
            try:
                from kubernetes import client

                config.load_incluster_config()
                api = client.ApiClient()
            except ConfigException:
                raise ClusterAPIError(f"no kubeconfig found and not running in a cluster ({err})\n  To fix: pass "
                                      "--kubeconfig FILE, or set $KUBECONFIG.") from None
        api.configuration.retries = 0   # an unreachable server fails at once, with one message
        return cls(api, namespace or context_ns or "default")

    def _errors(self, action: str) -> Any:
        return api_errors(action, self.namespace, self.server)

    # --- submit ---------------------------------------------------------------------------------------------
    def submit(self, bundle: Bundle) -> Submitted:
        """Create or update the ConfigMap, then the AgentDeployment; then make the ConfigMap the resource's child.

        The resource is read first: a cluster without the CRD, or credentials that may not read it, fail before
        the ConfigMap is written, so a refused submit leaves nothing behind."""
        self.find(bundle.name)
        self._apply_config_map(bundle.config_map)
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                "metadata": {"name": bundle.name, "namespace": self.namespace},
                "spec": bundle.spec.model_dump(by_alias=True, exclude_none=True, mode="json")}
        created, obj = self._create_or_replace(bundle.name, body)
        owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": bundle.name,
                 "uid": obj["metadata"]["uid"], "blockOwnerDeletion": False}
        with self._errors(f"set the owner of ConfigMap {bundle.config_map['metadata']['name']}"):
            self.core.patch_namespaced_config_map(bundle.config_map["metadata"]["name"], self.namespace,
                                                  {"metadata": {"ownerReferences": [owner]}},
                                                  _request_timeout=REQUEST_TIMEOUT_S)
        return Submitted(bundle.name, self.namespace, created, int(obj["metadata"].get("generation", 1)),
                         obj["spec"].get("planHash", ""))

    def _apply_config_map(self, config_map: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        name = config_map["metadata"]["name"]
        with self._errors(f"create ConfigMap {name} in namespace {self.namespace}"):
            try:
                self.core.create_namespaced_config_map(self.namespace, config_map, _request_timeout=REQUEST_TIMEOUT_S)
                return
            except ApiException as err:
                if err.status != 409:
                    raise
        with self._errors(f"update ConfigMap {name} in namespace {self.namespace}"):
            # replace, not patch: a key the new plan no longer has (a pool's program) must go
            current = self.core.read_namespaced_config_map(name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S)
            meta = {**config_map["metadata"], "resourceVersion": current.metadata.resource_version}
            if current.metadata.owner_references:
                meta["ownerReferences"] = self.api.sanitize_for_serialization(current.metadata.owner_references)
            body = {**config_map, "metadata": meta}
            self.core.replace_namespaced_config_map(name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT_S)

    def _create_or_replace(self, name: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        with self._errors(f"create AgentDeployment {name} in namespace {self.namespace}"):
            try:
                return True, self.objects.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, body, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as err:
                if err.status != 409 or _reason(err) != "AlreadyExists":
                    raise
        for attempt in range(_UPDATE_TRIES):
            with self._errors(f"update AgentDeployment {name} in namespace {self.namespace}"):
                current = self.get(name)
                # keep what others own (labels, annotations: kopf's progress, finalizers); the spec is ours
                meta = {**current["metadata"], **body["metadata"]}
                try:
                    return False, self.objects.replace_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, name, {**current, **body, "metadata": meta},
                        _request_timeout=REQUEST_TIMEOUT_S)
                except ApiException as err:
                    if err.status != 409 or attempt == _UPDATE_TRIES - 1:
                        raise
        raise AssertionError("unreachable")

    # --- status and delete -----------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any]:
        with self._errors(f"get AgentDeployment {name} in namespace {self.namespace}"):
            obj: dict[str, Any] = self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_S)
        return obj

    def find(self, name: str) -> dict[str, Any] | None:
        """The resource, or None where there is none of that name (other failures raise ClusterAPIError)."""
        try:
            return self.get(name)
        except ClusterAPIError as err:
            if err.status == 404 and err.reason == "NotFound":
                return None
            raise

    def status(self, name: str) -> tuple[dict[str, Any], AgentDeploymentStatus]:
        """The resource, and its status as the model (kopf's own fields under status are dropped)."""
        obj = self.get(name)
        known = set(AgentDeploymentStatus.model_fields) | {f.alias for f in AgentDeploymentStatus.model_fields.values()
                                                          if f.alias}
        status = {k: v for k, v in (obj.get("status") or {}).items() if k in known}
        return obj, AgentDeploymentStatus.model_validate(status)

    def delete(self, name: str) -> None:
        """Delete the resource (its children go with it by owner references) and its ConfigMap."""
        from kubernetes.client.exceptions import ApiException

        with self._errors(f"delete AgentDeployment {name} in namespace {self.namespace}"):
            self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                         _request_timeout=REQUEST_TIMEOUT_S)
        with self._errors(f"delete ConfigMap {config_map_name(name)} in namespace {self.namespace}"):
            try:
                self.core.delete_namespaced_config_map(config_map_name(name), self.namespace,
                                                       _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as err:
                if err.status != 404:   # already gone: the garbage collector was first
                    raise


def _reason(err: Any) -> str:
    return str(body_of(err).get("reason", ""))
