"""Latent vectors for the topic GAN, in numpy only (the server imports this without torch).

``latents`` draws standard-normal vectors deterministically from a seed; ``slerp`` walks the great
circle between two latents, which keeps interpolated vectors at a typical Gaussian norm (a straight
line between two samples passes through low-norm points the generator rarely saw in training).
"""

from __future__ import annotations

import numpy as np


def latents(seed: int, count: int, z_dim: int = 64) -> np.ndarray:
    """(count, z_dim) float32 standard-normal latents; the same seed always gives the same rows."""
    if count < 0 or z_dim <= 0:
        raise ValueError(f"need count >= 0 and z_dim > 0, got count={count}, z_dim={z_dim}")
    return np.random.default_rng(seed).standard_normal((count, z_dim), dtype=np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the last axis.

    ``a`` and ``b`` are (..., D) and broadcast together; ``t`` is a scalar or an array that
    broadcasts against their leading axes (e.g. shape (T, 1) for T steps between two vectors).
    Norms are interpolated linearly, directions along the great circle; nearly parallel inputs
    fall back to linear interpolation.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)
    if t.ndim == 0 or t.shape[-1] != 1:
        t = t[..., None]
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    ua, ub = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    omega = np.arccos(np.clip((ua * ub).sum(-1, keepdims=True), -1.0, 1.0))
    so = np.sin(omega)
    small = so < 1e-6
    safe = np.where(small, 1.0, so)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(small, t, np.sin(t * omega) / safe)
    direction = wa * ua + wb * ub
    norm = (1.0 - t) * na + t * nb
    return (direction * norm).astype(np.float32)
