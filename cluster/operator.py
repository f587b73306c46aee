"""The operator: kopf handlers that bring each AgentDeployment of one namespace to its children.

One function, `reconcile`, does the work; the create, update and resume handlers, a timer, and a watch on the
children (StatefulSets and Deployments with the operator's label) all call it. It applies the desired children by
server-side apply (idempotent, and a child edited or deleted by hand is put back), rolls a changed spec one pool
at a time (cluster.rollout), deletes pools the spec dropped, and writes the status.

A field someone else changed makes the apply fail with 409 Conflict: reconcile raises kopf.TemporaryError, so the
change and who made it are logged (and posted as an Event on the resource), and the retry, `retry > 0`, applies
with force and takes the field back. The watch handler is not retried by kopf; the timer's next run is.
kopf keeps its progress and last-handled spec in annotations (prefix plait.dev/), not in status, so status holds
exactly cluster.spec.AgentDeploymentStatus.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client, config
from pydantic import ValidationError

from plait.cluster import rollout
from plait.cluster.children import Children, Conflict
from plait.cluster.rbac import OPERATOR_NAME
from plait.cluster.reconcile import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    Desired,
    Owner,
    SpecRefused,
    Weights,
    desired,
)
from plait.cluster.spec import GROUP, KIND, PLURAL, AgentDeploymentSpec, AgentDeploymentStatus
from plait.sdk.errors import PlaitError

CONFLICT_DELAY_S = 1.0
_CHILD_LABELS = {LABEL_MANAGED_BY: OPERATOR_NAME}


@dataclass
class Shared:
    """What every handler shares through kopf's memo: the API, and one lock per resource so that the watch,
    the timer and the change handlers never reconcile the same resource at once."""

    children: Children
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, uid: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(uid, threading.Lock())


def snapshot(body: Any) -> dict[str, Any]:
    """A plain copy of what reconcile reads from a resource (kopf's bodies are live views)."""
    meta = body["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                         "generation": meta.get("generation", 1), "annotations": dict(meta.get("annotations") or {})},
            "spec": _plain(body.get("spec") or {}), "status": _plain(body.get("status") or {})}


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _previous(status: dict[str, Any]) -> AgentDeploymentStatus:
    known = {f.alias or name for name, f in AgentDeploymentStatus.model_fields.items()}
    try:
        return AgentDeploymentStatus.model_validate({k: v for k, v in status.items() if k in known})
    except ValidationError:
        return AgentDeploymentStatus()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plan(resource: dict[str, Any]) -> tuple[Owner, Desired]:
    meta = resource["metadata"]
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    try:
        spec = AgentDeploymentSpec.model_validate(resource["spec"])
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecRefused("InvalidSpec", f"spec.{where}: {first['msg']}") from None
    return owner, desired(owner, spec, Weights.parse(spec.weights))


def reconcile(shared: Shared, resource: dict[str, Any], force: bool, logger: Any) -> None:
    """Bring `resource` (a snapshot) to its children and write its status. Raises kopf.PermanentError for a spec
    it cannot run (its status says why) and kopf.TemporaryError on a 409 Conflict."""
    meta = resource["metadata"]
    api = shared.children
    previous = _previous(resource["status"])
    with shared.lock(meta["uid"]):
        try:
            owner, want = _plan(resource)
        except SpecRefused as err:
            _write_status(api, meta["name"], previous, rollout.refused(err, meta["generation"], previous, _now()))
            raise kopf.PermanentError(str(err)) from None
        selector = f"{LABEL_DEPLOYMENT}={owner.name}"
        current = {s["metadata"]["name"]: s for s in api.list("StatefulSet", selector) if _owned(s, owner)}
        decided = rollout.step(want, current)
        children: dict[str, dict[str, Any]] = {}
        try:
            children[want.router_config["metadata"]["name"]] = api.apply(want.router_config, force)
            for policy in want.network_policies:
                api.apply(policy, force)
            for pool in decided.apply:
                api.apply(pool.service, force)
                children[pool.name] = after = api.apply(pool.statefulset, force)
                _log_change(logger, pool.name, current.get(pool.name), after)
            for obj in (*want.services, want.router):
                children[obj["metadata"]["name"]] = api.apply(obj, force)
        except Conflict as err:
            raise kopf.TemporaryError(f"409 Conflict: {err}; the retry takes the fields back",
                                      delay=CONFLICT_DELAY_S) from None
        for pool in decided.waiting:
            children[pool.name] = current[pool.name]
        _remove_dropped(api, owner, want, selector, current, logger)
        new = rollout.status(want, decided, children, meta["generation"], previous, _now())
        if decided.waiting and _deploying(new) != _deploying(previous):   # once per step of a rollout
            logger.info(f"rolling: pool {decided.blocked_by} first; waiting: "
                        + ", ".join(p.pool.id for p in decided.waiting))
        _write_status(api, owner.name, previous, new)


def _deploying(status: AgentDeploymentStatus) -> str:
    return next((c.message for c in status.conditions if c.type == "Deploying"), "")


def _owned(obj: dict[str, Any], owner: Owner) -> bool:
    return any(ref.get("uid") == owner.uid for ref in obj["metadata"].get("ownerReferences") or [])


def _log_change(logger: Any, name: str, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    if before is None:
        logger.info(f"StatefulSet {name}: created")
    elif before["metadata"].get("generation") != after["metadata"].get("generation"):   # its spec changed
        logger.info(f"StatefulSet {name}: applied (generation {after['metadata'].get('generation')})")


def _remove_dropped(api: Children, owner: Owner, want: Desired, selector: str, current: dict[str, dict[str, Any]],
                    logger: Any) -> None:
    """Delete the StatefulSets and Services of pools the spec no longer has (only this resource's own)."""
    keep = {p.name for p in want.pools} | {s["metadata"]["name"] for s in want.services}
    for name in sorted(set(current) - keep):
        logger.info(f"StatefulSet {name}: deleted (its pool left the spec)")
        api.delete("StatefulSet", name)
    for service in api.list("Service", selector):
        name = service["metadata"]["name"]
        if name not in keep and _owned(service, owner):
            api.delete("Service", name)


def _write_status(api: Children, name: str, previous: AgentDeploymentStatus, new: AgentDeploymentStatus) -> None:
    if new == previous:
        return
    body = new.model_dump(mode="json", by_alias=True)
    # An empty string reaches the 1.20 server as null, which the schema refuses: leave an empty message out.
    body["conditions"] = [{k: v for k, v in c.items() if v != ""} for c in body["conditions"]]
    api.patch_status(name, body)


def build_registry(resync_s: float) -> kopf.OperatorRegistry:
    """The operator's handlers, in a registry of their own (no module-level state)."""
    registry = kopf.OperatorRegistry()

    @kopf.index(PLURAL, id="agentdeployments_by_uid", registry=registry)
    def agentdeployments_by_uid(uid: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
        return {uid: snapshot(body)}

    @kopf.on.resume(PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(PLURAL, id="reconcile", registry=registry)
    def changed(body: kopf.Body, retry: int, memo: kopf.Memo, logger: Any, **_: Any) -> None:
        reconcile(memo["shared"], snapshot(body), force=retry > 0, logger=logger)

    @kopf.timer(PLURAL, id="resync", interval=resync_s, initial_delay=resync_s, registry=registry)
    def resync(body: kopf.Body, memo: kopf.Memo, logger: Any, retry: int = 0, **_: Any) -> None:
        try:
            reconcile(memo["shared"], snapshot(body), force=retry > 0, logger=logger)
        except kopf.PermanentError:
            pass   # the status already says why; the change handler logged it once

    def child_changed(body: kopf.Body, memo: kopf.Memo, logger: Any, **kwargs: Any) -> None:
        owners: kopf.Index = kwargs["agentdeployments_by_uid"]   # kopf passes each index by its id
        for ref in body.metadata.get("ownerReferences") or []:
            if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
                for owner in owners.get(ref["uid"], []):
                    reconcile(memo["shared"], owner, force=False, logger=logger)

    for plural in ("statefulsets", "deployments"):
        kopf.on.event("apps", "v1", plural, id=f"child-{plural}", labels=_CHILD_LABELS,
                      registry=registry)(child_changed)
    return registry


def _settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/operator"
    # Serve the one namespace asked for: no cluster-wide watch of namespaces or CRDs, so no ClusterRole.
    settings.scanning.disabled = True
    # Warnings and errors (conflicts, refusals) become Events on the resource; every apply would be noise.
    settings.posting.loggers = True
    settings.posting.level = logging.WARNING
    return settings


def default_namespace(kubeconfig: Path | None) -> str:
    """The namespace to serve without -n: the pod's own in a cluster, else the kubeconfig context's, else default."""
    in_pod = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if kubeconfig is None and in_pod.is_file():
        return in_pod.read_text().strip()
    try:
        _, context = config.list_kube_config_contexts(config_file=str(kubeconfig) if kubeconfig else None)
        return str(context.get("context", {}).get("namespace") or "default")
    except config.ConfigException:
        return "default"


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """An API client from `kubeconfig`, or the pod's service account inside a cluster."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    try:
        return config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None)
    except (config.ConfigException, OSError, ValueError) as err:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig ($KUBECONFIG, ~/.kube/config)"
        raise PlaitError(f"{where} is not a usable kubeconfig: {err}\n  To fix: give the kubeconfig of the cluster "
                         "(`kubectl config view --raw` prints yours), or run the operator in a pod") from None


def run(kubeconfig: Path | None, namespace: str, resync_s: float) -> None:
    """Serve `namespace` until SIGINT or SIGTERM."""
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(kubeconfig)   # kopf's own login reads it; this process only
    registry = build_registry(resync_s)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)

    shared = Shared(Children(api_client(kubeconfig), namespace))   # a bad kubeconfig fails here, before kopf
    kopf.configure(log_format=kopf.LogFormat.PLAIN)
    kopf.run(registry=registry, settings=_settings(), standalone=True, namespaces=[namespace],
             memo=kopf.Memo(shared=shared))
