"""Pictures, scores and reports from a trained VAE.

Usage: aics vae infer --exp exp/vae/base_mlp_z2 --data data/vae/prepared
       aics vae score --exp exp/vae/base_mlp_z2 --data data/vae/prepared

``infer`` writes ``<exp>/infer_<ckpt>/``: ``latent_map.png`` (z=1: a strip over [zmin, zmax]; z=2: the grid
over [zmin, zmax]^2; larger z: the first two axes, the rest at 0), ``samples.png`` (from the prior),
``<split>/latent_scatter.png`` (posterior means coloured by digit), ``<split>/reconstructions.png``
(originals over reconstructions) and ``<split>/latents.npz`` (means, log-variances, labels).
``score`` writes ``<exp>/scores.json`` and ``<exp>/RESULTS.md``; ``report`` compares experiments.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from aics.core.ckpt import CheckpointDir, load_checkpoint, load_weights, require_parts
from aics.core.config import apply_override, from_dict
from aics.core.errors import UserError
from aics.core.io import atomic_write, read_json, write_json, write_text
from aics.core.plot import pyplot, save_figure
from aics.core.report import markdown_table
from aics.core.runtime import pick_device, seed_everything
from aics.core.stage import begin_stage, mark_done
from aics.tasks.vae.config import VAEConfig
from aics.tasks.vae.data import SPLITS, MnistSplit, check_prepared
from aics.tasks.vae.metrics import evaluate
from aics.tasks.vae.train import TASK, build_model


def load_trained(
    exp_dir: str | Path, which: str = "best", device: str = "auto", overrides: tuple = ()
) -> tuple[torch.nn.Module, VAEConfig, dict]:
    """The model of ``<exp>/ckpt/<which>.pt`` in eval mode, its config (plus overrides) and checkpoint."""
    path = CheckpointDir(exp_dir).resolve(which)
    ckpt = load_checkpoint(path, task=TASK)
    require_parts(ckpt, path)
    cfg = from_dict(VAEConfig, ckpt["config"], source=str(path))
    for o in overrides:
        if not o.startswith("infer."):
            raise UserError(f"--set {o}: only infer.* keys can change after training; retrain for the rest")
        apply_override(cfg, o)
    dev = pick_device(device)
    shape = tuple(ckpt["extra"].get("image_shape", (1, 28, 28)))
    model = build_model(cfg, shape)
    load_weights(model, ckpt["model"], path)
    return model.to(dev).eval(), cfg, ckpt


def _decode(model, z: torch.Tensor) -> np.ndarray:
    dev = next(model.parameters()).device
    with torch.no_grad():
        return torch.sigmoid(model.decode(z.to(dev))).cpu().numpy()[:, 0]  # (N, H, W)


def _tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    n, h, w = images.shape
    canvas = np.ones((rows * h, cols * w), dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = images[i]
    return canvas


def plot_latent_map(model, zdim: int, zmin: float, zmax: float, points: int, path: Path) -> Path:
    plt = pyplot()
    values = torch.linspace(zmin, zmax, points)
    h, w = model.image_shape[1:]
    if zdim == 1:
        strip = _tile(_decode(model, values[:, None]), 1, points)
        fig, ax = plt.subplots(figsize=(points * 0.8, 1.6))
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([(i + 0.5) * w for i in range(points)], [f"{v:.1f}" for v in values.tolist()])
        ax.set_yticks([])
        ax.set_xlabel("z")
        ax.set_title(f"decoded z from {zmin:g} to {zmax:g}")
        return save_figure(fig, path)
    # rows go from zmax (top) to zmin (bottom) so the picture reads like a plot
    z1, z2 = torch.meshgrid(values, values.flip(0), indexing="xy")
    z = torch.zeros(points * points, zdim)
    z[:, 0], z[:, 1] = z1.reshape(-1), z2.reshape(-1)
    grid = _tile(_decode(model, z), points, points)
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    labels = [f"{v:.1f}" for v in values.tolist()]
    ax.set_xticks([(i + 0.5) * w for i in range(points)], labels, rotation=90)
    ax.set_yticks([(i + 0.5) * h for i in range(points)], labels[::-1])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    rest = "" if zdim == 2 else f" (z3..z{zdim} = 0)"
    ax.set_title(f"decoded grid over [{zmin:g}, {zmax:g}]²{rest}")
    return save_figure(fig, path)


def plot_latent_scatter(mu: np.ndarray, labels: np.ndarray, path: Path, title: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    if mu.shape[1] == 1:
        # 1-D latent: x is the mean, y the digit with a little jitter so points do not hide each other
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(labels))
        xs, ys = mu[:, 0], labels + jitter
        ax.set_xlabel("posterior mean of z")
        ax.set_ylabel("digit")
        ax.set_yticks(range(10))
    elif mu.shape[1] == 2:
        xs, ys = mu[:, 0], mu[:, 1]
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    else:
        centred = mu - mu.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        proj = centred @ vt[:2].T
        xs, ys = proj[:, 0], proj[:, 1]
        ax.set_xlabel("principal component 1 of the means")
        ax.set_ylabel("principal component 2 of the means")
    for d in range(10):
        sel = labels == d
        ax.scatter(xs[sel], ys[sel], s=4, alpha=0.6, color=cmap(d), label=str(d))
    ax.legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title)
    return save_figure(fig, path)


def plot_reconstructions(model, images: torch.Tensor, path: Path) -> Path:
    plt = pyplot()
    dev = next(model.parameters()).device
    with torch.no_grad():
        recon = torch.sigmoid(model.decode(model.encode(images.to(dev))[0])).cpu().numpy()[:, 0]
    n = len(images)
    canvas = np.concatenate([_tile(images.numpy()[:, 0], 1, n), _tile(recon, 1, n)], axis=0)
    fig, ax = plt.subplots(figsize=(max(4, n * 0.6), 1.6))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    h = images.shape[2]
    ax.set_yticks([h / 2, 1.5 * h], ["original", "reconstruction"])
    ax.set_xticks([])
    return save_figure(fig, path)


def plot_samples(model, zdim: int, path: Path, n: int = 64, seed: int = 0) -> Path:
    plt = pyplot()
    z = torch.randn(n, zdim, generator=torch.Generator().manual_seed(seed))
    side = int(math.sqrt(n))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(_tile(_decode(model, z), side, side), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    ax.set_title("samples from the prior N(0, I)")
    return save_figure(fig, path)


@torch.no_grad()
def posterior_means(model, images: torch.Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    dev = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(images[start : start + batch_size].to(dev))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def infer(
    exp_dir: str | Path,
    data_dir: str | Path,
    ckpt: str = "best",
    splits: tuple[str, ...] = ("valid",),
    device: str = "auto",
    overrides: tuple = (),
    overwrite: bool = False,
) -> Path:
    """Write the pictures for one experiment; returns the output directory."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:  # checked before anything is written
        raise UserError(f"--split {unknown[0]}: unknown split; use one of {', '.join(SPLITS)}")
    data_dir = check_prepared(data_dir)
    model, cfg, ck = load_trained(exp_dir, ckpt, device, overrides)
    out = Path(exp_dir) / f"infer_{Path(ckpt).stem}"
    params = {"ckpt": ckpt, "step": ck["step"], "splits": sorted(splits), "set": sorted(overrides)}
    if not begin_stage(out, overwrite, what="infer", params=params):
        return out
    seed_everything(cfg.train.seed)
    ic, zdim = cfg.infer, cfg.model.zdim
    plot_latent_map(model, zdim, ic.zmin, ic.zmax, ic.grid_points, out / "latent_map.png")
    plot_samples(model, zdim, out / "samples.png", seed=cfg.train.seed)
    for split in splits:
        data = MnistSplit(data_dir, split)
        (out / split).mkdir(parents=True, exist_ok=True)
        mu, logvar = posterior_means(model, data.images)
        with atomic_write(out / split / "latents.npz", "wb") as f:
            np.savez_compressed(f, mu=mu, logvar=logvar, labels=data.labels.numpy())
        keep = np.random.default_rng(0).permutation(len(mu))[: ic.scatter_max]
        plot_latent_scatter(
            mu[keep], data.labels.numpy()[keep], out / split / "latent_scatter.png",
            f"{split} posterior means, zdim={zdim} ({len(keep)} images)",
        )  # fmt: skip
        plot_reconstructions(model, data.images[: ic.n_recon], out / split / "reconstructions.png")
    mark_done(out, {"ckpt": ckpt, "splits": list(splits)}, params=params)
    return out


