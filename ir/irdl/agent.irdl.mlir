// The agent dialect for upstream MLIR, written by hand to match plait/ir/dialects/agent.py
// (tests/test_ir_upstream.py keeps every op, operand, result and attribute name in step).
// Every slot has its own constraint value: IRDL binds a constraint value to one attribute or type, so
// slots sharing one would be forced equal. For the same reason all values of one variadic slot must
// share one type upstream (tests/test_ir_upstream.py pins this limit).
// IRDL ops have no traits, so control flow names func.func bodies by symbol instead of holding regions.
irdl.dialect @agent {
  irdl.type @text
  irdl.type @texts
  irdl.type @json
  irdl.type @tokens
  irdl.type @kv {
    %model = irdl.base "#builtin.string"
    irdl.parameters(model: %model)
  }
  irdl.type @vec
  irdl.type @docs
  irdl.type @audio

  irdl.operation @prompt {
    %args = irdl.any
    irdl.operands(args: variadic %args)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
    %template = irdl.base "#builtin.string"
    irdl.attributes {"template" = %template}
  }

  irdl.operation @llm_call {
    %prompt = irdl.base @agent::@text
    irdl.operands(prompt: %prompt)
    %result0 = irdl.base @agent::@text
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %prompt_tokens = irdl.base "#builtin.float"
    %prompt_tokens_p95 = irdl.base "#builtin.float"
    %output_tokens = irdl.base "#builtin.float"
    %output_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "prompt_tokens_p95" = %prompt_tokens_p95, "output_tokens" = %output_tokens, "output_tokens_p95" = %output_tokens_p95}
  }

  irdl.operation @stt {
    %audio = irdl.base @agent::@audio
    irdl.operands(audio: %audio)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %prompt_tokens = irdl.base "#builtin.float"
    %prompt_tokens_p95 = irdl.base "#builtin.float"
    %output_tokens = irdl.base "#builtin.float"
    %output_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "prompt_tokens_p95" = %prompt_tokens_p95, "output_tokens" = %output_tokens, "output_tokens_p95" = %output_tokens_p95}
  }

  irdl.operation @tts {
    %text = irdl.base @agent::@text
    irdl.operands(text: %text)
    %result = irdl.base @agent::@audio
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %vocoder = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %prompt_tokens = irdl.base "#builtin.float"
    %prompt_tokens_p95 = irdl.base "#builtin.float"
    %output_tokens = irdl.base "#builtin.float"
    %output_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "vocoder" = %vocoder, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "prompt_tokens_p95" = %prompt_tokens_p95, "output_tokens" = %output_tokens, "output_tokens_p95" = %output_tokens_p95}
  }

  irdl.operation @embed {
    %text0 = irdl.base @agent::@text
    %text1 = irdl.base @agent::@texts
    %text = irdl.any_of(%text0, %text1)
    irdl.operands(text: %text)
    %result = irdl.base @agent::@vec
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %input_tokens = irdl.base "#builtin.float"
    %input_tokens_p95 = irdl.base "#builtin.float"
    irdl.attributes {"model" = %model, "input_tokens" = %input_tokens, "input_tokens_p95" = %input_tokens_p95}
  }

  irdl.operation @retrieve {
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

  irdl.operation @tool_call {
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

  irdl.operation @gather {
    %parts = irdl.any
    irdl.operands(parts: variadic %parts)
    %result0 = irdl.base @agent::@texts
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
  }

  // Plumbing: box/unbox carry a value of any type through a variadic slot of mixed types.
  irdl.operation @box {
    %value = irdl.any
    irdl.operands(value: %value)
    %result = irdl.base @agent::@json
    irdl.results(result: %result)
  }

  irdl.operation @unbox {
    %boxed = irdl.base @agent::@json
    irdl.operands(boxed: %boxed)
    %result = irdl.any
    irdl.results(result: %result)
  }

  irdl.operation @select_arm {
    %selector0 = irdl.base @agent::@text
    %selector1 = irdl.is i1
    %selector = irdl.any_of(%selector0, %selector1)
    irdl.operands(selector: %selector)
    %result = irdl.is i64
    irdl.results(result: %result)
    %arms = irdl.base "#builtin.array"
    irdl.attributes {"arms" = %arms}
  }

  irdl.operation @loop {
    %invariants = irdl.any
    %inits = irdl.any
    irdl.operands(invariants: variadic %invariants, inits: variadic %inits)
    %results_ = irdl.any
    irdl.results(results_: variadic %results_)
    %body = irdl.base "#builtin.symbol_ref"
    %max_iters = irdl.base "#builtin.integer"
    %expected_iters = irdl.base "#builtin.float"
    %expected_iters_p95 = irdl.base "#builtin.float"
    irdl.attributes {"body" = %body, "max_iters" = %max_iters, "expected_iters" = %expected_iters, "expected_iters_p95" = %expected_iters_p95}
  }

  irdl.operation @branch {
    %selector = irdl.is i64
    %args = irdl.any
    irdl.operands(selector: %selector, args: variadic %args)
    %results_ = irdl.any
    irdl.results(results_: variadic %results_)
    %arms = irdl.base "#builtin.array"
    %probabilities = irdl.base "#builtin.array"
    irdl.attributes {"arms" = %arms, "probabilities" = %probabilities}
  }

  irdl.operation @map {
    %items0 = irdl.base @agent::@texts
    %items1 = irdl.base @agent::@docs
    %items = irdl.any_of(%items0, %items1)
    %invariants = irdl.any
    irdl.operands(items: %items, invariants: variadic %invariants)
    %result0 = irdl.base @agent::@texts
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
    %body = irdl.base "#builtin.symbol_ref"
    %expected_len = irdl.base "#builtin.float"
    %expected_len_p95 = irdl.base "#builtin.float"
    irdl.attributes {"body" = %body, "expected_len" = %expected_len, "expected_len_p95" = %expected_len_p95}
  }

  irdl.operation @call {
    %args = irdl.any
    irdl.operands(args: variadic %args)
    %results_ = irdl.any
    irdl.results(results_: variadic %results_)
    %callee = irdl.base "#builtin.symbol_ref"
    irdl.attributes {"callee" = %callee}
  }
}
