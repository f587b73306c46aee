"""A voice assistant: speech in, a web search, one LLM answer, speech out.

    plait graph examples/voice.py:assistant

The workload of "Efficient and Scalable Agentic AI with Heterogeneous Systems" (2025): a
speech-to-text model, a CPU tool with network latency, an LLM, and a text-to-speech model.
"""

from __future__ import annotations

import plait

TEMPLATE = """You are a helpful voice assistant. Answer in at most three short spoken sentences,
without lists or markup.

Search results:
{results}

User said: {question}
Assistant:"""

SNIPPETS = {
    "weather": "Forecast: light rain in the morning, clearing to sun by noon; high of 18 C.",
    "traffic": "Traffic: the ring road is congested near exit 12; allow 15 extra minutes.",
    "news": "Headlines: the city council approved the new cycle lane network on Tuesday.",
    "time": "Local time is reported by the device clock; the search service does not provide it.",
}


@plait.tool(latency_ms=plait.Dist.normal(300, 80), cpu=0.5, output_tokens=120)
def web_search(query: str) -> str:
    """Top snippets for the query from a fixed offline index (a deterministic stand-in for a search API)."""
    words = set(query.lower().replace("?", " ").split())
    hits = [text for topic, text in SNIPPETS.items() if topic in words]
    return "\n".join(f"- {h}" for h in hits) if hits else "- No relevant results."


@plait.agent(sla=plait.SLA(p95_ms=4000, ttft_ms=800), qps=10)
def assistant(audio: bytes) -> bytes:
    question = plait.stt(audio, model="whisper-small", audio_seconds=plait.Dist.uniform(2, 8))
    results = web_search(question)
    reply = plait.llm("llama-3.1-8b", prompt=plait.prompt(TEMPLATE, results=results, question=question),
                      max_tokens=120, output_tokens=plait.Dist.normal(55, 15))
    return plait.tts(reply, model="parler-tts-mini")
