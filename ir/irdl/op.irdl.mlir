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
    %model = irdl.base "#builtin.string"
    %result = irdl.parametric @agent::@tokens<%model>
    irdl.results(result: %result)
    %tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "tokens" = %tokens}
  }

  irdl.operation @detokenize {
    %model = irdl.base "#builtin.string"
    %tokens_in = irdl.parametric @agent::@tokens<%model>
    irdl.operands(tokens_in: %tokens_in)
    %result0 = irdl.base @agent::@text
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
    %tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "tokens" = %tokens}
  }

  // One %model for the attribute and the types: upstream checks the tokens and the cache are the model's.
  irdl.operation @prefill {
    %model = irdl.base "#builtin.string"
    %prompt = irdl.parametric @agent::@tokens<%model>
    %context = irdl.base @agent::@vec
    irdl.operands(prompt: optional %prompt, context: optional %context)
    %kv = irdl.parametric @agent::@kv<%model>
    irdl.results(kv: %kv)
    %prompt_tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "prompt_tokens" = %prompt_tokens}
  }

  irdl.operation @decode {
    %model = irdl.base "#builtin.string"
    %kv = irdl.parametric @agent::@kv<%model>
    irdl.operands(kv: %kv)
    %result = irdl.parametric @agent::@tokens<%model>
    irdl.results(result: %result)
    %max_tokens = irdl.base "#builtin.integer"
    %output_tokens = irdl.base @agent::@dist
    %sampling = irdl.base @agent::@sampling
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "output_tokens" = %output_tokens, "sampling" = %sampling}
  }

  irdl.operation @encode {
    %model = irdl.base "#builtin.string"
    %input0 = irdl.parametric @agent::@tokens<%model>
    %input1 = irdl.base @agent::@audio
    %input = irdl.any_of(%input0, %input1)
    irdl.operands(input: %input)
    %result = irdl.base @agent::@vec
    irdl.results(result: %result)
    %tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "tokens" = %tokens}
  }

  irdl.operation @vocode {
    %codes = irdl.base @agent::@tokens
    irdl.operands(codes: %codes)
    %result = irdl.base @agent::@audio
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "tokens" = %tokens}
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
    %latency_ms = irdl.base @agent::@dist
    %cpu = irdl.base "#builtin.float"
    irdl.attributes {"tool" = %tool, "latency_ms" = %latency_ms, "cpu" = %cpu}
  }
}
