"""plait's built-in LLM engine: paged KV cache, continuous batching, prefix reuse, split roles, tensor parallelism.

Imports only torch, safetensors, tokenizers and the standard library, so it runs wherever torch does (the
last two only when a checkpoint or tokenizer.json is read: random weights need torch alone).
"""

from plait.codegen.engine.config import ModelConfig
from plait.codegen.engine.engine import LLMEngine, RequestOutput, StepOutput
from plait.codegen.engine.sampling import SamplingParams, TokenConstraint
from plait.codegen.engine.tokenizer import load_tokenizer
from plait.codegen.engine.weights import load_checkpoint, random_model

__all__ = ["LLMEngine", "ModelConfig", "RequestOutput", "SamplingParams", "StepOutput", "TokenConstraint", "load_checkpoint",
           "load_tokenizer", "random_model"]
