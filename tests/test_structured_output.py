"""Structured output: plait.llm(json_schema=...) is checked at the user's line, carried by the IR (upstream MLIR
parses it), lowered and planned like any LLM call, and decoded under the schema's grammar, so a tool's
arguments always validate; max_tokens running out inside the JSON is a named error."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import jsonschema
import pytest

import plait
from plait.codegen.build import build_programs
from plait.codegen.errors import StructuredOutputTruncated
from plait.codegen.llm import build_engine, sampling_for
from plait.codegen.program import Program
from plait.codegen.structured import json_output
from plait.ir import print_module
from plait.ir.module import parse_module
from plait.ir.pipeline import compile_graph
from plait.ir.upstream import available, check_module
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.sdk.loader import load_agent

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "nights", "tier"],
          "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 10},
                         "nights": {"type": "integer", "minimum": 1, "maximum": 14},
                         "tier": {"enum": ["budget", "standard", "luxury"]}}}
AGENT = '''\
import plait

SCHEMA = __SCHEMA__


@plait.tool
def book(args: dict) -> str:
    return f"booked {args['nights']} {args['tier']} nights in {args['city']}"


@plait.agent(qps=2)
def trip(request: str) -> str:
    args = plait.llm("llama-3.1-8b", plait.prompt("Book this: {r}", r=request), max_tokens=64,
                     temperature=1.0, __ARG__)
    return book(args)
'''


def _agent(tmp_path: Path, schema: str = "json_schema=SCHEMA", name: str = "trip") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(AGENT.replace("__SCHEMA__", repr(SCHEMA)).replace("__ARG__", schema))
    return f"{path}:trip"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> list[Program]:
    target = _agent(tmp_path_factory.mktemp("trip"))
    result = plan_agent(plait.trace(load_agent(target)), source=target, sweep_points=0)
    return build_programs(result.placed, result.plan, load_catalog())


def test_the_schema_reaches_the_ir_and_json_calls_lower_like_text_calls(tmp_path: Path) -> None:
    graph = plait.trace(load_agent(_agent(tmp_path)))
    agent_text = print_module(compile_graph(graph, "agent"))
    call = next(line for line in agent_text.splitlines() if "agent.llm_call" in line)
    assert 'json_schema = "{\\22additionalProperties\\22:false' in call and call.endswith('!agent.json loc("trip.py":13:0)')
    assert print_module(parse_module(agent_text)) == agent_text
    ops = print_module(compile_graph(graph, "ops"))
    assert "json_schema" in next(line for line in ops.splitlines() if "op.decode" in line)
    assert "-> !agent.json" in next(line for line in ops.splitlines() if "op.detokenize" in line)
    assert "agent.llm_call" not in ops


@pytest.mark.skipif(not available(), reason="upstream MLIR bindings (torch-mlir) not installed")
def test_upstream_parses_the_json_call_through_the_irdl(tmp_path: Path) -> None:
    graph = plait.trace(load_agent(_agent(tmp_path)))
    assert "json_schema" in check_module(compile_graph(graph, "agent"))
    assert "!agent.json" in check_module(compile_graph(graph, "ops"))


def test_the_planner_places_the_call_on_an_llm_pool_with_the_schema(programs: list[Program]) -> None:
    llm = next(p for p in programs if p.pool.id.startswith("llm-"))
    decode = next(s for s in llm.steps if s.op == "op.decode")
    assert decode.kernel == "llm-engine" and decode.attrs["sampling"]["json_schema"] == SCHEMA


def test_tool_arguments_from_a_constrained_call_always_validate(programs: list[Program], tmp_path: Path) -> None:
    tool_file = Path(_agent(tmp_path).split(":")[0])
    decode = next(s for p in programs for s in p.steps if s.op == "op.decode")
    engine = build_engine("llama-3.1-8b@tiny", seed=3)          # random weights: only the grammar makes it JSON
    assert engine.random_weights
    params = []
    for seed in range(12):
        p = sampling_for({**decode.attrs, "sampling": {**decode.attrs["sampling"], "seed": seed}}, engine=engine)
        params.append(p)
    outs = engine.generate(["Book this: two nights in Lisbon"] * len(params), params)
    answers = [json_output(o, engine.tokenizer, call="trip.llm", max_tokens=64) for o in outs]
    for answer in answers:
        jsonschema.validate(answer, SCHEMA)
    assert len({json.dumps(a, sort_keys=True) for a in answers}) > 6   # sampled, not one answer repeated
    book = runpy.run_path(str(tool_file))["book"]                       # the user's tool, called with them
    assert all(book(a).startswith(f"booked {a['nights']} {a['tier']} nights") for a in answers)


def test_max_tokens_inside_the_json_is_a_named_error() -> None:
    engine = build_engine("llama-3.1-8b@tiny", seed=3)
    params = sampling_for({"sampling": {"temperature": 1.0, "seed": 1, "json_schema": SCHEMA}, "max_tokens": 5},
                          engine=engine)
    out, = engine.generate(["Book this"], params)
    assert out.finish_reason == "length"
    with pytest.raises(StructuredOutputTruncated, match=r"^LLM call 'trip.llm' reached max_tokens=5 before its "
                                                        r"JSON was complete"):
        json_output(out, engine.tokenizer, call="trip.llm", max_tokens=5)


@pytest.mark.parametrize(("schema", "first"), [
    ('json_schema="{}"', r"plait.llm's json_schema must be a dict \(a JSON Schema\), got str"),
    ('json_schema={"type": "strin"}', r"plait.llm's json_schema is not a JSON Schema constrained decoding "
                                      r"supports: Invalid type: strin"),
    ('json_schema={"type": "object", "default": {1, 2}}', r"plait.llm's json_schema must hold only JSON values"),
])
def test_a_bad_schema_fails_at_the_users_line(tmp_path: Path, schema: str, first: str) -> None:
    with pytest.raises(plait.TraceError, match=f"^{first}") as info:
        plait.trace(load_agent(_agent(tmp_path, schema, name="bad")))
    assert "bad.py:13:" in str(info.value) and "To fix:" in str(info.value)


def test_a_tokenizer_json_vocabulary_is_constrained_too(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from plait.codegen.engine import LLMEngine, ModelConfig, SamplingParams, load_tokenizer, random_model
    from plait.codegen.structured import JsonSchemaConstraint

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    bpe.train_from_iterator(['{"city": "Lisbon", "nights": 3, "tier": "luxury"}'] * 20, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.save(str(tmp_path / "tokenizer.json"))
    tokenizer = load_tokenizer(tmp_path)
    config = ModelConfig(arch="llama", vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128,
                         num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, eos_token_ids=(0,))
    engine = LLMEngine(random_model(config, seed=0), config, tokenizer=tokenizer, num_blocks=64)
    params = [SamplingParams(temperature=1.0, seed=s, max_tokens=64, constraint=JsonSchemaConstraint(
        SCHEMA, tokenizer, config)) for s in range(4)]
    for out in engine.generate(["Book"] * 4, params):
        jsonschema.validate(json_output(out, tokenizer, call="trip.llm", max_tokens=64), SCHEMA)
