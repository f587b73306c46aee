"""Weights: a local HF checkpoint folder (config.json + *.safetensors) or random weights from a ModelConfig.

Both go through one name map from HF's tensor names to the engine's fused, tensor-parallel layout,
and each rank reads only its own slices (safetensors' get_slice), never the whole checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from plait.codegen.engine.config import ModelConfig
from plait.codegen.engine.model import Transformer, rope_inv_freq


@dataclass(frozen=True)
class Placement:
    """Where one HF tensor lands: `param`, rows (dim 0) or columns (dim 1) [offset, offset + size) of it,
    read from this rank's shard [rank * size, (rank + 1) * size) of the HF tensor along the same dim.
    dim None: replicated, copied whole."""

    param: str
    dim: int | None = None
    offset: int = 0
    size: int = 0


def placements(config: ModelConfig, tp_size: int) -> dict[str, Placement]:
    """HF tensor name -> where it goes in a Transformer built for tensor-parallel degree tp_size."""
    d = config.head_dim
    q, kv = config.num_heads // tp_size * d, config.num_kv_heads // tp_size * d
    ffn = config.intermediate_size // tp_size
    out = {"model.embed_tokens.weight": Placement("embed.weight"), "model.norm.weight": Placement("norm.weight")}
    if not config.tie_word_embeddings:
        out["lm_head.weight"] = Placement("lm_head.weight")
    for i in range(config.num_layers):
        hf, ours = f"model.layers.{i}.", f"layers.{i}."
        out[hf + "input_layernorm.weight"] = Placement(ours + "attn_norm.weight")
        out[hf + "post_attention_layernorm.weight"] = Placement(ours + "mlp_norm.weight")
        kinds = ("weight", "bias") if config.attention_bias else ("weight",)
        for kind in kinds:
            out[hf + f"self_attn.q_proj.{kind}"] = Placement(ours + f"qkv.{kind}", 0, 0, q)
            out[hf + f"self_attn.k_proj.{kind}"] = Placement(ours + f"qkv.{kind}", 0, q, kv)
            out[hf + f"self_attn.v_proj.{kind}"] = Placement(ours + f"qkv.{kind}", 0, q + kv, kv)
        out[hf + "self_attn.o_proj.weight"] = Placement(ours + "o.weight", 1, 0, q)
        out[hf + "mlp.gate_proj.weight"] = Placement(ours + "gate_up.weight", 0, 0, ffn)
        out[hf + "mlp.up_proj.weight"] = Placement(ours + "gate_up.weight", 0, ffn, ffn)
        out[hf + "mlp.down_proj.weight"] = Placement(ours + "down.weight", 1, 0, ffn)
    return out


def _fill(model: Transformer, read: Callable[[str, Placement, int], torch.Tensor], names: Iterator[str],
          where: str) -> None:
    """Copy every placed HF tensor into the model; complain about missing ones."""
    params = dict(model.named_parameters())
    wanted = placements(model.config, model.tp.size)
    seen: set[str] = set()
    for name in names:
        place = wanted.get(name)
        if place is None:
            continue  # e.g. rotary inv_freq buffers some checkpoints carry
        target = params[place.param]
        shard = read(name, place, model.tp.rank)
        with torch.no_grad():
            if place.dim is None:
                target.copy_(shard)
            else:
                target.narrow(place.dim, place.offset, place.size).copy_(shard)
        seen.add(name)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"{where} lacks {len(missing)} tensors the {model.config.arch} model needs, "
                         f"e.g. {missing[:3]}. To fix: point at a complete HF checkpoint of this architecture")


def _empty_model(config: ModelConfig, dtype: torch.dtype, device: str | torch.device,
                 tp_group: dist.ProcessGroup | None) -> Transformer:
    with torch.device("meta"):
        model = Transformer(config, tp_group)
    model = model.to_empty(device=device).to(dtype)
    model.inv_freq = rope_inv_freq(config)  # computed on meta above; a plain tensor, not a parameter
    return model.eval().requires_grad_(False)


def load_checkpoint(folder: str | Path, *, dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                    tp_group: dist.ProcessGroup | None = None) -> tuple[ModelConfig, Transformer]:
    """Load a HF checkpoint folder (config.json + *.safetensors); nothing is downloaded.

    dtype None keeps the checkpoint's torch_dtype (float32 when it names none)."""
    from safetensors import safe_open  # here: random weights need only torch (bench/gpu_check.sh)
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json. To fix: point at a HF checkpoint folder "
                                "(config.json and *.safetensors)")
    hf = json.loads(config_path.read_text())
    config = ModelConfig.from_hf(hf, name=folder.name)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no *.safetensors files. To fix: save the model with "
                                "save_pretrained(..., safe_serialization=True)")
    if dtype is None:
        dtype = getattr(torch, str(hf.get("torch_dtype") or hf.get("dtype") or "float32"))
    model = _empty_model(config, dtype, device, tp_group)
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            def read(name: str, place: Placement, rank: int, f=f) -> torch.Tensor:  # type: ignore[no-untyped-def]
                sl = f.get_slice(name)
                if place.dim is None:
                    return sl[:]
                lo, hi = rank * place.size, (rank + 1) * place.size
                return sl[lo:hi] if place.dim == 0 else sl[:, lo:hi]
            _fill(model, read, iter(f.keys()), str(folder))
    return config, model


