// The agent dialect for upstream MLIR, written by hand to match plait/ir/dialects/agent.py
// (tests/test_ir_upstream.py keeps every op, operand, result and attribute name in step).
// Every slot has its own constraint value: IRDL binds a constraint value to one attribute or type, so
// slots sharing one would be forced equal. For the same reason all values of one variadic slot must
// share one type upstream (tests/test_ir_upstream.py pins this limit).
// IRDL ops have no traits, so none can end a region: control flow is scf (scf.while, scf.index_switch,
// scf.for, ending in scf.yield / scf.condition) with agent ops inside, and func.call for sub-agents.
// Planning figures are #agent.dist<mean, p95>; token values name their tokenizer's model.
irdl.dialect @agent {
  irdl.type @text
  irdl.type @texts
  irdl.type @json
  irdl.type @tokens {
    %model = irdl.base "#builtin.string"
    irdl.parameters(model: %model)
  }
  irdl.type @kv {
    %model = irdl.base "#builtin.string"
    irdl.parameters(model: %model)
  }
  irdl.type @vec
  irdl.type @docs
  irdl.type @audio
  irdl.attribute @dist {
    %mean = irdl.base "#builtin.float"
    %p95 = irdl.base "#builtin.float"
    irdl.parameters(mean: %mean, p95: %p95)
  }
  // How an LLM call samples: one dictionary {temperature, top_p[, seed][, stop]}; plait's verifier checks the
  // keys and ranges, upstream the shape.
  irdl.attribute @sampling {
    %params = irdl.base "#builtin.dictionary"
    irdl.parameters(params: %params)
  }

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
    %prompt_tokens = irdl.base @agent::@dist
    %output_tokens = irdl.base @agent::@dist
    %sampling = irdl.base @agent::@sampling
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "output_tokens" = %output_tokens, "sampling" = %sampling}
  }

  irdl.operation @stt {
    %audio = irdl.base @agent::@audio
    irdl.operands(audio: %audio)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %prompt_tokens = irdl.base @agent::@dist
    %output_tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "output_tokens" = %output_tokens}
  }

  irdl.operation @tts {
    %text = irdl.base @agent::@text
    irdl.operands(text: %text)
    %result = irdl.base @agent::@audio
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %vocoder = irdl.base "#builtin.string"
    %max_tokens = irdl.base "#builtin.integer"
    %prompt_tokens = irdl.base @agent::@dist
    %output_tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "vocoder" = %vocoder, "max_tokens" = %max_tokens, "prompt_tokens" = %prompt_tokens, "output_tokens" = %output_tokens}
  }

  irdl.operation @embed {
    %text0 = irdl.base @agent::@text
    %text1 = irdl.base @agent::@texts
    %text = irdl.any_of(%text0, %text1)
    irdl.operands(text: %text)
    %result = irdl.base @agent::@vec
    irdl.results(result: %result)
    %model = irdl.base "#builtin.string"
    %input_tokens = irdl.base @agent::@dist
    irdl.attributes {"model" = %model, "input_tokens" = %input_tokens}
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
    %latency_ms = irdl.base @agent::@dist
    %cpu = irdl.base "#builtin.float"
    irdl.attributes {"tool" = %tool, "latency_ms" = %latency_ms, "cpu" = %cpu}
  }

  irdl.operation @gather {
    %parts = irdl.any
    irdl.operands(parts: variadic %parts)
    %result0 = irdl.base @agent::@texts
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
  }

  // Plumbing: box carries a value of any type into a variadic slot of mixed types.
  irdl.operation @box {
    %value = irdl.any
    irdl.operands(value: %value)
    %result = irdl.base @agent::@json
    irdl.results(result: %result)
  }

  irdl.operation @select_arm {
    %selector0 = irdl.base @agent::@text
    %selector1 = irdl.is i1
    %selector = irdl.any_of(%selector0, %selector1)
    irdl.operands(selector: %selector)
    %result = irdl.is index
    irdl.results(result: %result)
    %arms = irdl.base "#builtin.array"
    irdl.attributes {"arms" = %arms}
  }

  // Lists, for the scf.for of a map.
  irdl.operation @count {
    %items0 = irdl.base @agent::@texts
    %items1 = irdl.base @agent::@docs
    %items = irdl.any_of(%items0, %items1)
    irdl.operands(items: %items)
    %result = irdl.is index
    irdl.results(result: %result)
  }

  irdl.operation @item {
    %items0 = irdl.base @agent::@texts
    %items1 = irdl.base @agent::@docs
    %items = irdl.any_of(%items0, %items1)
    %index = irdl.is index
    irdl.operands(items: %items, index: %index)
    %result = irdl.base @agent::@text
    irdl.results(result: %result)
  }

  irdl.operation @empty {
    %result0 = irdl.base @agent::@texts
    %result1 = irdl.base @agent::@json
    %result = irdl.any_of(%result0, %result1)
    irdl.results(result: %result)
  }

  // One constraint value for the list and the result: upstream checks they have one type.
  irdl.operation @append {
    %list0 = irdl.base @agent::@texts
    %list1 = irdl.base @agent::@json
    %list = irdl.any_of(%list0, %list1)
    %value = irdl.any
    irdl.operands(list: %list, value: %value)
    irdl.results(result: %list)
  }
}
