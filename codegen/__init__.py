"""Device programs and the kernels they bind (LLM engine, encoders, search, tools)."""
