"""The engine's prefill and decode step times on this CPU beside the cost model's prediction: the residuals.

The prediction is plait.planner.costmodel.time_work on this machine as the CPU fit describes it
(planner/calibration.py's local-cpu device, the checked-in CPU factors), for the benchmark model
(bench/_engine_common.py, ~125M parameters, float32, random weights). The engine runs one thread by
default (PLAIT_BENCH_THREADS), so the device is scaled to that many cores: its peak FLOP/s is cores x
clock x FLOP/cycle; its bandwidth stays the measured copy rate (one thread copies about as fast as two
here). A prefill row is one step computing a whole prompt (batch x tokens); a decode row is one step of
`batch` sequences at `ctx` tokens of context, whose KV is imported (random values: the speed is the
same). Best of a few steps. Residual = measured / predicted - 1.
Writes bench/results/engine_costmodel.json. Run: `.venv/bin/python bench/engine_costmodel.py` (~2 minutes).
"""

from __future__ import annotations

import torch
from _engine_common import BENCH_MODEL, CLOCK_NOTE, best_seconds, set_threads, write_results

from plait.codegen.engine import LLMEngine, SamplingParams, random_model
from plait.codegen.engine.model import Transformer
from plait.planner.calibration import cpu_rows
from plait.planner.catalog import Figure, ModelSpec, Source, StackSpec
from plait.planner.costmodel import time_work
from plait.planner.factors import builtin_factors
from plait.planner.fit import CPU_BW_EFF
from plait.planner.workload import decode_work, prefill_work

PREFILLS = [(1, 16), (1, 64), (1, 256), (4, 64)]  # (batch, tokens)
DECODES = [(1, 128), (4, 128), (16, 128), (64, 128), (1, 512), (16, 512), (64, 512)]  # (batch, ctx)


def catalog_model() -> ModelSpec:
    c = BENCH_MODEL
    stack = StackSpec(layers=c.num_layers, d_model=c.hidden_size, heads=c.num_heads, kv_heads=c.num_kv_heads,
                      head_dim=c.head_dim, ffn=c.intermediate_size, vocab=c.vocab_size,
                      tied_embeddings=c.tie_word_embeddings)
    return ModelSpec(name=c.name, source=Source(title="bench/_engine_common.py", url="bench/_engine_common.py"),
                     dtype="fp32", decoder=stack)


def measure_prefill(model: Transformer, batch: int, tokens: int) -> float:
    engine = LLMEngine(model, BENCH_MODEL, max_batch=batch, token_budget=batch * tokens, enable_prefix_reuse=False,
                       num_blocks=batch * (tokens // 16 + 2))
    gen = torch.Generator().manual_seed(tokens)

    def step() -> None:
        for _ in range(batch):
            engine.add_request(torch.randint(0, BENCH_MODEL.vocab_size, (tokens,), generator=gen).tolist(),
                               SamplingParams(max_tokens=1))
        assert len(engine.step()) == batch  # the whole batch of prompts in one step
    return best_seconds(step, reps=2 if tokens >= 256 else 3)


def measure_decode(model: Transformer, batch: int, ctx: int) -> float:
    engine = LLMEngine(model, BENCH_MODEL, role="decode", max_batch=batch, num_blocks=batch * (ctx // 16 + 2))
    c = BENCH_MODEL
    kv = torch.randn(c.num_layers, ctx, c.num_kv_heads, c.head_dim)
    header = {"format": "plait-kv/1", "model": c.name, "arch": c.arch, "num_layers": c.num_layers,
              "num_kv_heads": c.num_kv_heads, "head_dim": c.head_dim, "dtype": "float32", "length": ctx,
              "token_ids": list(range(ctx + 1)), "num_prompt_tokens": ctx, "tp_size": 1}
    for _ in range(batch):
        engine.import_kv(header, {"k": kv, "v": kv}, SamplingParams(max_tokens=12, ignore_eos=True))
    engine.step()  # admits all and writes their KV: not timed
    return best_seconds(lambda: engine.step(), reps=6, warm=1)


def main() -> None:
    threads = set_threads()
    device, _ = cpu_rows(CPU_BW_EFF)
    ghz, fpc = device.clock_ghz.value, device.flops["fp32"].value * 1e3 / (device.cores.value * device.clock_ghz.value)  # type: ignore[union-attr]
    device = device.model_copy(update={
        "cores": Figure(value=threads, unit="cores", tag="assumption", note="the engine's threads"),
        "flops": {"fp32": Figure(value=threads * ghz * fpc / 1e3, unit="TFLOP/s", tag="assumption",
                                 note=f"{threads} core(s) x {ghz} GHz x {fpc:g} FLOP/cycle")}})
    factors = builtin_factors().cpu
    spec = catalog_model()
    model = random_model(BENCH_MODEL, seed=0)
    rows = []
    for batch, tokens in PREFILLS:
        predicted = time_work(prefill_work(spec, batch, tokens), device, factors, mode="eager")
        rows.append({"op": "prefill", "batch": batch, "tokens": tokens, "measured_s": measure_prefill(model, batch, tokens),
                     "predicted_s": predicted["seconds"], "regime": "compute" if predicted["compute_s"] >=
                     predicted["memory_s"] else "bandwidth"})
    for batch, ctx in DECODES:
        predicted = time_work(decode_work(spec, batch, ctx + 3), device, factors, mode="eager")
        rows.append({"op": "decode", "batch": batch, "ctx": ctx, "measured_s": measure_decode(model, batch, ctx),
                     "predicted_s": predicted["seconds"], "regime": "compute" if predicted["compute_s"] >=
                     predicted["memory_s"] else "bandwidth"})
    for r in rows:
        r["residual"] = r["measured_s"] / r["predicted_s"] - 1
    print(f"{BENCH_MODEL.name} ({BENCH_MODEL.n_params() / 1e6:.0f}M params, random weights), float32, "
          f"{threads} thread(s) {CLOCK_NOTE}; cost model: local-cpu at {threads} core(s), checked-in CPU factors")
    print(f"{'op':<8} {'batch':>5} {'tokens/ctx':>10} {'measured ms':>12} {'predicted ms':>13} {'residual':>9}  regime")
    for r in rows:
        print(f"{r['op']:<8} {r['batch']:>5} {r.get('tokens', r.get('ctx')):>10} {r['measured_s'] * 1e3:>12.1f} "
              f"{r['predicted_s'] * 1e3:>13.1f} {r['residual']:>+9.1%}  {r['regime']}-bound")
    errors = sorted(abs(r["residual"]) for r in rows)
    print(f"median |residual| {errors[len(errors) // 2]:.1%}, max {errors[-1]:.1%}")
    write_results("engine_costmodel", {"model": BENCH_MODEL.name, "params": BENCH_MODEL.n_params(),
                                       "random_weights": True, "device": device.name, "rows": rows})


if __name__ == "__main__":
    main()
