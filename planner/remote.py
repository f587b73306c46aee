"""Remote pools for the solver: an OpenAI-compatible endpoint as one pool option for every call of its model.

An endpoint is given capacity: one unified "replica" of `max_sequences` slots at its declared price. Its latency
comes from the serving model (planner.serving) with the endpoint's measured figures in place of the cost model's:
a step of B calls costs 1 / decode_tokens_per_s(B) seconds, a prompt token 1 / prefill_tokens_per_s, and each
call's first token comes `overhead_s` later (HTTP, the endpoint's scheduling). Calls beyond its slots wait for
admission (M/D/c with c = max_sequences). An endpoint the load would saturate is no option.
"""

from __future__ import annotations

from plait.planner.endpoint import RemoteEndpoint, serves
from plait.planner.grouping import StageGraph
from plait.planner.placement import PoolMember, PoolOption
from plait.planner.pooling import PoolInfo, llm_calls
from plait.planner.serving import GRID, Call, Engine, serve


def remote_engine(endpoint: RemoteEndpoint, model: str, calls: tuple[Call, ...]) -> Engine:
    """The endpoint as the serving model's replica: its slots and measured step and prompt-token times."""
    slots = endpoint.max_sequences
    batches = (*[g for g in GRID if g < slots], slots)
    return Engine(model=model, device=endpoint.device, tp=1, slots=slots, kv_blocks=1,
                  batches=batches, steps=tuple(endpoint.step_s(b) for b in batches),
                  token_s=1.0 / endpoint.prefill_tokens_per_s,
                  prefill_s=tuple(c.computed / endpoint.prefill_tokens_per_s for c in calls),   # overhead: added once, by the caller
                  notes=(f"remote pool {endpoint.name} ({endpoint.base_url}): {endpoint.price_per_hour:g} USD/hour "
                         "declared and its throughput figures measured (the inventory's remote list, from "
                         "`plait cost --remote`), not the cost model's",))


def remote_options(stages: StageGraph, qps: float, endpoints: list[RemoteEndpoint], max_utilization: float = 0.85,
                   ruled_out: dict[str, list[str]] | None = None) -> list[tuple[PoolOption, PoolInfo]]:
    """One pool option per endpoint: every call site of its model, unified, at its price; none where it would
    run past `max_utilization` of its slots or prompt capacity (`ruled_out` gets why, by model)."""
    out: list[tuple[PoolOption, PoolInfo]] = []
    for model, calls in sorted(llm_calls(stages, qps).items()):
        for endpoint in endpoints:
            if not serves(endpoint, model):
                continue
            group = tuple(calls)
            e = remote_engine(endpoint, model, group)
            load = serve(e, group, 1, True, max_utilization)
            if load is None:
                if ruled_out is not None:
                    ruled_out.setdefault(model, []).append(_too_small(endpoint, group, max_utilization))
                continue
            overhead = endpoint.overhead_s
            members = [PoolMember(stage=c.prefill, p95_s=load.prefill95[k] + overhead,
                                  p50_s=load.prefill50[k] + overhead, service_s=load.prefill50[k] + overhead,
                                  utilization=load.utilization) for k, c in enumerate(group)]
            members += [PoolMember(stage=c.decode, p95_s=load.decode95[k], p50_s=load.decode50[k],
                                   service_s=c.output * load.step_s, utilization=load.utilization)
                        for k, c in enumerate(group)]
            label = (f"remote {endpoint.name} ({endpoint.served_model} at {endpoint.base_url}): batch "
                     f"{load.batch:.1f} of {e.slots}, {load.step_s * 1e3:.1f} ms/token")
            out.append((PoolOption(label=label, role="unified", device=endpoint.device, tp=1, replicas=1,
                                   batch=e.slots, price_per_hour=endpoint.price_per_hour, members=members),
                        PoolInfo("unified", model, e.slots, e.kv_blocks, None, load.batch, e.notes,
                                 endpoint=endpoint)))
    return out


def _too_small(endpoint: RemoteEndpoint, calls: tuple[Call, ...], max_utilization: float) -> str:
    """Why an endpoint cannot take the calls: the sequences they keep busy at its measured speed (Little's law)."""
    rate = sum(c.rate for c in calls)
    busy = sum(c.rate * (endpoint.prefill_s(c.computed) + c.output * endpoint.step_s(endpoint.max_sequences))
               for c in calls)
    return (f"{endpoint.device}: {rate:.3g} calls/s would keep {busy:.3g} of its {endpoint.max_sequences} sequences "
            f"busy at its measured speed (at most {max_utilization:.0%}); raise max_sequences if the server takes "
            "more, or add endpoints")