def random_checkpoint(config: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """HF-named float32 tensors drawn from one seeded generator: N(0, 0.02) matrices, unit norms, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    h, d, ffn = config.hidden_size, config.head_dim, config.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (config.vocab_size, h)}
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                       p + "self_attn.q_proj.weight": (config.num_heads * d, h),
                       p + "self_attn.k_proj.weight": (config.num_kv_heads * d, h),
                       p + "self_attn.v_proj.weight": (config.num_kv_heads * d, h),
                       p + "self_attn.o_proj.weight": (h, config.num_heads * d),
                       p + "mlp.gate_proj.weight": (ffn, h), p + "mlp.up_proj.weight": (ffn, h),
                       p + "mlp.down_proj.weight": (h, ffn)})
        if config.attention_bias:
            shapes.update({p + "self_attn.q_proj.bias": (config.num_heads * d,),
                           p + "self_attn.k_proj.bias": (config.num_kv_heads * d,),
                           p + "self_attn.v_proj.bias": (config.num_kv_heads * d,)})
    shapes["model.norm.weight"] = (h,)
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, h)
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensors[name] = torch.ones(shape)
        elif name.endswith(".bias"):
            tensors[name] = torch.zeros(shape)
        else:
            tensors[name] = torch.randn(shape, generator=gen) * 0.02
    return tensors


def random_model(config: ModelConfig, seed: int = 0, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", tp_group: dist.ProcessGroup | None = None) -> Transformer:
    """A model with seeded random weights (the same on every rank, so tensor-parallel shards agree).

    model.random_weights is True: whatever it generates is noise, and outputs must say so."""
    tensors = random_checkpoint(config, seed)
    model = _empty_model(config, dtype, device, tp_group)

    def read(name: str, place: Placement, rank: int) -> torch.Tensor:
        full = tensors[name]
        return full if place.dim is None else full.narrow(place.dim, rank * place.size, place.size)
    _fill(model, read, iter(tensors), f"random weights for {config.name or config.arch}")
    model.random_weights = True
    return model


def save_checkpoint(folder: str | Path, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> Path:
    """Write config.json and model.safetensors that both this engine and transformers load."""
    from safetensors.torch import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**config.to_hf(), "torch_dtype": "float32"}, indent=2))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    return folder


def random_model_on_device(config: ModelConfig, device: str | torch.device, dtype: torch.dtype = torch.bfloat16,
                           seed: int = 0) -> Transformer:
    """Random weights drawn on `device` itself (N(0, 0.02) matrices, unit norms, zero biases): an 8B model in
    seconds on a GPU, where random_model draws on the CPU first. Not the same numbers as random_model; for
    benchmarks, and only without tensor parallelism. model.random_weights is True."""
    model = _empty_model(config, dtype, device, None)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            elif name.endswith(".bias"):
                param.zero_()
            else:
                param.normal_(0.0, 0.02, generator=gen)
    model.random_weights = True
    return model
