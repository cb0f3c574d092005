"""YOLOv5 (v6.0+ architecture) in one file: the model description as data, its blocks, and the model.

A model is built from a *description*: the same dict as ultralytics' ``models/yolov5s.yaml`` (v6.0 and
later), with ``nc``, ``depth_multiple``, ``width_multiple``, ``anchors`` (pixels, one list of w,h pairs per
output level) and ``backbone`` / ``head`` lists of ``[from, repeats, module, args]`` rows::

    model = build_model("s", nc=80)          # or build_model("my-yolo.yaml", nc=3)
    model.train(); raw = model(x)            # list of nl tensors (B, na, ny, nx, nc + 5), no sigmoid
    model.eval();  pred, raw = model(x)      # pred: (B, N, nc + 5) = xywh in input pixels, obj, classes

Module and attribute names are chosen so that ``state_dict()`` keys are those of ultralytics'
``DetectionModel`` (``model.0.conv.weight``, ``model.24.anchors``, ...): its released weights load as is
(see importer.py), and the anchors buffer is, as there, in grid units of its level (pixels / stride).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aics.core.errors import UserError

# (depth_multiple, width_multiple) of the five released sizes.
SIZES = {"n": (0.33, 0.25), "s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}

# COCO anchors in pixels (w, h pairs) for the P3/8, P4/16 and P5/32 outputs.
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]

# Rows of [from, repeats, module, args] at depth and width multiple 1 (YOLOv5l), as in yolov5*.yaml v6.0+.
BACKBONE = [
    [-1, 1, "Conv", [64, 6, 2, 2]],  # 0 P1/2
    [-1, 1, "Conv", [128, 3, 2]],  # 1 P2/4
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],  # 3 P3/8
    [-1, 6, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],  # 5 P4/16
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [1024, 3, 2]],  # 7 P5/32
    [-1, 3, "C3", [1024]],
    [-1, 1, "SPPF", [1024, 5]],  # 9
]
HEAD = [
    [-1, 1, "Conv", [512, 1, 1]],  # 10
    [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
    [[-1, 6], 1, "Concat", [1]],  # with backbone P4
    [-1, 3, "C3", [512, False]],  # 13
    [-1, 1, "Conv", [256, 1, 1]],  # 14
    [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
    [[-1, 4], 1, "Concat", [1]],  # with backbone P3
    [-1, 3, "C3", [256, False]],  # 17 P3/8 output
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 14], 1, "Concat", [1]],  # with head P4
    [-1, 3, "C3", [512, False]],  # 20 P4/16 output
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 10], 1, "Concat", [1]],  # with head P5
    [-1, 3, "C3", [1024, False]],  # 23 P5/32 output
    [[17, 20, 23], 1, "Detect", ["nc", "anchors"]],  # 24
]

BN_EPS, BN_MOMENTUM = 1e-3, 0.03  # YOLOv5's BatchNorm settings (torch defaults: 1e-5, 0.1)


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= x: how widths are rounded after ``width_multiple``."""
    return math.ceil(x / divisor) * divisor


def autopad(k: int | list[int], p: int | list[int] | None = None, d: int = 1) -> int | list[int]:
    """Padding that keeps the size at stride 1 ("same") for odd kernels, dilation included."""
    if p is not None:
        return p
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    return k // 2 if isinstance(k, int) else [x // 2 for x in k]


# ---------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU; after ``fuse_bn`` the BN is folded into the conv."""

    def __init__(self, c1: int, c2: int, k=1, s=1, p=None, g: int = 1, d: int = 1,
                 act: bool | nn.Module = True):  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        if act is True:
            self.act = nn.SiLU(inplace=True)
        elif isinstance(act, nn.Module):
            self.act = act
        else:
            self.act = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn is None:  # fused
            return self.act(self.conv(x))
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse_bn(self) -> None:
        """Fold the BatchNorm (running statistics) into the conv: y = scale * conv(x) + shift."""
        if self.bn is None:
            return
        conv, bn = self.conv, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        # new Parameters, not in-place edits: a deepcopy taken before fusing keeps its own weights
        conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
        conv.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale, requires_grad=False)
        self.bn = None  # a fused model is for inference (no gradients to the folded weights)


class Bottleneck(nn.Module):
    """1x1 Conv (to c2 * e channels) -> 3x3 Conv, plus the input when ``shortcut`` and the widths agree."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convs: cv1 -> n Bottlenecks, cv2 in parallel, cat, cv3."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained k x k max-pools (= SPP with k, 2k-1, 3k-2)."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension`` (channels by default)."""

    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.d)


