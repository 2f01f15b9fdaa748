"""Augmentations that stand for what happens to re-uploaded copies: trim, crop, rescale,
colour changes, black bars, re-encoding noise. Applied per view, the same to all its frames."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def pick_window(total: int, k: int, g: torch.Generator) -> torch.Tensor:
    """k evenly spaced frame indices inside a random window covering >= 80% of ``total``."""
    span = total * (0.8 + 0.2 * torch.rand(1, generator=g).item())
    start = (total - span) * torch.rand(1, generator=g).item()
    return torch.linspace(start, start + span - 1e-3, k).long().clamp(0, total - 1)


def crop_resize(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """x: (K, 3, S, S). Keep 80-100% of each side, scale back to S."""
    s = x.shape[-1]
    frac = 0.8 + 0.2 * torch.rand(1, generator=g).item()
    c = max(8, int(s * frac))
    top = int((s - c) * torch.rand(1, generator=g).item())
    left = int((s - c) * torch.rand(1, generator=g).item())
    return F.interpolate(x[..., top:top + c, left:left + c], size=(s, s), mode="bilinear", align_corners=False)


def colour(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(1, generator=g).item()  # noqa: E731
    x = x * r(0.7, 1.3)  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * r(0.75, 1.25) + mean  # contrast
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * r(0.6, 1.4) + grey  # saturation
    shift = (torch.rand(1, 3, 1, 1, generator=g) - 0.5) * 0.14  # colour cast
    return (x + shift).clamp(0, 1)


def black_bars(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    s = x.shape[-1]
    bar = int(s * (0.05 + 0.1 * torch.rand(1, generator=g).item()))
    inner = F.interpolate(x, size=(s - 2 * bar, s) if torch.rand(1, generator=g).item() < 0.5 else (s, s - 2 * bar),
                          mode="bilinear", align_corners=False)
    out = torch.zeros_like(x)
    h, w = inner.shape[-2:]
    out[..., (s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = inner
    return out


def degrade(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Downscale and back up (rescale / re-encode blur), plus a little noise."""
    s = x.shape[-1]
    small = max(16, int(s * (0.5 + 0.4 * torch.rand(1, generator=g).item())))
    x = F.interpolate(F.interpolate(x, size=(small, small), mode="area"), size=(s, s), mode="bilinear", align_corners=False)
    return (x + torch.randn(x.shape, generator=g) * 0.02).clamp(0, 1)


def view(clip: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """One augmented view (k, 3, S, S) of a clip's stored keyframes (T, 3, S, S), float in [0, 1]."""
    x = clip[pick_window(clip.shape[0], k, g)]
    if torch.rand(1, generator=g).item() < 0.7:
        x = crop_resize(x, g)
    if torch.rand(1, generator=g).item() < 0.8:
        x = colour(x, g)
    if torch.rand(1, generator=g).item() < 0.5:
        x = black_bars(x, g)
    if torch.rand(1, generator=g).item() < 0.4:
        x = degrade(x, g)
    return x