def score(
    exp_dir: str | Path,
    data_dir: str | Path,
    ckpt: str = "best",
    splits: tuple[str, ...] = ("valid", "test"),
    device: str = "auto",
) -> dict:
    """Reconstruction error, KL and ELBO per image on each split, against the same model untrained."""
    exp, data_dir = Path(exp_dir), check_prepared(data_dir)
    model, cfg, ck = load_trained(exp, ckpt, device)
    dev = next(model.parameters()).device
    bs, seed = cfg.infer.batch_size, cfg.train.seed
    torch.manual_seed(seed)
    untrained = build_model(cfg, model.image_shape).to(dev)
    scores: dict = {
        "task": TASK,
        "ckpt": ckpt,
        "step": ck["step"],
        "epoch": ck["epoch"],
        "arch": cfg.model.arch,
        "zdim": cfg.model.zdim,
        "parameters": sum(p.numel() for p in model.parameters()),
        "units": "nats per image (recon_mse: squared error summed over pixels, per image)",
    }
    for split in splits:
        images = MnistSplit(data_dir, split).images
        scores[split] = evaluate(model, images, bs, dev, seed=seed)
        scores[f"{split}_untrained"] = evaluate(untrained, images, bs, dev, seed=seed)
    write_json(exp / "scores.json", scores)
    write_text(exp / "RESULTS.md", experiment_results(exp, scores, splits))
    return scores


