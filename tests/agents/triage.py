"""A new user's triage agent (issue 12 section 3, "an honest p50"): 70 % of tickets take a 1 ms tool after a ~5 ms
classifier, 30 % a research sub-agent of many seconds. The median request never runs the research arm."""

import plait


@plait.tool(latency_ms=2)
def category(label: str) -> str:
    return "research" if "hard" in label else "quick"

@plait.tool(latency_ms=1, output_tokens=30)
def split(ticket: str) -> list[str]:
    return [s for s in ticket.split("?") if s.strip()][:4]

@plait.tool(latency_ms=1)
def good_enough(draft: str) -> bool:
    return "DONE" in draft

@plait.agent
def research(ticket: str) -> str:
    parts = split(ticket)
    notes = plait.map(lambda q: plait.llm("llama-3.2-1b", prompt=plait.prompt("Answer briefly: {q}", q=q),
                                          max_tokens=120, temperature=0.7, top_p=0.9, seed=7), parts,
                      expected_len=plait.Dist.uniform(2, 4))
    def refine(draft):
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("Improve: {d}\nNotes: {n}", d=draft, n=notes),
                         max_tokens=300, stop=["\n\n###"])
    return plait.loop(refine, init=ticket, until=good_enough, max_iters=3, expected_iters=plait.Dist.uniform(1, 3))

@plait.tool(latency_ms=1, output_tokens=200)
def quick(ticket: str) -> str:
    return "See the FAQ."

@plait.agent(sla=plait.SLA(p95_ms=20000, p50_ms=8000, ttft_ms=3000, tpot_ms=80), qps=3)
def triage(ticket: str) -> str:
    label = plait.llm("qwen2.5-32b@small", prompt=plait.prompt("Label easy or hard: {t}", t=ticket),
                      max_tokens=4, temperature=0.0)
    return plait.branch(category(label), ticket, arms=[quick, research], p=[0.7, 0.3])
