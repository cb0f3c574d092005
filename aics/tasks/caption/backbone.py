"""ResNet-18/34/50/101/152 (He et al. 2016) in plain torch with torchvision's module names, so that the
ImageNet weights a user has (``resnet50-*.pth`` state dicts, or the same as ``.safetensors``) load as they
are: the captioner's encoder when ``model.encoder`` names one. Only the convolutional trunk is kept (the
average pool and ``fc`` are not built; their keys in a file are ignored).

Layout (torchvision's "v1.5"): a 7x7 stride-2 conv, BatchNorm, ReLU, 3x3 stride-2 max pool, four stages of
BasicBlocks (18, 34) or Bottlenecks (50, 101, 152), the stride of a stage's first block on its 3x3 conv, a
1x1 conv + BatchNorm shortcut (``downsample``) where the shape changes. Output stride 32: a 224 x 224 image
gives a 7 x 7 map of 512 (18, 34) or 2048 channels.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from aics.core.errors import UserError

DEPTHS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
          "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
          "resnet152": ("bottleneck", (3, 8, 36, 3))}  # fmt: skip
# torchvision's preprocessing for its ImageNet weights
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNetTrunk(nn.Module):
    """(B, 3, H, W) ImageNet-normalised -> (B, C, H/32, W/32)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in DEPTHS:
            raise UserError(f"model.encoder={name!r}: choose cnn or one of {', '.join(DEPTHS)}")
        kind, counts = DEPTHS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for k, (width, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and k > 0) else 1))
                cin = width * block.expansion
            setattr(self, f"layer{k + 1}", nn.Sequential(*blocks))
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A torchvision-layout state dict from ``.pth``/``.pt`` (tensors only: weights_only loading, never a
    pickle of code) or ``.safetensors``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a
    ``module.`` prefix (DataParallel) are taken off."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model.encoder_weights={path}: no such file; give a torchvision ResNet state dict")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserError(
            f"{path}: not a state dict of tensors that loads safely ({type(e).__name__}); save the weights "
            "with torch.save(model.state_dict(), path) or as .safetensors"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(
            f"{path}: holds no state dict of tensors; save model.state_dict() of a torchvision ResNet"
        )
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_trunk_weights(trunk: ResNetTrunk, path: str | Path, name: str) -> dict:
    """Copy a torchvision ResNet's weights into ``trunk`` (``fc.*`` ignored), or one line naming what does
    not fit; returns what was loaded."""
    sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
    want = trunk.state_dict()
    missing = [k for k in want if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in want]
    shaped = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in want.items()
              if k in sd and sd[k].shape != v.shape]  # fmt: skip
    if missing or unexpected or shaped:
        first = (
            (missing and f"missing {missing[0]}")
            or (unexpected and f"unexpected {unexpected[0]}")
            or shaped[0]
        )
        raise UserError(
            f"{path}: not a torchvision {name} state dict ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(shaped)} mis-shaped keys; first: {first}); give the weights of "
            f"model.encoder={name}"
        )
    trunk.load_state_dict(sd, strict=False)  # num_batches_tracked may be absent
    return {"path": str(path), "tensors": len(sd)}
