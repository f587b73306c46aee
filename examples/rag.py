"""Retrieval-augmented answering: embed the question, fetch eight passages, answer with one LLM call.

    plait graph examples/rag.py:answer
"""

import plait

TEMPLATE = """Answer the question using only the passages below; cite them as [n].

Passages:
{docs}

Question: {q}
Answer:"""


@plait.agent(sla=plait.SLA(p95_ms=2000, ttft_ms=600), qps=5)
def answer(question: str) -> str:
    docs = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=8, doc_tokens=100)
    return plait.llm("llama-3.1-8b", prompt=plait.prompt(TEMPLATE, q=question, docs=docs),
                     max_tokens=256, prompt_tokens=900, output_tokens=plait.Dist.normal(160, 40))
