"""Small agents for the cluster tests. `ask`: a tool on CPU workers, then one LLM call on a GPU pool, so a plan of
it has both kinds of pool (a node selector and nvidia.com/gpu for one, cpu and memory for the other). `lookup`: an
encoder, a tool and an LLM, for the pods that attach to a router."""

import os

import plait


@plait.tool(latency_ms=2)
def tidy(text: str) -> str:
    return " ".join(text.split())


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
def ask(text: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("Answer: {t}", t=tidy(text)), max_tokens=32,
                     prompt_tokens=64, output_tokens=32)


@plait.tool(latency_ms=2)
def record(text: str, vec) -> str:   # noqa: ANN001 -- the embedding arrives as a tensor
    """Note the process that ran it and the size of the embedding it received, in the file $PLAIT_NOTES (the
    attached-worker test checks both: the tool pod ran it, the encoder pod's tensor reached it)."""
    with open(os.environ["PLAIT_NOTES"], "a") as notes:
        notes.write(f"{os.getpid()} {vec.shape[-1]} {text}\n")
    return text


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=1)
def lookup(text: str) -> str:
    """An encoder, a tool and an LLM in three pools: a tensor crosses pools (a Gloo pair between two pods)."""
    noted = record(text, plait.embed(text, model="minilm-l6"))
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Answer: {t}", t=noted), max_tokens=8, prompt_tokens=16,
                     output_tokens=8)