class Detect(nn.Module):
    """One 1x1 conv (with bias) per level to na * (nc + 5) channels; decodes boxes in eval mode.

    Buffers: ``anchors`` (nl, na, 2) in grid units of each level (saved in the state_dict, as in
    ultralytics) and ``stride`` (nl,) (not saved: measured when the model is built).
    """

    def __init__(self, nc: int, anchors: list[list[float]], ch: list[int]):
        super().__init__()
        self.nc = nc
        self.no = nc + 5  # x, y, w, h, objectness, classes
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self._grids: dict[tuple, torch.Tensor] = {}

    def _grid(self, ny: int, nx: int, like: torch.Tensor) -> torch.Tensor:
        """Cell offsets minus 0.5 as (x, y), (1, 1, ny, nx, 2), cached per shape, device and dtype."""
        key = (ny, nx, like.device, like.dtype)
        if key not in self._grids:
            ys = torch.arange(ny, device=like.device, dtype=like.dtype)
            xs = torch.arange(nx, device=like.device, dtype=like.dtype)
            yv, xv = torch.meshgrid(ys, xs, indexing="ij")
            self._grids[key] = (torch.stack((xv, yv), 2) - 0.5).view(1, 1, ny, nx, 2)
        return self._grids[key]

    def forward(self, xs: list[torch.Tensor]):
        raw, decoded = [], []
        for i in range(self.nl):
            p = self.m[i](xs[i])  # (B, na * no, ny, nx)
            b, _, ny, nx = p.shape
            p = p.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()  # (B, na, ny, nx, no)
            raw.append(p)
            if not self.training:
                # Decode in float32: under bf16 autocast, pixel coordinates would be rounded to 2-4 px.
                p = p.float()
                # anchors not cached with the grid: load_state_dict changes them in place
                anchor_pixels = (self.anchors[i] * self.stride[i]).to(p.dtype).view(1, self.na, 1, 1, 2)
                s = p.sigmoid()
                xy = (s[..., 0:2] * 2 + self._grid(ny, nx, p)) * self.stride[i]  # (B, na, ny, nx, 2) pixels
                wh = (s[..., 2:4] * 2) ** 2 * anchor_pixels  # at most 4x the anchor
                decoded.append(torch.cat((xy, wh, s[..., 4:]), -1).view(b, -1, self.no))
        if self.training:
            return raw
        return torch.cat(decoded, 1), raw  # (B, N, no), [(B, na, ny, nx, no)] * nl


# ---------------------------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------------------------

# Module names a description may use (with the yaml spelling of ultralytics).
MODULES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "Bottleneck": Bottleneck,
    "C3": C3,
    "SPPF": SPPF,
    "Concat": Concat,
    "nn.Upsample": nn.Upsample,
    "Detect": Detect,
}
_WIDTH_MODULES = ("Conv", "Bottleneck", "C3", "SPPF")  # args[0] is the output width, scaled by width_multiple
REQUIRED_KEYS = ("nc", "depth_multiple", "width_multiple", "anchors", "backbone", "head")


def model_description(size: str, nc: int = 80, anchors: list[list[float]] | None = None) -> dict:
    """The description of YOLOv5 ``size`` (n, s, m, l, x) for ``nc`` classes, as yolov5{size}.yaml."""
    key = size.removeprefix("yolov5")
    if key not in SIZES:
        raise UserError(f"unknown YOLOv5 size '{size}': use one of {', '.join(SIZES)} or a model yaml path")
    depth, width = SIZES[key]
    description = {
        "nc": nc,
        "depth_multiple": depth,
        "width_multiple": width,
        "anchors": copy.deepcopy(anchors if anchors is not None else ANCHORS),
        "backbone": copy.deepcopy(BACKBONE),
        "head": copy.deepcopy(HEAD),
    }
    return check_description(description, f"yolov5{key}")


