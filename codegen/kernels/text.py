"""Tokenize and detokenize (op.tokenize, op.detokenize) with the model's tokenizer.

A model with a checkpoint folder uses its tokenizer.json (the tokenizers package); one without runs on random
weights, and its text goes through a byte-level tokenizer (ids 0-255: one per UTF-8 byte), as the engine's
`load_tokenizer` does (plait.codegen.engine.tokenizer, whose classes this kernel uses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.codegen.engine.tokenizer import ByteTokenizer, HFTokenizer, TextTokenizer, load_tokenizer
from plait.codegen.program import Step

__all__ = ["ByteTokenizer", "HFTokenizer", "TextTokenizer", "Tokenizer", "load_tokenizer"]


class Tokenizer:
    """op.tokenize (text -> int64 ids) or op.detokenize (ids -> text) for one model.

    `special_tokens`: add the tokenizer's own markers ([CLS] ... [SEP] for a BERT encoder, whose embedding
    depends on them); an LLM's prompt gets none (the engine adds what its template needs).
    """

    def __init__(self, op: str, folder: Path | None = None, special_tokens: bool = False) -> None:
        self.op, self.folder, self.special_tokens = op, folder, special_tokens
        self.tokenizer: TextTokenizer | None = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> Tokenizer:
        from plait.codegen.kernels.encoder import bundled_checkpoint
        from plait.planner.catalog import load_catalog

        model = step.model or ""
        spec = load_catalog().model(model) if model else None
        encoder = spec is not None and spec.decoder is None and spec.encoder is not None
        return cls(step.op, context.checkpoints.get(model) or bundled_checkpoint(model), special_tokens=encoder)

    def load(self) -> None:
        if self.folder is not None and (self.folder / "tokenizer.json").is_file():
            self.tokenizer = HFTokenizer(self.folder / "tokenizer.json", self.special_tokens)
        else:
            self.tokenizer = load_tokenizer(None)

    def __call__(self, value: Any) -> Any:
        import torch

        if self.tokenizer is None:
            self.load()
        assert self.tokenizer is not None
        if self.op == "op.tokenize":
            return torch.tensor(self.tokenizer.encode(str(value)), dtype=torch.int64)
        ids = value.tolist() if hasattr(value, "tolist") else list(value)
        return self.tokenizer.decode([int(i) for i in ids])
