"""Scores of a VAE on a split: reconstruction error per image, KL, ELBO (all in nats per image)."""

from __future__ import annotations

import torch

from aics.tasks.vae.model import VAE, bernoulli_nll, kl_to_standard_normal, reparameterize


@torch.no_grad()
def evaluate(model: VAE, images: torch.Tensor, batch_size: int, device: torch.device, seed: int = 0) -> dict:
    """Average over ``images`` (N, C, H, W) in [0, 1].

    ``recon_bce`` and ``kl`` use one z ~ q(z|x) per image from a fixed-seed generator (so the numbers are
    comparable between epochs and runs and the training RNG is untouched); ``loss`` = recon_bce + kl is the
    negative ELBO. ``recon_bce_mean`` and ``recon_mse`` decode the posterior mean: the reconstruction error
    a person sees in the pictures (MSE summed over pixels, per image).
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    totals = torch.zeros(5, dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        mu, logvar = model.encode(x)
        recon = bernoulli_nll(model.decode(reparameterize(mu, logvar, gen)), x)
        kl = kl_to_standard_normal(mu, logvar)
        logits_mean = model.decode(mu)
        recon_mean = bernoulli_nll(logits_mean, x)
        mse = (torch.sigmoid(logits_mean) - x).pow(2).flatten(1).sum(dim=1)
        batch = torch.stack([recon.sum(), kl.sum(), recon_mean.sum(), mse.sum(), torch.tensor(float(len(x)))])
        totals += batch.double().cpu()
    model.train(was_training)
    n = totals[4].item()
    recon_bce, kl, recon_bce_mean, recon_mse = (totals[:4] / n).tolist()
    return {
        "loss": recon_bce + kl,
        "elbo": -(recon_bce + kl),
        "recon_bce": recon_bce,
        "kl": kl,
        "recon_bce_mean": recon_bce_mean,
        "recon_mse": recon_mse,
        "images": int(n),
    }
