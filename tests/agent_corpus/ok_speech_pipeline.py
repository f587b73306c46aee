# expect: ok
"""Audio in, audio out, with a sub-agent in the middle and a map over retrieved passages."""
import plait


@plait.agent
def ground(question: str) -> str:
    docs = plait.retrieve(index="faq", query=plait.embed(question, model="bge-base"), k=3, doc_tokens=80)
    notes = plait.map(lambda d: plait.llm("llama-3.2-1b", prompt=d, max_tokens=40), docs)
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("{n}\n{q}", n=notes, q=question), max_tokens=120,
                     output_tokens=60)


@plait.agent(sla=plait.SLA(p95_ms=6000), qps=2)
def main(audio: bytes) -> bytes:
    return plait.tts(ground(plait.stt(audio, audio_seconds=plait.Dist.uniform(2, 10))))
