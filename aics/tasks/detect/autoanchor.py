"""AutoAnchor: check that the model's anchors fit the training labels, and evolve new ones when they do not.

A label fits an anchor when neither of its width and height is more than ``thr`` times larger or smaller
than the anchor's (the same ratio test ``build_targets`` uses to assign labels). The best possible recall
(BPR) is the fraction of labels that fit at least one anchor; if it is below 0.98, k-means on the label
sizes followed by a genetic search proposes a new set, kept only if its BPR is higher (YOLOv5's recipe).

Sizes here are in pixels of the training image size ``imgsz`` (a label's normalised w, h times its image's
letterboxed size); the model stores anchors in grid units of each output (pixels / stride).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from aics.core.log import get_logger


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _ratio_match(wh: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (N, K): min over w and h of min(r, 1/r), r = label / anchor size (1 = same size, -> 0 = far);
    ``best`` (N,): each label's best anchor's value."""
    r = wh[:, None, :] / anchors[None, :, :]  # (N, K, 2)
    x = np.minimum(r, 1 / r).min(2)
    return x, x.max(1)


def anchor_fitness_stats(wh, anchors, thr: float = 4.0) -> tuple[float, float]:
    """``(bpr, aat)`` of ``anchors`` (K, 2) for labels ``wh`` (N, 2), both pixel sizes (width, height).

    bpr: fraction of labels whose best anchor is within the ratio ``thr``; aat: anchors within the ratio
    per label, on average. Both are NaN when there are no labels.
    """
    wh = _as_numpy(wh).reshape(-1, 2)
    if not len(wh):
        return float("nan"), float("nan")
    x, best = _ratio_match(wh, _as_numpy(anchors).reshape(-1, 2))
    return float((best > 1 / thr).mean()), float((x > 1 / thr).sum(1).mean())


def _fitness(wh: np.ndarray, anchors: np.ndarray, thr: float) -> float:
    """What the evolution maximises: mean over labels of the best anchor's ratio, 0 where it misses."""
    _, best = _ratio_match(wh, anchors)
    return float((best * (best > 1 / thr)).mean())


def kmeans(data: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 30, tol: float = 1e-5):
    """Lloyd's k-means on ``data`` (N, d) -> ``(centroids (k, d), distortion)``.

    Each of ``restarts`` runs starts from ``k`` distinct random points and iterates until the distortion
    (mean Euclidean distance to the nearest centroid) improves by less than ``tol``; the run with the
    lowest distortion wins. A cluster left empty restarts at the point farthest from its centroid.
    """
    best_c, best_d = None, np.inf
    for _ in range(restarts):
        c = data[rng.choice(len(data), size=k, replace=False)].copy()
        prev = np.inf
        while True:
            dist = np.linalg.norm(data[:, None, :] - c[None, :, :], axis=2)  # (N, k)
            assign = dist.argmin(1)
            near = dist[np.arange(len(data)), assign]
            distortion = float(near.mean())
            if prev - distortion < tol:
                break
            prev = distortion
            for j in range(k):
                members = assign == j
                if members.any():
                    c[j] = data[members].mean(0)
                else:
                    far = int(near.argmax())
                    c[j], near[far] = data[far], 0.0
        if distortion < best_d:
            best_c, best_d = c, distortion
    return best_c, best_d


def kmean_anchors(
    wh,
    n: int = 9,
    img_size: int = 640,
    thr: float = 4.0,
    gen: int = 1000,
    seed: int = 0,
    verbose: bool = False,
) -> np.ndarray:
    """Evolve ``n`` anchors for label sizes ``wh`` (N, 2) in pixels -> (n, 2) float32, ascending by area.

    Labels under 2 px on both sides are dropped. k-means on the sizes divided by their standard deviation
    gives the start; then ``gen`` generations of mutation (each anchor coordinate mutated with probability
    0.9 by a factor 1 + N(0, 1) * 0.1 * u, u ~ U(0, 1) per generation, clipped to [0.3, 3], anchors >= 2 px)
    keep a mutant when it raises ``mean(best * (best > 1/thr))``. Deterministic for a ``seed``. With fewer
    labels than ``n``, starts from random sizes up to ``img_size``.
    """
    rng = np.random.default_rng(seed)
    wh0 = _as_numpy(wh).reshape(-1, 2)
    wh = wh0[(wh0 >= 2.0).any(1)]
    log = get_logger()
    if verbose and (wh0 < 3.0).any(1).sum():
        log.info(f"autoanchor: {(wh0 < 3.0).any(1).sum()} of {len(wh0)} labels are under 3 pixels")
    if len(wh) >= n and n > 0:
        s = wh.std(0)
        s[s == 0] = 1.0
        k = kmeans(wh / s, n, rng)[0] * s
    else:
        k = np.sort(rng.random(n * 2)).reshape(n, 2) * img_size
    if not len(wh):
        return k[np.argsort(k.prod(1))].astype(np.float32)
    f = _fitness(wh, k, thr)
    if verbose:
        log.info(f"autoanchor: k-means fitness {f:.4f}")
    for _ in range(gen):
        v = np.ones_like(k)
        while (v == 1).all():  # mutate until something changes
            mutate = rng.random(k.shape) < 0.9
            v = (mutate * rng.random() * rng.standard_normal(k.shape) * 0.1 + 1).clip(0.3, 3.0)
        kg = (k * v).clip(min=2.0)
        fg = _fitness(wh, kg, thr)
        if fg > f:
            f, k = fg, kg
    k = k[np.argsort(k.prod(1))]
    if verbose:
        bpr, aat = anchor_fitness_stats(wh, k, thr)
        log.info(f"autoanchor: evolved fitness {f:.4f}, bpr {bpr:.4f}, anchors/target {aat:.2f}")
        log.info("autoanchor: anchors " + ", ".join(f"{w:.0f},{h:.0f}" for w, h in k))
    return k.astype(np.float32)


