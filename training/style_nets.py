"""Style-transfer networks, the perceptual feature extractor and the losses (torch).

Networks take and return float32 NCHW RGB in [0, 1] (sigmoid output); two stride-2 stages, so
height and width must be multiples of 4 (the serving wrapper pads).

* :class:`FastStyleNet`: slim Johnson-style net (16-32-48 channels, depthwise-separable residual
  blocks, nearest-resize + conv upsampling) for real-time CPU serving.
* :class:`JohnsonNet`: the full Johnson et al. (2016) transformation net (32-64-128, 5 residual
  blocks, instance norm), kept for the quality/speed comparison.
* :class:`StyleVAE`: a VAE over a spatial latent whose decoder is conditioned on a style id through
  conditional instance norm; serves several styles from one file, deterministic at inference (mu).
* :class:`FeatureNet`: frozen loss network. There are no downloaded weights (no ImageNet VGG), so it
  reuses the body of the project's own trained :class:`~training.video_model.FrameCNN`
  and adds a fixed, seeded, randomly initialised multi-scale conv net: random ReLU features are
  known to be good texture descriptors, and they see full resolution where the FrameCNN starts with
  a stride-2 conv.

  Measured (150 Adam steps of Gatys-style optimisation on a 112x192 corpus frame, relative Gram
  loss, the other net's loss held out): optimising FrameCNN features alone drives their own loss
  0.61 -> 0.06 (mosaic) but leaves the random net's only 0.26 -> 0.21 (waves 1.06 -> 0.65, ink
  0.85 -> 0.65), and the images show aliasing noise with barely any colour transfer: the FrameCNN
  was trained to ignore colour grades. Random features alone transfer colour and texture but
  leave the FrameCNN loss high (0.61 -> 0.54). Combined, both fall (0.13 / 0.013 mosaic, 0.15 /
  0.027 waves, 0.13 / 0.12 ink), so the training uses both; content stays on the trained FrameCNN.
  (Measured with the random net at scales 1, 1/2, 1/4; 1/8 was added afterwards so that the loss
  sees structures as large as the mosaic's cells.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from training.video_model import MEAN, STD, FrameCNN

ENCODER_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "video_encoder.pt"


def conv_norm(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True, pad: str = "zeros") -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, padding_mode=pad), nn.InstanceNorm2d(cout, affine=True)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def separable(ch: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, instance-normalised."""
    return nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, groups=ch, bias=False), nn.Conv2d(ch, ch, 1),
                         nn.InstanceNorm2d(ch, affine=True))


class Residual(nn.Module):
    def __init__(self, ch: int, light: bool, pad: str = "zeros") -> None:
        super().__init__()
        first, second = (separable(ch), separable(ch)) if light else \
            (conv_norm(ch, ch, relu=False, pad=pad), conv_norm(ch, ch, relu=False, pad=pad))
        self.body = nn.Sequential(first, nn.ReLU(inplace=True), second)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a conv: no transposed conv, so no checkerboard."""

    def __init__(self, cin: int, cout: int, pad: str = "zeros") -> None:
        super().__init__()
        self.conv = conv_norm(cin, cout, pad=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


FAST_WIDTHS = (16, 32, 48)


class FastStyleNet(nn.Module):
    """Slim Johnson-style net. ``skip``: the full-resolution features of the first conv are added
    back before the last one, so fine structure need not squeeze through the 1/4-resolution body."""

    def __init__(self, widths: tuple[int, int, int] = FAST_WIDTHS, blocks: int = 4, skip: bool = False,
                 kernel: int = 5) -> None:
        super().__init__()
        a, b, c = widths
        self.skip = skip
        self.head = conv_norm(3, a, kernel)
        self.body = nn.Sequential(
            conv_norm(a, b, 3, 2), conv_norm(b, c, 3, 2),
            *[Residual(c, light=True) for _ in range(blocks)],
            Upsample(c, b), Upsample(b, a),
        )
        self.tail = nn.Sequential(nn.Conv2d(a, 3, kernel, 1, kernel // 2), nn.Sigmoid())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.head(image)
        y = self.body(x)
        return self.tail(y + x if self.skip else y)



class JohnsonNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        pad = "reflect"
        self.net = nn.Sequential(
            conv_norm(3, 32, 9, pad=pad), conv_norm(32, 64, 3, 2, pad=pad), conv_norm(64, 128, 3, 2, pad=pad),
            *[Residual(128, light=False, pad=pad) for _ in range(5)],
            Upsample(128, 64, pad), Upsample(64, 32, pad), nn.Conv2d(32, 3, 9, 1, 4, padding_mode=pad), nn.Sigmoid(),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class CondNorm(nn.Module):
    """Conditional instance norm (FiLM on normalised features): a learned scale and shift per style."""

    def __init__(self, ch: int, styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.scale, self.shift = nn.Embedding(styles, ch), nn.Embedding(styles, ch)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.scale(style)[:, :, None, None] + self.shift(style)[:, :, None, None]


class CondConv(nn.Module):
    """conv -> conditional instance norm -> optional ReLU, after an optional x2 nearest upsample."""

    def __init__(self, cin: int, cout: int, styles: int, k: int = 3, groups: int = 1, up: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        self.up, self.relu = up, relu
        self.conv = nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups)
        self.norm = CondNorm(cout, styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv(x), style)
        return F.relu(x) if self.relu else x


class StyleVAE(nn.Module):
    """Encoder -> (mu, logvar) of a spatial latent at 1/4 resolution -> style-conditioned decoder."""

    def __init__(self, styles: int, latent: int = 32, width: int = 64, blocks: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(conv_norm(3, 32, 5), conv_norm(32, 48, 3, 2), conv_norm(48, width, 3, 2),
                                     nn.Conv2d(width, 2 * latent, 1))
        self.stem = CondConv(latent, width, styles)
        # residual blocks: depthwise 3x3 + pointwise 1x1, each conditioned on the style
        self.blocks = nn.ModuleList([nn.ModuleList([
            nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False), CondConv(width, width, styles, k=1),
            nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False), CondConv(width, width, styles, k=1, relu=False),
        ]) for _ in range(blocks)])
        self.up1, self.up2 = CondConv(width, 32, styles, up=True), CondConv(32, 16, styles, up=True)
        self.out = nn.Conv2d(16, 3, 5, 1, 2)

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(image).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.stem(z, style)
        for dw1, pw1, dw2, pw2 in self.blocks:
            h = h + pw2(dw2(pw1(dw1(h), style)), style)
        return torch.sigmoid(self.out(self.up2(self.up1(h, style), style)))

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Stylise; uses mu in eval mode (deterministic, as exported) and a sample in training."""
        mu, logvar = self.encode(image)
        return self.decode(self.reparameterise(mu, logvar) if self.training else mu, style)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), averaged over latent elements."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