COLUMNS = ("recon_bce", "kl", "loss", "recon_mse")


def experiment_results(exp: Path, scores: dict, splits: tuple[str, ...]) -> str:
    rows = [
        [split, *(scores[split][k] for k in COLUMNS), scores[f"{split}_untrained"]["recon_bce"]]
        for split in splits
    ]
    table = markdown_table(["split", "recon BCE", "KL", "-ELBO", "recon MSE", "untrained recon BCE"], rows)
    pictures = (
        "\n".join(f"- `{p.relative_to(exp)}`" for p in sorted(exp.glob("infer_*/**/*.png")))
        or "- (run `aics vae infer` for pictures)"
    )
    return (
        f"# {exp.name}\n\nVAE, {scores['arch']} encoder/decoder, zdim={scores['zdim']}, "
        f"{scores['parameters']:,} parameters, checkpoint `{scores['ckpt']}` (epoch {scores['epoch']}, "
        f"step {scores['step']}). All numbers are {scores['units']}.\n\n{table}\nPictures:\n{pictures}\n"
    )


REPORT_COLUMNS = (
    "exp", "arch", "zdim", "params", "ckpt epoch", "valid recon", "valid KL", "valid -ELBO", "test recon",
    "test -ELBO", "test MSE", "untrained test recon",
)  # fmt: skip


def report(exp_dirs: list[str | Path], out: str | Path | None = None) -> str:
    """A markdown table comparing experiments (one row each) from their scores.json."""
    rows = []
    for d in exp_dirs:
        path = Path(d) / "scores.json"
        if not path.is_file():
            raise UserError(f"{path}: not found; run `aics vae score --exp {d} ...` first")
        s = read_json(path)
        v, t = s.get("valid", {}), s.get("test", {})
        rows.append([
            Path(d).name, s["arch"], s["zdim"], s["parameters"], s["epoch"], v.get("recon_bce"), v.get("kl"),
            v.get("loss"), t.get("recon_bce"), t.get("loss"), t.get("recon_mse"),
            s.get("test_untrained", {}).get("recon_bce"),
        ])  # fmt: skip
    rows.sort(key=lambda r: (r[1], r[2]))
    text = (
        "# VAE results\n\nNats per image (recon MSE: squared error summed over the pixels); "
        "ckpt epoch is the epoch of the scored checkpoint.\n\n" + markdown_table(REPORT_COLUMNS, rows)
    )
    if out is not None:
        write_text(out, text)
    return text
