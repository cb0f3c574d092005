"""Variational autoencoder: MLP or conv encoder/decoder, reparameterisation, analytic KL to N(0, I).

Loss per image = reconstruction (Bernoulli cross-entropy of the pixels, summed) + KL(q(z|x) || N(0, I)),
i.e. the negative ELBO in nats per image (Kingma & Welling, 2014).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: 0.5 * sum(exp(logvar) + mu^2 - 1 - logvar).  # (B,)"""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=-1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) drawn outside the graph: gradients reach mu and logvar only."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Pixel-wise binary cross-entropy against grey levels in [0, 1], summed per image.  # (B,)"""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


class MLPEncoder(nn.Module):
    def __init__(self, in_pixels: int, hidden: int, zdim: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(in_pixels, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.mu = nn.Linear(hidden, zdim)
        self.logvar = nn.Linear(hidden, zdim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (B, hidden)
        return self.mu(h), self.logvar(h)  # (B, zdim) each


class MLPDecoder(nn.Module):
    def __init__(self, zdim: int, hidden: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.image_shape = image_shape
        pixels = image_shape[0] * image_shape[1] * image_shape[2]
        self.body = nn.Sequential(
            nn.Linear(zdim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, pixels),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(-1, *self.image_shape)  # (B, C, H, W) logits


class ConvEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], channels: int, hidden: int, zdim: int):
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 4, stride=2, padding=1),  # (B, ch, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),  # (B, 2ch, H/4, W/4)
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * channels * (h // 4) * (w // 4), hidden),
            nn.ReLU(),
        )
        self.mu = nn.Linear(hidden, zdim)
        self.logvar = nn.Linear(hidden, zdim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (B, hidden)
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    def __init__(self, zdim: int, hidden: int, channels: int, image_shape: tuple[int, int, int]):
        super().__init__()
        c, h, w = image_shape
        self.start = (2 * channels, h // 4, w // 4)
        self.fc = nn.Sequential(
            nn.Linear(zdim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * channels * (h // 4) * (w // 4)),
            nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),  # (B, ch, H/2, W/2)
            nn.ReLU(),
            nn.ConvTranspose2d(channels, c, 4, stride=2, padding=1),  # (B, C, H, W) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, *self.start))


class VAE(nn.Module):
    def __init__(
        self,
        zdim: int,
        arch: str = "mlp",
        hidden: int = 256,
        channels: int = 32,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        if arch == "conv" and (image_shape[1] % 4 or image_shape[2] % 4):
            raise ValueError(f"the conv VAE needs image sides divisible by 4, got {image_shape[1:]}")
        self.zdim, self.image_shape = zdim, tuple(image_shape)
        if arch == "mlp":
            pixels = image_shape[0] * image_shape[1] * image_shape[2]
            self.encoder: nn.Module = MLPEncoder(pixels, hidden, zdim)
            self.decoder: nn.Module = MLPDecoder(zdim, hidden, self.image_shape)
        elif arch == "conv":
            self.encoder = ConvEncoder(self.image_shape, channels, hidden, zdim)
            self.decoder = ConvDecoder(zdim, hidden, channels, self.image_shape)
        else:
            raise ValueError(f"unknown VAE arch {arch!r}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)  # mu, logvar: (B, zdim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, C, H, W) logits; sigmoid gives pixel means

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return self.decode(z), mu, logvar


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level component, plus the total."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
