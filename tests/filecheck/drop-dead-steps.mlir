// RUN: drop-dead-steps
// An LLM call nobody reads goes, with its tokenize, prefill and detokenize; so does an unused format.
// A tool call stays even when nobody reads it (a tool may act on the world).
builtin.module {
  func.func @wasteful(%q: !agent.text) -> !agent.text {
    %t = op.tokenize %q {model = "llama-3.1-70b", tokens = #agent.dist<64.0, 64.0>} : !agent.text -> !agent.tokens<"llama-3.1-70b">
    %kv = op.prefill(%t : !agent.tokens<"llama-3.1-70b">) {model = "llama-3.1-70b", prompt_tokens = #agent.dist<64.0, 64.0>} -> !agent.kv<"llama-3.1-70b">
    %g = op.decode %kv {model = "llama-3.1-70b", max_tokens = 256 : i64, output_tokens = #agent.dist<256.0, 256.0>, sampling = #agent.sampling<{temperature = 0.0, top_p = 1.0}>} : !agent.kv<"llama-3.1-70b"> -> !agent.tokens<"llama-3.1-70b">
    %unread = op.detokenize %g {model = "llama-3.1-70b", tokens = #agent.dist<256.0, 256.0>} : !agent.tokens<"llama-3.1-70b"> -> !agent.text
    %p = op.format(%q) {template = "unused: {0}"} : (!agent.text) -> !agent.text
    %sent = op.py_call(%q) {tool = "send_email", latency_ms = #agent.dist<5.0, 5.0>, cpu = 1.000000e+00 : f64} : (!agent.text) -> !agent.text
    func.return %q : !agent.text
  }
}
// CHECK: func.func @wasteful(%q: !agent.text) -> !agent.text {
// CHECK-NOT: llama-3.1-70b
// CHECK-NOT: unused
// CHECK: %sent = op.py_call(%q) {tool = "send_email"
// CHECK: func.return %q : !agent.text
