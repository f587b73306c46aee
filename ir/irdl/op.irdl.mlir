// The op dialect for upstream MLIR, written by hand to match plait/ir/dialects/op.py
// (tests/test_ir_upstream.py keeps every op, operand, result and attribute name in step).
// Every slot has its own constraint value: IRDL binds a constraint value to one attribute or type, so
// slots sharing one would be forced equal. For the same reason all values of one variadic slot must
// share one type upstream (tests/test_ir_upstream.py pins this limit).
// Its values are agent types (!agent.tokens, !agent.kv<"model">, ...): load agent.irdl.mlir with it.
irdl.dialect @op {
  irdl.operation @format {
    %args = irdl.any
    irdl.operands(args: variadic %args)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
    %template = irdl.base "#builtin.string"
    irdl.attributes {"template" = %template}
  }

  irdl.operation @tokenize {
    %text0 = irdl.base @agent::@text
    %text1 = irdl.base @agent::@texts
    %text = irdl.any_of(%text0, %text1)
    irdl.operands(text: %text)
    %result = irdl.base @agent::@tokens
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %tokens = irdl.base "#builtin.float"
    %tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "tokens" = %tokens, "tokens_p95" = %tokens_p95}
  }

  irdl.operation @detokenize {
    %tokens_in = irdl.base @agent::@tokens
    irdl.operands(tokens_in: %tokens_in)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %tokens = irdl.base "#builtin.float"
    %tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "tokens" = %tokens, "tokens_p95" = %tokens_p95}
  }

  irdl.operation @prefill {
    %prompt = irdl.base @agent::@tokens
    %context = irdl.base @agent::@vec
    irdl.operands(prompt: optional %prompt, context: optional %context)
    %kv = irdl.base @agent::@kv
    irdl.results(kv: %kv)
    %model = irdl.base "#builtin.string"
    %prompt_tokens = irdl.base "#builtin.float"
    %prompt_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "prompt_tokens" = %prompt_tokens, "prompt_tokens_p95" = %prompt_tokens_p95}
  }

  irdl.operation @decode {
    %kv = irdl.base @agent::@kv
    irdl.operands(kv: %kv)
    %result = irdl.base @agent::@tokens
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %output_tokens = irdl.base "#builtin.float"
    %output_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "output_tokens" = %output_tokens, "output_tokens_p95" = %output_tokens_p95}
  }

  irdl.operation @encode {
    %input0 = irdl.base @agent::@tokens
    %input1 = irdl.base @agent::@audio
    %input = irdl.any_of(%input0, %input1)
    irdl.operands(input: %input)
    %result = irdl.base @agent::@vec
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %tokens = irdl.base "#builtin.float"
    %tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "tokens" = %tokens, "tokens_p95" = %tokens_p95}
  }

  irdl.operation @vocode {
    %codes = irdl.base @agent::@tokens
    irdl.operands(codes: %codes)
    %result = irdl.base @agent::@audio
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %tokens = irdl.base "#builtin.float"
    %tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "tokens" = %tokens, "tokens_p95" = %tokens_p95}
  }

  irdl.operation @ann_search {
    %query = irdl.base @agent::@vec
    irdl.operands(query: %query)
    %result = irdl.base @agent::@docs
    irdl.results(result: %result)
    %index = irdl.base "#builtin.string"
    %k = irdl.base "#builtin.integer"
    %doc_tokens = irdl.base "#builtin.integer"
    %index_docs = irdl.base "#builtin.integer"
    %dim = irdl.base "#builtin.integer"
    irdl.attributes {"index" = %index, "k" = %k, "doc_tokens" = %doc_tokens, "index_docs" = %index_docs, "dim" = %dim}
  }

  irdl.operation @py_call {
    %args = irdl.any
    irdl.operands(args: variadic %args)
    %result = irdl.any
    irdl.results(result: %result)
    %tool = irdl.base "#builtin.string"
    %latency_ms = irdl.base "#builtin.float"
    %latency_ms_p95 = irdl.base "#builtin.float"
    %cpu = irdl.base "#builtin.float"
    irdl.attributes {"tool" = %tool, "latency_ms" = %latency_ms, "latency_ms_p95" = %latency_ms_p95, "cpu" = %cpu}
  }
}