def build(kind: str, styles: int = 1, widths: tuple[int, int, int] | None = None, skip: bool = False,
          kernel: int = 5) -> nn.Module:
    if kind == "fast":
        return FastStyleNet(tuple(widths or FAST_WIDTHS), skip=skip, kernel=kernel)
    if kind == "johnson":
        return JohnsonNet()
    if kind == "vae":
        return StyleVAE(styles)
    raise ValueError(f"unknown net {kind!r}: fast, johnson or vae")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the loss network -------------------------------------------------------------------------


class RandomFeatures(nn.Module):
    """A fixed, seeded, randomly initialised conv net applied at four scales (1, 1/2, 1/4, 1/8)."""

    def __init__(self, seed: int = 1234, scales: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.scales = scales
        self.conv1, self.conv2 = nn.Conv2d(3, 32, 3, 1, 1), nn.Conv2d(32, 64, 3, 2, 1)
        for conv in (self.conv1, self.conv2):
            fan_in = conv.weight[0].numel()
            conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5
            conv.bias.data = (torch.rand(conv.bias.shape, generator=g) - 0.5) * 0.2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for s in self.scales:
            h = F.relu(self.conv1(F.avg_pool2d(x, s) if s > 1 else x))
            feats += [h, F.relu(self.conv2(h))]
        return feats


class FeatureNet(nn.Module):
    """Frozen perceptual features: the trained FrameCNN body (+ the random net when ``random_net``).

    Returns ``(style_features, content_feature)``; the content feature is FrameCNN block 3 (1/4
    resolution, 32 channels), the style features are FrameCNN blocks 1, 3, 5, 6 and, optionally,
    the random net's six maps.
    """

    STYLE_BLOCKS = (0, 2, 4, 5)
    CONTENT_BLOCK = 2

    def __init__(self, checkpoint: Path = ENCODER_CHECKPOINT, frame_cnn: bool = True, random_net: bool = True) -> None:
        super().__init__()
        if not (frame_cnn or random_net):
            raise ValueError("FeatureNet needs at least one of frame_cnn, random_net")
        body = FrameCNN().body
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        body.load_state_dict({k.removeprefix("frame.body."): v for k, v in state.items() if k.startswith("frame.body.")})
        self.body, self.frame_cnn = body, frame_cnn
        self.random = RandomFeatures() if random_net else None
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureNet:
        return super().train(False)  # always frozen: BatchNorm keeps its running statistics

    def forward(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = (image - self.mean) / self.std
        style, content = [], None
        for i, block in enumerate(self.body):
            x = block(x)
            if i == self.CONTENT_BLOCK:
                content = x
            if self.frame_cnn and i in self.STYLE_BLOCKS:
                style.append(x)
        if self.random is not None:
            style += self.random((image - self.mean) / self.std)
        return style, content


# --- losses -----------------------------------------------------------------------------------


def gram(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C), normalised by the number of positions."""
    b, c, h, w = f.shape
    f = f.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def style_loss(feats: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the relative squared Gram error ||G - G_s||^2 / ||G_s||^2.

    ``targets`` are Gram matrices, (1, C, C) or (B, C, C) (one per sample, e.g. per style id).
    Relative errors keep the layers balanced whatever their scale; 1.0 means "as far as zero".
    """
    total = feats[0].new_zeros(())
    for f, t in zip(feats, targets):
        total = total + ((gram(f) - t).pow(2).sum((1, 2)) / t.pow(2).sum((1, 2))).mean()
    return total / len(feats)


def content_loss(f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature MSE relative to the target's mean square."""
    return F.mse_loss(f, target) / target.pow(2).mean().clamp_min(1e-8)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation (mean absolute difference of neighbouring pixels)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
