"""Exact top-k vector search (op.ann_search) over an index `plait index build` wrote, on one of four backends.

    torch   CPU or CUDA: one matmul and topk (the default; always there)
    cupy    CUDA, where cupy is installed (the GPU extra)
    faiss   CPU, where faiss-cpu is installed: IndexFlatIP, the same exact search
All four compute inner products of float32 vectors and return the k best in descending score, so one index
gives the same ids on every backend (tested); cosine similarity is the inner product of normalized vectors,
which is how the index stores them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import torch

from plait.codegen.errors import CodegenError
from plait.codegen.kernels.index import Index, load_index
from plait.codegen.program import Step

Backend = Literal["torch", "cupy", "faiss"]


def available_backends(device: str = "cpu") -> list[Backend]:
    """The backends that can run here for `device` (cpu or cuda)."""
    found: list[Backend] = ["torch"]
    if device.startswith("cuda") and importlib.util.find_spec("cupy") is not None:
        found.append("cupy")
    if device == "cpu" and importlib.util.find_spec("faiss") is not None:
        found.append("faiss")
    return found


class ExactSearch:
    """Exact inner-product top-k over `vectors` ([n, dim] float32) with one backend."""

    def __init__(self, vectors: torch.Tensor, backend: Backend = "torch", device: str = "cpu") -> None:
        if backend not in available_backends(device):
            raise CodegenError(f"search backend {backend!r} is not available on {device}; here: "
                               f"{', '.join(available_backends(device))}\n  To fix: install faiss-cpu (CPU) or "
                               "cupy (CUDA), or use backend='torch'.")
        self.backend, self.device = backend, device
        vectors = vectors.to(torch.float32).contiguous()
        self.n, self.dim = vectors.shape
        if backend == "faiss":
            import faiss

            self.faiss = faiss.IndexFlatIP(self.dim)
            self.faiss.add(vectors.numpy())
        elif backend == "cupy":
            import cupy

            self.cupy = cupy
            self.vectors_cp = cupy.asarray(vectors.to(device))
        else:
            self.vectors = vectors.to(device)

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, ids), each [q, min(k, n)] on the CPU, best first, for `queries` [q, dim] (or [dim])."""
        q = queries.to(torch.float32).reshape(-1, self.dim).contiguous()
        k = min(k, self.n)
        if self.backend == "faiss":
            fscores, fids = self.faiss.search(q.numpy(), k)
            return torch.from_numpy(fscores), torch.from_numpy(fids).to(torch.int64)
        if self.backend == "cupy":
            cp = self.cupy
            sims = cp.asarray(q.to(self.device)) @ self.vectors_cp.T
            ids = cp.argsort(-sims, axis=1)[:, :k]   # a full sort: exact, and stable on ties like faiss's order
            scores = cp.take_along_axis(sims, ids, axis=1)
            return torch.as_tensor(cp.asnumpy(scores)), torch.as_tensor(cp.asnumpy(ids)).to(torch.int64)
        sims = q.to(self.device) @ self.vectors.T
        scores, ids = torch.topk(sims, k, dim=1)
        return scores.cpu(), ids.cpu()


class VectorSearch:
    """op.ann_search: the k passages of the op's index nearest to a query embedding."""

    def __init__(self, folder: Path, k: int, backend: Backend | None = None, device: str = "cpu") -> None:
        self.folder, self.k, self.device = folder, k, device
        self.backend: Backend = backend or ("faiss" if "faiss" in available_backends(device) else "torch")
        self.index: Index | None = None
        self.engine: ExactSearch | None = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> VectorSearch:
        name = str(step.attrs.get("index", ""))
        folder = context.indexes.get(name)
        if folder is None:
            raise CodegenError(f"no index folder given for index {name!r} ({step.loc or step.op})\n"
                               f"  To fix: build one with `plait index build DOCS_DIR --model MODEL --out DIR` and "
                               f"map {name!r} to DIR in the worker's indexes.")
        return cls(Path(folder), int(step.attrs.get("k", 8)), device=context.device)  # type: ignore[arg-type]

    def load(self) -> None:
        self.index = load_index(self.folder)
        self.engine = ExactSearch(self.index.embeddings, self.backend, self.device)

    def __call__(self, query: torch.Tensor | dict[str, Any]) -> list[str]:
        """The k passages nearest to `query` (one embedding, or the encoder kernel's output), best first."""
        vector: torch.Tensor = query["embedding"] if isinstance(query, dict) else query
        if self.engine is None:
            self.load()
        assert self.engine is not None and self.index is not None
        _, ids = self.engine.search(vector, self.k)
        return [self.index.passages[i]["text"] for i in ids[0].tolist()]
