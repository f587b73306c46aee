"""Tokenize and detokenize (op.tokenize, op.detokenize) with the model's tokenizer.

A model with a checkpoint folder uses its tokenizer.json (the tokenizers package); one without runs on random
weights, and its text goes through a byte-level tokenizer (ids 0-255: one per UTF-8 byte), as the engine's
`load_tokenizer` does (plait.codegen.engine.tokenizer, which this kernel defers to once merged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from plait.codegen.program import Step


class TextTokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """One token per UTF-8 byte; ids outside 0-255 (a random-weight model's) decode to nothing."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A tokenizer.json through the tokenizers package (no transformers needed)."""

    def __init__(self, path: Path, special_tokens: bool = False) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()      # a tokenizer.json may pad or cut for batches; a kernel wants the ids
        self.tokenizer.no_truncation()
        self.vocab_size = self.tokenizer.get_vocab_size()
        self.special_tokens = special_tokens

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=self.special_tokens).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


def load_tokenizer(folder: str | Path | None) -> TextTokenizer:
    """The folder's tokenizer.json when there is one, else the byte-level tokenizer."""
    if folder is not None and (Path(folder) / "tokenizer.json").is_file():
        return HFTokenizer(Path(folder) / "tokenizer.json")
    return ByteTokenizer()


class Tokenizer:
    """op.tokenize (text -> int64 ids) or op.detokenize (ids -> text) for one model."""

    def __init__(self, op: str, folder: Path | None = None) -> None:
        self.op, self.folder = op, folder
        self.tokenizer: TextTokenizer | None = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> Tokenizer:
        return cls(step.op, context.checkpoints.get(step.model or ""))

    def load(self) -> None:
        self.tokenizer = load_tokenizer(self.folder)

    def __call__(self, value: Any) -> Any:
        import torch

        if self.tokenizer is None:
            self.load()
        assert self.tokenizer is not None
        if self.op == "op.tokenize":
            return torch.tensor(self.tokenizer.encode(str(value)), dtype=torch.int64)
        ids = value.tolist() if hasattr(value, "tolist") else list(value)
        return self.tokenizer.decode([int(i) for i in ids])