def load_description(path: str | os.PathLike) -> dict:
    """Read and check a model yaml (ultralytics' format); UserError names the file and the key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model description not found")
    try:
        description = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    return check_description(description, str(path))


def check_description(description: Any, source: str = "model description") -> dict:
    """Check every row of a description and return a deep copy; UserError names ``source`` and the key.

    Checks: the required keys and their types, known module names, ``from`` indices that point at earlier
    layers, repeats >= 1, args lists, anchors (nl lists of w,h pairs, the same count on every level) and a
    final Detect whose inputs are as many as the anchor levels. Extra keys (``ch``, ``inplace``) are kept.
    """
    if not isinstance(description, dict):
        keys = ", ".join(REQUIRED_KEYS)
        raise UserError(f"{source}: a model description must be a mapping with keys {keys}")
    d = copy.deepcopy(description)
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        raise UserError(f"{source}: missing key(s) {', '.join(missing)}")
    if not isinstance(d["nc"], int) or isinstance(d["nc"], bool) or d["nc"] < 1:
        raise UserError(f"{source}: nc: must be a positive integer, got {d['nc']!r}")
    for k in ("depth_multiple", "width_multiple"):
        if not isinstance(d[k], (int, float)) or isinstance(d[k], bool) or d[k] <= 0:
            raise UserError(f"{source}: {k}: must be a positive number, got {d[k]!r}")
    if "ch" in d and (type(d["ch"]) is not int or d["ch"] < 1):
        raise UserError(f"{source}: ch: must be a positive integer (input channels), got {d['ch']!r}")
    act = d.get("activation")
    if act not in (None, "nn.SiLU()"):
        raise UserError(f"{source}: activation: only SiLU (the default) is implemented, got {act!r}")
    _check_anchors(d["anchors"], f"{source}: anchors")
    rows = []
    for part in ("backbone", "head"):
        if not isinstance(d[part], list) or not d[part]:
            raise UserError(f"{source}: {part}: must be a non-empty list of [from, repeats, module, args]")
        rows += [(f"{part}[{j}]", row) for j, row in enumerate(d[part])]
    for i, (key, row) in enumerate(rows):
        if not isinstance(row, list) or len(row) != 4:
            raise UserError(f"{source}: {key}: a row must be [from, repeats, module, args], got {row!r}")
        f, n, module, args = row
        if not isinstance(module, str) or module not in MODULES:
            raise UserError(f"{source}: {key}: unknown module {module!r} (known: {', '.join(MODULES)})")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UserError(f"{source}: {key}: repeats must be an integer >= 1, got {n!r}")
        if not isinstance(args, list):
            raise UserError(f"{source}: {key}: args must be a list, got {args!r}")
        sources = f if isinstance(f, list) else [f]
        if not sources or not all(isinstance(j, int) and not isinstance(j, bool) for j in sources):
            raise UserError(f"{source}: {key}: 'from' must be an integer or a list of integers, got {f!r}")
        for j in sources:
            # -1 is the previous layer (the input image for layer 0); other negatives count back from i
            if not (j == -1 if i == 0 else -i <= j < i):
                raise UserError(f"{source}: {key}: 'from' index {j} does not refer to an earlier layer")
        takes_list = module in ("Concat", "Detect")
        if takes_list != isinstance(f, list):
            kind = "a list of 'from' layers" if takes_list else "one 'from' layer"
            raise UserError(f"{source}: {key}: {module} takes {kind}, got {f!r}")
        if module in _WIDTH_MODULES and (not args or not isinstance(args[0], int) or args[0] < 1):
            raise UserError(f"{source}: {key}: {module} args must start with the output width, got {args!r}")
        if module in _WIDTH_MODULES and not all(_is_number_or_none(a) for a in args):
            raise UserError(f"{source}: {key}: {module} args must be numbers, booleans or null, got {args!r}")
        if (module == "Detect") != (i == len(rows) - 1):
            raise UserError(f"{source}: {key}: the last row, and only it, must be Detect")
        if module == "Detect" and len(f) != len(d["anchors"]):
            nl = len(d["anchors"])
            raise UserError(f"{source}: {key}: Detect takes {nl} layers (one per anchor level), got {f!r}")
        if module == "Detect" and [_resolve(a, d) for a in args] != [d["nc"], d["anchors"]]:
            raise UserError(f"{source}: {key}: Detect args must be [nc, anchors], got {args!r}")
    return d


def _is_number_or_none(a: Any) -> bool:
    """Conv-like args: widths, kernel, stride, padding (int, list of ints or None), shortcut (bool)."""
    if isinstance(a, list):
        return all(type(v) is int for v in a)
    return a is None or a == "None" or type(a) in (int, float, bool)


def _check_anchors(anchors: Any, where: str) -> None:
    ok = isinstance(anchors, list) and len(anchors) > 0 and all(isinstance(a, list) for a in anchors)
    ok = ok and all(len(a) >= 2 and len(a) % 2 == 0 and len(a) == len(anchors[0]) for a in anchors)
    ok = ok and all(type(v) in (int, float) and v > 0 for a in anchors for v in a)
    if not ok:
        raise UserError(f"{where}: must be one list of w,h pixel pairs per level, the same number on every "
                        f"level (e.g. {ANCHORS}), got {anchors!r}")  # fmt: skip


def _resolve(arg: Any, d: dict) -> Any:
    """Args as ultralytics reads its yaml: ``nc`` and ``anchors`` name the description's values, and
    ``None`` (a string to YAML, which spells null ``null``) is None."""
    if arg == "None":
        return None
    if arg == "nc":
        return d["nc"]
    if arg == "anchors":
        return d["anchors"]
    return arg


def _build_layers(d: dict, ch: int, source: str) -> tuple[list[nn.Module], list[int | list[int]]]:
    """The modules and their absolute ``from`` indices (``i - 1`` = previous layer, -1 = the image)."""
    depth, width = d["depth_multiple"], d["width_multiple"]
    rows = [(f"backbone[{j}]", r) for j, r in enumerate(d["backbone"])]
    rows += [(f"head[{j}]", r) for j, r in enumerate(d["head"])]
    layers, froms, widths = [], [], []
    for i, (key, (f, n, name, args)) in enumerate(rows):
        absolute = [j if j >= 0 else i + j for j in (f if isinstance(f, list) else [f])]
        c_in = [widths[j] if j >= 0 else ch for j in absolute]  # j == -1 only at i == 0: the image
        args = [_resolve(a, d) for a in args]
        n = max(round(n * depth), 1) if n > 1 else n
        if name in _WIDTH_MODULES:
            c_out = make_divisible(args[0] * width, 8)
            args = [c_in[0], c_out, *args[1:]]
            if name == "C3":
                args.insert(2, n)  # C3 repeats its bottlenecks inside
                n = 1
        elif name == "Concat":
            c_out = sum(c_in)
        elif name == "Detect":
            args = [*args[:2], c_in]
            c_out = 0
        else:  # nn.Upsample keeps the width
            c_out = c_in[0]
        try:
            module = MODULES[name](*args)
            if n > 1:
                module = nn.Sequential(module, *(MODULES[name](*args) for _ in range(n - 1)))
        except (TypeError, ValueError, RuntimeError, IndexError) as e:
            raise UserError(f"{source}: {key}: cannot build {name} with args {args!r} ({e})") from e
        layers.append(module)
        froms.append(absolute if isinstance(f, list) else absolute[0])
        widths.append(c_out)
    return layers, froms


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------


class DetectionModel(nn.Module):
    """YOLOv5 built from a description; ``model.{i}`` is row i of backbone + head, the last one Detect.

    Attributes: ``description`` (also ``yaml``: the checked dict, for checkpoints), ``nc``, ``names``,
    ``stride`` (nl,) and ``detect`` (the Detect module).
    """

    def __init__(self, description: dict, ch: int = 3, names: list[str] | None = None):
        super().__init__()
        d = check_description(description, "model description")
        self.description = d
        layers, self.froms = _build_layers(d, ch, "model description")
        self.model = nn.Sequential(*layers)
        # outputs that a layer other than the next one reads are kept during the forward pass
        self.save = sorted({j for i, f in enumerate(self.froms) for j in (f if isinstance(f, list) else [f])
                            if 0 <= j != i - 1})  # fmt: skip
        self.nc = d["nc"]
        self.names = list(names) if names is not None else [str(i) for i in range(self.nc)]
        if len(self.names) != self.nc:
            raise UserError(f"model description: {len(self.names)} class names for nc={self.nc}")

        detect = self.detect
        try:
            detect.stride.copy_(self._measure_strides(ch))
        except (RuntimeError, TypeError, ValueError) as e:  # e.g. widths that do not chain
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(f"model description: the model does not run on a 256x256 image ({reason})") from e
        self._order_anchors()
        detect.anchors /= detect.stride.view(-1, 1, 1)  # pixels -> grid units of each level
        self._initialize_biases()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = BN_EPS, BN_MOMENTUM
            elif isinstance(m, (nn.SiLU, nn.ReLU, nn.LeakyReLU, nn.Hardswish)):
                m.inplace = True

    @property
    def yaml(self) -> dict:
        return self.description

    @property
    def detect(self) -> Detect:
        return self.model[-1]

    @property
    def stride(self) -> torch.Tensor:
        return self.detect.stride

    def _detect_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run every layer but Detect; return Detect's inputs (the P3, P4, P5 feature maps)."""
        kept: dict[int, torch.Tensor] = {}
        prev = x
        for i, layer in enumerate(self.model):
            f = self.froms[i]
            if isinstance(f, list):
                inp = [prev if j == i - 1 else kept[j] for j in f]
            else:
                inp = prev if f == i - 1 else kept[f]
            if i == len(self.model) - 1:
                return inp
            prev = layer(inp)
            if i in self.save:
                kept[i] = prev
        raise AssertionError("a description always ends with Detect")

    def forward(self, x: torch.Tensor):
        """Train mode: [(B, na, ny, nx, no)] * nl raw; eval mode: ((B, N, no) decoded, raw)."""
        return self.detect(self._detect_inputs(x))

    @torch.no_grad()
    def _measure_strides(self, ch: int, s: int = 256) -> torch.Tensor:
        """Image size / feature size of each Detect input for an s x s image (BN in eval: no side effect)."""
        was_training = self.training
        self.eval()
        try:
            features = self._detect_inputs(torch.zeros(1, ch, s, s))
        finally:
            self.train(was_training)
        return torch.tensor([s / f.shape[-2] for f in features], dtype=torch.float32)

    @torch.no_grad()
    def _order_anchors(self) -> None:
        """Anchor sizes must grow with the stride; a description listing them the other way is flipped."""
        detect = self.detect
        area = detect.anchors.prod(-1).mean(-1)  # (nl,)
        d_area, d_stride = area[-1] - area[0], detect.stride[-1] - detect.stride[0]
        if d_area != 0 and torch.sign(d_area) != torch.sign(d_stride):
            detect.anchors.copy_(detect.anchors.flip(0))

    @torch.no_grad()
    def _initialize_biases(self) -> None:
        """Prior biases (Focal Loss paper, 3.3): about 8 objects per 640x640 image, classes ~0.6/nc."""
        detect = self.detect
        for conv, s in zip(detect.m, detect.stride, strict=True):
            b = conv.bias.view(detect.na, -1)  # (na, no)
            b[:, 4] += math.log(8 / (640 / float(s)) ** 2)
            b[:, 5 : 5 + detect.nc] += math.log(0.6 / (detect.nc - 0.99999))

    def fuse(self) -> DetectionModel:
        """Fold every Conv's BatchNorm into its conv (for inference: uses the running statistics)."""
        for m in self.modules():
            if isinstance(m, Conv):
                m.fuse_bn()
        return self


