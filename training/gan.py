"""A topic-conditioned DCGAN for 64x64 frames (torch; training only, serving runs the ONNX export).

* :class:`Generator`: ``[z, embed(topic)] -> linear -> 4x4`` then four transposed-conv upsamplings
  (4x4 -> 64x64); every batch norm is *conditional* (per-topic gain and bias), so the topic steers
  each stage, not only the input. Output ``tanh`` in [-1, 1], shape (N, 3, 64, 64).
* :class:`Discriminator`: strided convs with spectral norm, sum-pooled features ``h`` and the
  projection conditioning of Miyato & Koyama (2018): ``D(x, y) = w.h + embed(y).h``.
* Hinge losses, a mode-seeking term (:func:`mode_seeking`) against collapse within a topic, an
  exponential moving average of the generator's weights (:func:`ema_update`) and :func:`recalibrate_bn`,
  which re-estimates the EMA copy's batch-norm statistics before use.
* :class:`TopicClassifier`: a tiny CNN trained on real frames, used only to check that generated
  images of topic t look like topic t.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine; gain (1 + g) and bias b are looked up per topic."""

    def __init__(self, channels: int, topics: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(topics, channels)
        self.bias = nn.Embedding(topics, channels)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gain(topic)[:, :, None, None]
        b = self.bias(topic)[:, :, None, None]
        return self.bn(x) * g + b


class Generator(nn.Module):
    """(z (N, z_dim) float, topic (N,) int64) -> image (N, 3, 64, 64) in [-1, 1]."""

    def __init__(self, z_dim: int = 64, topics: int = 6, width: int = 32, embed_dim: int = 32) -> None:
        super().__init__()
        self.z_dim, self.topics, self.width = z_dim, topics, width
        chans = [width * 8, width * 4, width * 2, width]  # at 4, 8, 16, 32 pixels
        self.embed = nn.Embedding(topics, embed_dim)
        self.project = nn.Linear(z_dim + embed_dim, chans[0] * 16)
        self.norms = nn.ModuleList(ConditionalBatchNorm(c, topics) for c in chans)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in zip(chans, chans[1:]))
        self.to_rgb = nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1)

    def forward(self, z: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.embed(topic)], dim=1)).unflatten(1, (-1, 4, 4))
        h = F.relu(self.norms[0](h, topic))
        for up, norm in zip(self.ups, self.norms[1:]):
            h = F.relu(norm(up(h), topic))
        return torch.tanh(self.to_rgb(h))


def load_exported_generator(path) -> Generator:
    """The generator whose weights ``train_gan`` saved beside its ONNX export (``{"ema", "config"}``)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    config = blob["config"]
    generator = Generator(config["z_dim"], len(config["topics"]), config["width"])
    generator.load_state_dict(blob["ema"])
    return generator.eval()


class ExportedGenerator(nn.Module):
    """What the ONNX file holds: the generator with its output mapped from [-1, 1] to [0, 1]."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        return (self.generator(z, topic) + 1) * 0.5


class Discriminator(nn.Module):
    """(image (N, 3, 64, 64) in [-1, 1], topic (N,)) -> (N,) realness score (projection conditioning)."""

    def __init__(self, topics: int = 6, width: int = 32) -> None:
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 8]  # to 32, 16, 8, 4 pixels
        self.convs = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 4, 2, 1)) for a, b in zip(chans, chans[1:]))
        self.linear = spectral_norm(nn.Linear(chans[-1], 1))
        self.embed = spectral_norm(nn.Embedding(topics, chans[-1]))

    def forward(self, x: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
        h = x.sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(topic) * h).sum(1)


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking term (Mao et al., 2019): rows i and i + N/2 share a topic; penalise images that move
    less than their latents do, so the generator cannot ignore z within a topic."""
    half = len(z) // 2
    image_gap = (fake[:half] - fake[half:2 * half]).abs().mean(dim=(1, 2, 3))
    z_gap = (z[:half] - z[half:2 * half]).abs().mean(dim=1)
    return (1 / (image_gap / z_gap + eps)).mean()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters only (buffers: see recalibrate_bn)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


@torch.no_grad()
def recalibrate_bn(generator: Generator, z_dim: int, topics: int, batches: int = 16, batch: int = 96,
                   seed: int = 0) -> None:
    """Re-estimate batch-norm running statistics for (EMA) weights: a cumulative average over fresh samples."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    generator.train()
    for _ in range(batches):
        generator(torch.randn(batch, z_dim, generator=g), torch.randint(0, topics, (batch,), generator=g))
    for m in norms:
        m.momentum = 0.1
    generator.eval()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class TopicClassifier(nn.Module):
    """A small CNN on 32x32 frames in [-1, 1] -> topic logits (for the conditional-accuracy check)."""

    def __init__(self, topics: int = 6, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in [(3, width), (width, width * 2), (width * 2, width * 4)]:
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width * 4, topics)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=32, mode="area") if x.shape[-1] != 32 else x
        return self.head(self.features(x).mean(dim=(2, 3)))
