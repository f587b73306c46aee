"""Which pools to apply now, and the AgentDeployment's status from what its children report (both pure).

A changed spec rolls the pools one at a time, in the spec's order: a pool whose StatefulSet differs from the
desired one is applied only when every pool before it is settled (at its desired spec, observed by the
StatefulSet controller, all replicas updated and ready). A missing pool is created at once, and an unchanged one
is re-applied (which repairs drift), so a rollout never waits for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plait.cluster.reconcile import ANNOTATION_SPEC_HASH, Desired, PoolChildren, SpecRefused
from plait.cluster.spec import AgentDeploymentStatus, Condition, PoolStatus


@dataclass(frozen=True)
class Step:
    """One reconcile's decision: the pools to apply and those that wait for the pool named `blocked_by`."""

    apply: list[PoolChildren]
    waiting: list[PoolChildren]
    blocked_by: str | None


def _hash(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    return (obj.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SPEC_HASH)


def settled(want: dict[str, Any], have: dict[str, Any] | None) -> bool:
    """Whether a StatefulSet or Deployment `have` runs `want`: same spec hash (Deployments: same replicas),
    its controller has seen its last change, and every replica is updated and ready."""
    if have is None:
        return False
    if want["kind"] == "StatefulSet" and _hash(have) != _hash(want):
        return False
    status = have.get("status") or {}
    replicas = want["spec"]["replicas"]
    return (status.get("observedGeneration", 0) >= have["metadata"].get("generation", 1)
            and status.get("readyReplicas", 0) == replicas and status.get("updatedReplicas", 0) == replicas)


def step(desired: Desired, current: dict[str, dict[str, Any]]) -> Step:
    """The pools to apply given the StatefulSets that exist (`current`, by name)."""
    apply: list[PoolChildren] = []
    waiting: list[PoolChildren] = []
    blocked_by: str | None = None
    for pool in desired.pools:
        have = current.get(pool.name)
        changed = have is not None and _hash(have) != _hash(pool.statefulset)
        if changed and blocked_by is not None:
            waiting.append(pool)
            continue
        apply.append(pool)
        if blocked_by is None and not settled(pool.statefulset, have):
            blocked_by = pool.pool.id
    return Step(apply=apply, waiting=waiting, blocked_by=blocked_by)


def _ready(obj: dict[str, Any] | None) -> int:
    return int(((obj or {}).get("status") or {}).get("readyReplicas", 0))


def _condition(previous: AgentDeploymentStatus, now: str, type_: str, ok: bool, reason: str,
               message: str) -> Condition:
    status = "True" if ok else "False"
    before = next((c for c in previous.conditions if c.type == type_), None)
    since = before.last_transition_time if before is not None and before.status == status else now
    return Condition.model_validate({"type": type_, "status": status, "reason": reason, "message": message,
                                     "last_transition_time": since})


def status(desired: Desired, decided: Step, children: dict[str, dict[str, Any]], generation: int,
           previous: AgentDeploymentStatus, now: str) -> AgentDeploymentStatus:
    """The status that `children` (the objects after this reconcile's applies, by name) give the resource.

    Ready only when every pool and the router are settled. Degraded when they were Ready at this generation and a
    replica has since fallen out; otherwise a resource not Ready is Deploying."""
    pools, short = [], []
    for pool in desired.pools:
        have = children.get(pool.name)
        ready = _ready(have)
        pools.append(PoolStatus(id=pool.pool.id, replicas=pool.pool.replicas, ready_replicas=ready))
        if not settled(pool.statefulset, have):
            short.append(f"{pool.pool.id} {ready}/{pool.pool.replicas}")
    router = children.get(desired.router["metadata"]["name"])
    if not settled(desired.router, router):
        short.append(f"router {_ready(router)}/{desired.router['spec']['replicas']}")
    ready = not short
    was_ready = previous.observed_generation == generation and any(
        c.type in ("Ready", "Degraded") and c.status == "True" for c in previous.conditions)
    degraded = not ready and was_ready and not decided.waiting
    if decided.waiting:
        deploying = ("Rolling", f"pool {decided.blocked_by} updating; waiting: "
                     + ", ".join(p.pool.id for p in decided.waiting))
    else:
        deploying = ("Starting", "not ready: " + ", ".join(short))
    conditions = [
        _condition(previous, now, "Planned", True, "Planned", f"{len(pools)} pools and a router"),
        _condition(previous, now, "Deploying", not ready and not degraded,
                   *(("Deployed", "every pool at its spec") if ready or degraded else deploying)),
        _condition(previous, now, "Ready", ready, *(("AllPoolsReady", "every pool's replicas are ready") if ready
                                                  else ("PoolsNotReady", "not ready: " + ", ".join(short)))),
        _condition(previous, now, "Degraded", degraded, *(("ReplicasUnready", "not ready: " + ", ".join(short))
                                                          if degraded else ("AsPlanned", ""))),
    ]
    return AgentDeploymentStatus(conditions=conditions, pools=pools, endpoint=desired.endpoint,
                                 observed_generation=generation)


def refused(err: SpecRefused, generation: int, previous: AgentDeploymentStatus, now: str) -> AgentDeploymentStatus:
    """The status of a spec the operator will not run: Planned False with the reason and the fix."""
    conditions = [_condition(previous, now, "Planned", False, err.reason, str(err)),
                  _condition(previous, now, "Deploying", False, "NotPlanned", ""),
                  _condition(previous, now, "Ready", False, "NotPlanned", ""),
                  _condition(previous, now, "Degraded", False, "NotPlanned", "")]
    return AgentDeploymentStatus(conditions=conditions, observed_generation=generation)