def label_sizes_px(labels_wh, shapes_wh, imgsz: int, scale=None, seed: int = 0) -> np.ndarray:
    """Label sizes in pixels at training size ``imgsz`` -> (N, 2) float64.

    ``labels_wh``: either a sequence with one (n_i, 2) array of normalised (w, h) per image, with
    ``shapes_wh`` (num_images, 2) those images' (width, height); or one (N, 2) array with ``shapes_wh``
    (N, 2) giving each label's image size. Each image is scaled so its longer side is ``imgsz``. ``scale``
    (lo, hi): multiply each image's sizes by a factor drawn uniformly from it (YOLOv5 uses (0.9, 1.1) to
    mimic scale augmentation), seeded by ``seed``.
    """
    shapes = _as_numpy(shapes_wh).reshape(-1, 2)
    if isinstance(labels_wh, np.ndarray | torch.Tensor) and _as_numpy(labels_wh).ndim == 2:
        per_image = list(_as_numpy(labels_wh).reshape(-1, 1, 2))
    else:
        per_image = [_as_numpy(lab).reshape(-1, 2) for lab in labels_wh]
    if len(per_image) != len(shapes):
        raise ValueError(f"{len(per_image)} label sets but {len(shapes)} image shapes")
    size = imgsz * shapes / shapes.max(1, keepdims=True)  # (num_images, 2) letterboxed image size
    if scale is not None:
        size = size * np.random.default_rng(seed).uniform(scale[0], scale[1], size=(len(size), 1))
    if not per_image:
        return np.zeros((0, 2))
    return np.concatenate([lab * s for lab, s in zip(per_image, size, strict=True)])


def check_anchors(
    labels_wh,
    shapes_wh,
    anchors_px,
    stride,
    imgsz: int,
    thr: float = 4.0,
    gen: int = 1000,
    seed: int = 0,
    min_bpr: float = 0.98,
) -> dict:
    """Score the model's anchors on the training labels; evolve a better set if their BPR is < ``min_bpr``.

    ``labels_wh``, ``shapes_wh``: normalised label sizes and image sizes as in ``label_sizes_px``;
    ``anchors_px`` (nl, na, 2): current anchors in pixels (grid units * stride); ``stride`` (nl,): each
    output's stride. The labels are scored with a seeded 0.9-1.1 random size jitter (like YOLOv5); k-means
    runs on the unjittered sizes. Returns a dict: ``bpr``, ``aat`` of the current anchors (NaN, and nothing
    else done, when there are no labels); ``new_bpr`` of the evolved set (None if no search ran);
    ``replaced`` and ``new_anchors``: (nl, na, 2) float32 pixels, smallest anchors on the smallest stride,
    when the evolved set has a higher BPR, else None. ``apply_anchors`` installs them in the model.
    """
    anchors = _as_numpy(anchors_px)
    if anchors.ndim != 3 or anchors.shape[-1] != 2:
        raise ValueError(f"anchors_px must be (nl, na, 2), got shape {anchors.shape}")
    wh = label_sizes_px(labels_wh, shapes_wh, imgsz, scale=(0.9, 1.1), seed=seed)
    bpr, aat = anchor_fitness_stats(wh, anchors.reshape(-1, 2), thr)
    out = {"bpr": bpr, "aat": aat, "new_bpr": None, "new_anchors": None, "replaced": False}
    if not len(wh) or bpr >= min_bpr:  # no labels: nothing to fit, the anchors stay
        return out
    wh0 = label_sizes_px(labels_wh, shapes_wh, imgsz)
    new = kmean_anchors(
        wh0, n=anchors.shape[0] * anchors.shape[1], img_size=imgsz, thr=thr, gen=gen, seed=seed
    )
    new_bpr, _ = anchor_fitness_stats(wh, new, thr)
    out["new_bpr"] = new_bpr
    if new_bpr > bpr:
        out["new_anchors"] = _order_by_stride(new, _as_numpy(stride).reshape(-1), anchors.shape[:2])
        out["replaced"] = True
    return out


def _order_by_stride(anchors: np.ndarray, stride: np.ndarray, nl_na: Sequence[int]) -> np.ndarray:
    """(K, 2) anchors -> (nl, na, 2), ascending area split into layers so that the smallest anchors go to
    the output with the smallest stride (YOLOv5's check_anchor_order)."""
    a = anchors[np.argsort(anchors.prod(1), kind="stable")].reshape(nl_na[0], nl_na[1], 2)
    if len(stride) > 1 and stride[-1] < stride[0]:
        a = a[::-1]
    return np.ascontiguousarray(a, dtype=np.float32)


def apply_anchors(detect: torch.nn.Module, anchors_px, stride=None) -> None:
    """Write pixel anchors (nl * na, 2) or (nl, na, 2) into ``detect.anchors`` (nl, na, 2), in place, in
    grid units (pixels / stride). ``stride`` (nl,) defaults to ``detect.stride``. The anchors are sorted
    by area and the smallest go to the smallest stride, whatever order they came in."""
    target = detect.anchors
    nl, na = target.shape[0], target.shape[1]
    stride = _as_numpy(detect.stride if stride is None else stride).reshape(-1)
    if len(stride) != nl:
        raise ValueError(f"{len(stride)} strides for {nl} output layers")
    a = _order_by_stride(_as_numpy(anchors_px).reshape(-1, 2), stride, (nl, na)) / stride[:, None, None]
    with torch.no_grad():
        target.copy_(torch.as_tensor(a, dtype=target.dtype, device=target.device))
