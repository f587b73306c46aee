"""A search index on disk, as `plait index build` writes it and the vector-search kernel loads it.

    INDEX/index.json          {"format": "plait.index/1", "model": "minilm-l6", "dim": 384, "count": N, ...}
    INDEX/embeddings.safetensors   "embeddings": float32 [N, dim], L2-normalized (inner product = cosine)
    INDEX/passages.jsonl      one {"id": i, "source": "file.txt", "text": "..."} per row, in row order

safetensors rather than torch.save: loading an index never unpickles anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from plait.codegen.errors import CodegenError

INDEX_FORMAT = "plait.index/1"


@dataclass
class Index:
    meta: dict[str, Any]
    embeddings: torch.Tensor
    passages: list[dict[str, Any]]


def read_passages(docs: Path) -> list[dict[str, Any]]:
    """Passages of every .txt and .md file under `docs` (sorted by path): paragraphs split at blank lines."""
    files = sorted(p for p in docs.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
    if not files:
        raise CodegenError(f"no .txt or .md files under {str(docs)!r}\n  To fix: give a folder of text files; "
                           "each paragraph (text between blank lines) becomes one passage.")
    passages: list[dict[str, Any]] = []
    for path in files:
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(para.split())
            if text and not text.startswith("#"):
                passages.append({"id": len(passages), "source": str(path.relative_to(docs)), "text": text})
    return passages


def build_index(docs: Path, out: Path, model: str, embed: Callable[[list[str]], torch.Tensor],
                batch: int = 64) -> dict[str, Any]:
    """Embed every passage of `docs` with `embed` and write the index to `out`; returns index.json's content."""
    from safetensors.torch import save_file

    start = time.perf_counter()
    passages = read_passages(docs)
    texts = [p["text"] for p in passages]
    vectors = torch.cat([embed(texts[i:i + batch]) for i in range(0, len(texts), batch)])
    vectors = torch.nn.functional.normalize(vectors.to(torch.float32), dim=-1)
    out.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": vectors.contiguous()}, str(out / "embeddings.safetensors"))
    with (out / "passages.jsonl").open("w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    meta = {"format": INDEX_FORMAT, "model": model, "dim": int(vectors.shape[1]), "count": len(passages),
            "metric": "cosine", "normalized": True, "files": len({p["source"] for p in passages}),
            "seconds": round(time.perf_counter() - start, 2)}
    (out / "index.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def load_index(folder: Path) -> Index:
    """The index in `folder`; CodegenError naming the folder and the fix when it is not one."""
    from safetensors.torch import load_file

    meta_path = folder / "index.json"
    if not meta_path.is_file():
        raise CodegenError(f"{str(folder)!r} is not a plait index (no index.json)\n"
                           "  To fix: build it with `plait index build DOCS_DIR --model minilm-l6 --out DIR`.")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != INDEX_FORMAT:
        raise CodegenError(f"{str(folder)!r} has index format {meta.get('format')!r}, but this plait reads "
                           f"{INDEX_FORMAT!r}\n  To fix: build it again with this plait's `plait index build`.")
    embeddings = load_file(str(folder / "embeddings.safetensors"))["embeddings"]
    with (folder / "passages.jsonl").open(encoding="utf-8") as f:
        passages = [json.loads(line) for line in f]
    if len(passages) != embeddings.shape[0]:
        raise CodegenError(f"{str(folder)!r} holds {embeddings.shape[0]} embeddings but {len(passages)} passages\n"
                           "  To fix: build the index again.")
    return Index(meta, embeddings, passages)
