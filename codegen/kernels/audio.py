"""Audio in and out as tensors: WAV files through the stdlib `wave` module, and whisper's log-mel front end
in torch (no torchaudio: its wheels pin other torch releases than the CPU build these machines use)."""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import torch

from plait.codegen.errors import CodegenError

WHISPER_RATE, N_FFT, HOP = 16000, 400, 160   # whisper: 25 ms windows every 10 ms at 16 kHz


def read_wav(source: str | Path | bytes) -> tuple[torch.Tensor, int]:
    """(mono float32 samples in [-1, 1], sample rate) of a PCM WAV file or its bytes."""
    try:
        with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as err:
        what = "the audio bytes" if isinstance(source, bytes) else repr(str(source))
        raise CodegenError(f"{what} is not a PCM WAV file: {err}\n  To fix: give 8, 16 or 32-bit PCM WAV audio "
                           "(e.g. `sox in.mp3 -b 16 out.wav`).") from None
    dtype = {1: torch.uint8, 2: torch.int16, 4: torch.int32}.get(width)
    if dtype is None:
        raise CodegenError(f"WAV sample width {width * 8} bits is not supported\n  To fix: convert to 16-bit PCM.")
    x = torch.frombuffer(bytearray(raw), dtype=dtype).to(torch.float32)
    x = (x - 128) / 128 if width == 1 else x / float(2 ** (8 * width - 1))
    return x.view(-1, channels).mean(dim=1), rate


def write_wav(path: str | Path, samples: torch.Tensor, rate: int) -> None:
    """Write mono float samples (clipped to [-1, 1]) as a 16-bit PCM WAV file."""
    pcm = (samples.detach().float().clamp(-1, 1) * 32767).round().to(torch.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.numpy().tobytes())


def resample(x: torch.Tensor, rate: int, to: int) -> torch.Tensor:
    """Linear-interpolation resampling (enough for a speech front end's input)."""
    if rate == to:
        return x
    n = max(1, round(x.numel() * to / rate))
    return torch.nn.functional.interpolate(x[None, None], size=n, mode="linear", align_corners=False)[0, 0]


def mel_filters(n_mels: int, n_fft: int = N_FFT, rate: int = WHISPER_RATE) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney mel scale, area-normalized (as librosa's)."""
    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        lin = f / (200.0 / 3)
        log = 15 + torch.log(f.clamp(min=1e-10) / 1000) / (math.log(6.4) / 27)
        return torch.where(f >= 1000, log, lin)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return torch.where(m >= 15, 1000 * torch.exp((math.log(6.4) / 27) * (m - 15)), m * (200.0 / 3))

    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(torch.tensor(0.0))), float(hz_to_mel(torch.tensor(rate / 2))),
                                     n_mels + 2))
    lower = (freqs[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None]) / (edges[2:] - edges[1:-1])[:, None]
    return torch.clamp(torch.minimum(lower, upper), min=0) * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def log_mel(samples: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """[n_mels, frames] log-mel spectrogram of 16 kHz samples, scaled as whisper's (log10, 8 decades, /4)."""
    stft = torch.stft(samples, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = torch.log10((mel_filters(n_mels) @ power).clamp(min=1e-10))
    mel = torch.maximum(mel, mel.max() - 8.0)
    return (mel + 4.0) / 4.0


def speech_input(audio: str | Path | bytes | torch.Tensor, n_mels: int) -> torch.Tensor:
    """Log-mel frames [n_mels, frames] of a WAV path, WAV bytes, or a 16 kHz waveform tensor."""
    if isinstance(audio, torch.Tensor) and audio.dim() == 2:
        return audio   # already log-mel frames
    if isinstance(audio, torch.Tensor):
        return log_mel(audio.float(), n_mels)
    samples, rate = read_wav(audio)
    return log_mel(resample(samples, rate, WHISPER_RATE), n_mels)
