"""The video encoder: a small frame CNN, then self-attention over the keyframes with a pooled token.

Input: ``frames`` float32 (B, K, 3, S, S) in [0, 1] and ``mask`` float32 (B, K), 1 for a real
frame and 0 for padding. Outputs: ``embedding`` (B, D), L2-normalised, and ``topic_logits``.
Attention is written out by hand so the ONNX export is plain MatMul/Softmax.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

MEAN = (0.45, 0.45, 0.45)
STD = (0.25, 0.25, 0.25)


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FrameCNN(nn.Module):
    def __init__(self, width: int = 32, dim: int = 128) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_block(3, w // 2, 2), conv_block(w // 2, w, 2), conv_block(w, w, 1),
            conv_block(w, 2 * w, 2), conv_block(2 * w, 2 * w, 1), conv_block(2 * w, 4 * w, 2),
        )
        self.proj = nn.Linear(4 * w * 2, dim)  # mean and max pooled features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.proj(torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1))


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias  # bias: (B, 1, 1, T), -1e4 on padding
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(y))
        return x + self.drop(self.ff(self.norm2(x)))


class VideoEncoder(nn.Module):
    def __init__(self, dim: int = 128, layers: int = 2, heads: int = 4, max_frames: int = 16, topics: int = 6,
                 width: int = 32) -> None:
        super().__init__()
        self.frame = FrameCNN(width, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, max_frames + 1, dim) * 0.02)
        self.layers = nn.ModuleList([SelfAttentionLayer(dim, heads, 2 * dim) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, dim)
        self.topic = nn.Linear(dim, topics)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, k = frames.shape[:2]
        x = (frames.reshape(b * k, *frames.shape[2:]) - self.mean) / self.std
        feats = self.frame(x).reshape(b, k, -1)
        tokens = torch.cat([self.cls.expand(b, -1, -1), feats], dim=1) + self.pos[:, : k + 1]
        keep = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        bias = ((1.0 - keep) * -1e4).reshape(b, 1, 1, k + 1)
        for layer in self.layers:
            tokens = layer(tokens, bias)
        pooled = self.norm(tokens[:, 0])
        embedding = F.normalize(self.head(pooled), dim=-1)
        return embedding, self.topic(pooled)
