"""The vocoder kernel (op.vocode): a DAC-style codec decoder at the catalog's shapes, with seeded random
weights (said in its output): residual-codebook lookup, then transposed-conv upsampling blocks with Snake
activations and dilated residual units, to a waveform tensor at the codec's sample rate."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plait.codegen.kernels.speech import random_init
from plait.codegen.program import Step
from plait.planner.catalog import VocoderSpec, load_catalog


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, per channel (DAC's periodic activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm_alpha = nn.Parameter(torch.ones(1, channels, 1))   # named *norm*: initialized to one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.norm_alpha
        return x + (a + 1e-9).reciprocal() * torch.sin(a * x) ** 2


class Residual(nn.Module):
    def __init__(self, ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(Snake(ch), nn.Conv1d(ch, ch, kernel, dilation=dilation,
                                                       padding=dilation * (kernel - 1) // 2),
                                  Snake(ch), nn.Conv1d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DACDecoderNet(nn.Module):
    def __init__(self, v: VocoderSpec) -> None:
        super().__init__()
        self.codebooks = nn.ModuleList(nn.Embedding(v.codebook_size, v.codebook_dim) for _ in range(v.codebooks))
        self.project = nn.ModuleList(nn.Conv1d(v.codebook_dim, v.latent_dim, 1) for _ in range(v.codebooks))
        blocks: list[nn.Module] = [nn.Conv1d(v.latent_dim, v.decoder_dim, v.kernel, padding=v.kernel // 2)]
        ch = v.decoder_dim
        for stride in v.upsample_rates:
            blocks += [Snake(ch), nn.ConvTranspose1d(ch, ch // 2, 2 * stride, stride, padding=(stride + 1) // 2,
                                                     output_padding=stride % 2)]
            ch //= 2
            blocks += [Residual(ch, v.kernel, 3 ** i) for i in range(v.residual_units)]
        blocks += [Snake(ch), nn.Conv1d(ch, 1, v.kernel, padding=v.kernel // 2), nn.Tanh()]
        self.decoder = nn.Sequential(*blocks)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """[frames, codebooks] ids -> [frames * prod(upsample_rates)] samples."""
        z = sum(p(e(codes[:, i])[None].transpose(1, 2))
                for i, (e, p) in enumerate(zip(self.codebooks, self.project, strict=True)))
        return self.decoder(z)[0, 0]


class Vocoder:
    """op.vocode: audio codes [frames, codebooks] -> {"audio": float32 samples, "sample_rate", "random_weights"}."""

    def __init__(self, model: str, seed: int = 0) -> None:
        voc = load_catalog().model(model).vocoder
        assert voc is not None, f"{model} has no vocoder"
        self.spec, self.seed = voc, seed
        self.net: nn.Module | None = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> Vocoder:
        return cls(step.model or "", context.seed)

    def load(self) -> None:
        with torch.device("meta"):
            net = DACDecoderNet(self.spec)
        self.net = random_init(net, self.seed + 2).eval()

    @torch.inference_mode()
    def __call__(self, codes: torch.Tensor) -> dict[str, Any]:
        if self.net is None:
            self.load()
        assert self.net is not None
        codes = codes.reshape(codes.shape[0], -1)[:, : self.spec.codebooks].clamp(0, self.spec.codebook_size - 1)
        return {"audio": self.net(codes), "sample_rate": self.spec.sample_rate, "random_weights": True}
