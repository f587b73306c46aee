"""Text <-> token ids: a checkpoint's tokenizer.json through the tokenizers package, else a byte-level tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class TextTokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """One token per UTF-8 byte (ids 0-255), for models with random weights or no tokenizer.json.
    Ids above 255 (a model's vocabulary is usually larger) decode to nothing."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A tokenizer.json loaded with the tokenizers package (no transformers needed).

    `special_tokens`: add the tokenizer's own markers ([CLS] ... [SEP] for a BERT encoder, whose embedding
    depends on them); an LLM's prompt gets none."""

    def __init__(self, path: Path, special_tokens: bool = False) -> None:
        # Imported here, not at the top: the engine imports where only torch is installed.
        from tokenizers import Tokenizer

        self.path = path  # grammar libraries build their own token tables from the same file
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()      # a tokenizer.json may pad or cut for batches; callers want the ids
        self.tokenizer.no_truncation()
        self.vocab_size = self.tokenizer.get_vocab_size()
        self.special_tokens = special_tokens

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=self.special_tokens).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def load_tokenizer(folder: str | Path | None) -> TextTokenizer:
    """The folder's tokenizer.json when there is one, else the byte-level tokenizer."""
    if folder is not None and (Path(folder) / "tokenizer.json").is_file():
        return HFTokenizer(Path(folder) / "tokenizer.json")
    return ByteTokenizer()