def build_model(size_or_path: str | os.PathLike, nc: int, anchors: list[list[float]] | None = None,
                ch: int = 3) -> DetectionModel:  # fmt: skip
    """A size letter (n, s, m, l, x; 'yolov5s' also works) or a model yaml path, for ``nc`` classes."""
    key = str(size_or_path)
    if key.removeprefix("yolov5") in SIZES:
        description = model_description(key, nc, anchors)
    elif key.endswith((".yaml", ".yml")) or Path(key).is_file():
        description = load_description(key)
        description["nc"] = nc
        if anchors is not None:
            description["anchors"] = copy.deepcopy(anchors)
        description = check_description(description, key)
    else:
        raise UserError(f"unknown YOLOv5 model '{key}': use a size ({', '.join(SIZES)}) or a model yaml path")
    return DetectionModel(description, ch=ch)


def fuse(model: DetectionModel) -> DetectionModel:
    """Fold BatchNorms into convs in place (see ``DetectionModel.fuse``); returns the model."""
    return model.fuse()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (after ``fuse`` this is the count ultralytics prints, e.g. 7,225,885 for s)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def gflops(model: nn.Module, imgsz: int | tuple[int, int] = 640, ch: int = 3) -> float:
    """Giga floating-point operations of one forward pass at ``imgsz`` (an int or (h, w)), YOLOv5's way.

    GFLOPs = 2 * multiply-accumulates / 1e9 (the thop convention of YOLOv5's model summary): a conv counts
    k*k*c_in/groups MACs per output element plus one for its bias, and a BatchNorm one per element (at
    inference it is a scale and a shift, what fusing folds into the conv bias), so fusing does not change
    the count. Activations, pooling, upsampling and concatenation count nothing. This reproduces the
    published table: 4.5 / 16.5 / 49.0 / 109.1 / 205.7 for n / s / m / l / x at 640 with nc=80.
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    macs = 0

    def conv_hook(m: nn.Conv2d, inputs, out: torch.Tensor) -> None:
        nonlocal macs
        per_output = (m.in_channels // m.groups) * math.prod(m.kernel_size) + (m.bias is not None)
        macs += out.numel() * per_output

    def bn_hook(m: nn.BatchNorm2d, inputs, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        model(torch.zeros(1, ch, h, w, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for hk in hooks:
            hk.remove()
    return 2 * macs / 1e9
