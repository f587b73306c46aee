"""`plait serve`: agents and the built-in LLM engine behind authenticated HTTP APIs (FastAPI on uvicorn).

agent_app: POST /v1/agents/{name}/invoke over a LocalRun's driver; openai_app: /v1/completions and
/v1/chat/completions over one in-process LLMEngine; admission, security, metrics and server are shared.
"""
