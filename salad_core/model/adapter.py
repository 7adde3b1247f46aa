"""The trainable adapter: frozen-encoder frames -> the LLM's input-embedding space (SALAD paper, Architecture).

Frame stacking downsamples the encoder's 50 Hz output (k = 4 gives 12.5 Hz, the paper's rate), a linear layer maps
the stacked frames to the adapter width, a causal transformer stack mixes them left to right (so a speech span can
be consumed as it streams), and a final norm + projection lands in the LLM's embedding space.

Shape legend: B batch, F encoder frames, C encoder width, S adapter frames (= ceil(F / k)), W adapter width,
D LLM hidden size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from salad_core.model.config import SaladConfig


def sinusoidal_positions(length: int, width: int, device=None) -> torch.Tensor:
    """(length, width) fixed sinusoidal position table: no length limit, no parameters."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class SpeechAdapter(nn.Module):
    def __init__(self, config: SaladConfig):
        super().__init__()
        self.stack = config.adapter_stack
        width = config.adapter_width
        self.project_in = nn.Linear(config.encoder_hidden_size * self.stack, width)
        layer = nn.TransformerEncoderLayer(
            d_model=width,
            nhead=config.adapter_heads,
            dim_feedforward=width * config.adapter_ffn_mult,
            dropout=config.adapter_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers=config.adapter_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.project_out = nn.Linear(width, config.llm_hidden_size)

    def output_lengths(self, frame_lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(frame_lengths + self.stack - 1, self.stack, rounding_mode="floor")

    def forward(self, frames: torch.Tensor, frame_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, F, C) right-padded, frame_lengths (B,) -> embeddings (B, S, D), lengths (B,)."""
        batch, n_frames, channels = frames.shape
        pad = (-n_frames) % self.stack
        if pad:
            frames = nn.functional.pad(frames, (0, 0, 0, pad))
        stacked = frames.reshape(batch, -1, channels * self.stack)  # (B, S, k*C)
        hidden = self.project_in(stacked)  # (B, S, W)
        n_steps = hidden.shape[1]
        hidden = hidden + sinusoidal_positions(n_steps, hidden.shape[-1], hidden.device).to(hidden.dtype)
        lengths = self.output_lengths(frame_lengths)
        padding = torch.arange(n_steps, device=hidden.device)[None, :] >= lengths[:, None]  # (B, S) True = pad
        causal = torch.ones(n_steps, n_steps, dtype=torch.bool, device=hidden.device).triu(1)  # True = masked
        hidden = self.layers(hidden, mask=causal, src_key_padding_mask=padding, is_causal=True)
        return self.project_out(self.norm(hidden)), lengths
