// RUN: prefix-reuse
// Two prefills of one model whose templates start alike: the second reads the common start
// ("You are terse. ", 15 characters = 3.75 tokens) from the cache. Another model, or another start,
// reads nothing.
builtin.module {
  func.func @calls(%q: !agent.text) -> !agent.text {
    %p = op.format(%q) {template = "You are terse. Answer: {0}"} : (!agent.text) -> !agent.text
    %t = op.tokenize %p {model = "llama-3.1-8b", tokens = #agent.dist<40.0, 40.0>} : !agent.text -> !agent.tokens<"llama-3.1-8b">
    %kv = op.prefill(%t : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<40.0, 40.0>} -> !agent.kv<"llama-3.1-8b">
    %p2 = op.format(%q) {template = "You are terse. Translate: {0}"} : (!agent.text) -> !agent.text
    %t2 = op.tokenize %p2 {model = "llama-3.1-8b", tokens = #agent.dist<41.0, 41.0>} : !agent.text -> !agent.tokens<"llama-3.1-8b">
    %kv2 = op.prefill(%t2 : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<41.0, 41.0>} -> !agent.kv<"llama-3.1-8b">
    %t3 = op.tokenize %p {model = "llama-3.2-1b", tokens = #agent.dist<40.0, 40.0>} : !agent.text -> !agent.tokens<"llama-3.2-1b">
    %kv3 = op.prefill(%t3 : !agent.tokens<"llama-3.2-1b">) {model = "llama-3.2-1b", prompt_tokens = #agent.dist<40.0, 40.0>} -> !agent.kv<"llama-3.2-1b">
    %p4 = op.format(%q) {template = "Bonjour: {0}"} : (!agent.text) -> !agent.text
    %t4 = op.tokenize %p4 {model = "llama-3.1-8b", tokens = #agent.dist<36.0, 36.0>} : !agent.text -> !agent.tokens<"llama-3.1-8b">
    %kv4 = op.prefill(%t4 : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<36.0, 36.0>} -> !agent.kv<"llama-3.1-8b">
    func.return %q : !agent.text
  }
}
// CHECK: %kv = op.prefill(%t : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<40.0, 40.0>} ->
// CHECK: %kv2 = op.prefill(%t2 : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<41.0, 41.0>, prefix_tokens = 3.750000e+00 : f64} ->
// CHECK-NOT: prefix_tokens
// CHECK: func.return

// -----
// RUN: prefix-reuse
// A map's elements share their instruction (27 characters = 6.75 tokens) with the element before: 3 of 4
// share it, 5.06 tokens on average. A loop whose prompt starts with the carried transcript shares the
// transcript (100 tokens less 2.75 of template text) with the iteration before: 1 of 2, 48.62 on average.
builtin.module {
  func.func @repeats(%q: !agent.text, %docs: !agent.docs) -> !agent.text {
    %n = agent.count %docs : !agent.docs
    %zero = arith.constant 0 : index
    %one = arith.constant 1 : index
    %acc = agent.empty : !agent.texts
    %map = scf.for %i = %zero to %n step %one iter_args(%acc_1 = %acc) -> (!agent.texts) {
      %d = agent.item %docs[%i] : !agent.docs
      %p = op.format(%d) {template = "Summarize in one sentence: {0}"} : (!agent.text) -> !agent.text
      %t = op.tokenize %p {model = "llama-3.2-1b", tokens = #agent.dist<107.0, 107.0>} : !agent.text -> !agent.tokens<"llama-3.2-1b">
      %kv = op.prefill(%t : !agent.tokens<"llama-3.2-1b">) {model = "llama-3.2-1b", prompt_tokens = #agent.dist<107.0, 107.0>} -> !agent.kv<"llama-3.2-1b">
      %g = op.decode %kv {model = "llama-3.2-1b", max_tokens = 32 : i64, output_tokens = #agent.dist<32.0, 32.0>, sampling = #agent.sampling<{temperature = 0.0, top_p = 1.0}>} : !agent.kv<"llama-3.2-1b"> -> !agent.tokens<"llama-3.2-1b">
      %s = op.detokenize %g {model = "llama-3.2-1b", tokens = #agent.dist<32.0, 32.0>} : !agent.tokens<"llama-3.2-1b"> -> !agent.text
      %acc_2 = agent.append %acc_1, %s : !agent.texts, !agent.text
      scf.yield %acc_2 : !agent.texts
    } {agent.len = #agent.dist<4.0, 4.0>}
    %loop = scf.while (%transcript = %q) : (!agent.text) -> !agent.text {
      %p2 = op.format(%transcript) {template = "{0}\0ANext step:"} : (!agent.text) -> !agent.text
      %t2 = op.tokenize %p2 {model = "llama-3.1-8b", tokens = #agent.dist<100.0, 100.0>} : !agent.text -> !agent.tokens<"llama-3.1-8b">
      %kv2 = op.prefill(%t2 : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<100.0, 100.0>} -> !agent.kv<"llama-3.1-8b">
      %g2 = op.decode %kv2 {model = "llama-3.1-8b", max_tokens = 32 : i64, output_tokens = #agent.dist<32.0, 32.0>, sampling = #agent.sampling<{temperature = 0.0, top_p = 1.0}>} : !agent.kv<"llama-3.1-8b"> -> !agent.tokens<"llama-3.1-8b">
      %next = op.detokenize %g2 {model = "llama-3.1-8b", tokens = #agent.dist<32.0, 32.0>} : !agent.tokens<"llama-3.1-8b"> -> !agent.text
      %done = op.py_call(%next) {tool = "is_done", latency_ms = #agent.dist<0.1, 0.1>, cpu = 1.000000e+00 : f64} : (!agent.text) -> i1
      %true = arith.constant true
      %go = arith.xori %done, %true : i1
      scf.condition(%go) %next : !agent.text
    } do {
    ^bb0(%x: !agent.text):
      scf.yield %x : !agent.text
    } attributes {agent.max_iters = 4 : i64, agent.iters = #agent.dist<2.0, 3.0>}
    func.return %loop : !agent.text
  }
}
// CHECK: %kv = op.prefill(%t : !agent.tokens<"llama-3.2-1b">) {model = "llama-3.2-1b", prompt_tokens = #agent.dist<107.0, 107.0>, prefix_tokens = 5.060000e+00 : f64}
// CHECK: %kv2 = op.prefill(%t2 : !agent.tokens<"llama-3.1-8b">) {model = "llama-3.1-8b", prompt_tokens = #agent.dist<100.0, 100.0>, prefix_tokens = 4.862000e+01 : f64}
