"""Text deltas of a growing LLM output, for streaming: decode every token id so far and hand out what is new.

A trailing U+FFFD (an unfinished UTF-8 character) is held back until it completes, and with stop strings the
last len(longest)-1 characters are too (they may be the start of a stop string the engine then cuts off).
finish(final) hands out what is left of the final text, so the deltas always add up to it.
"""

from __future__ import annotations

from typing import Any


class TextStream:
    def __init__(self, tokenizer: Any, stop: list[str]) -> None:
        self.tokenizer, self.sent = tokenizer, ""
        self.ids: list[int] = []
        self.hold = max((len(s) for s in stop), default=1) - 1

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        ready = text[:len(text) - self.hold]
        if len(ready) <= len(self.sent) or not ready.startswith(self.sent):
            return ""
        delta, self.sent = ready[len(self.sent):], ready
        return delta

    def finish(self, final: str) -> str:
        delta = final[len(self.sent):] if final.startswith(self.sent) else ""
        self.sent = final
        return delta
