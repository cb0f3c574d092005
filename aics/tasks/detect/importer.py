"""Import ultralytics YOLOv5 (v6.0 - v7.0) ``.pt`` checkpoints without executing code from the file.

Usage: aics detect import yolov5s.pt exp/detect/pretrained/yolov5s.pt

An ultralytics checkpoint is a torch zip archive whose pickle holds ``{'model': <DetectionModel>, 'ema': ...,
'epoch', 'best_fitness', 'optimizer', 'opt', 'git', 'date', ...}``: the model object itself, pickled, so
that ``torch.load`` would import ``models.yolo`` and rebuild the objects through their classes. Here it is
read with torch's own ``weights_only`` unpickler, which builds nothing but tensors and plain containers,
and calls only what is on its allowlist. For the duration of the load we add to that allowlist, under the
exact global names a YOLOv5 checkpoint uses (``models.yolo.DetectionModel``, ``torch.nn.modules.conv.Conv2d``,
``numpy.core.multiarray._reconstruct``, ...), *stand-ins*: classes of ours without behaviour that only keep
the arguments and state the pickle hands them. Any other global (``os.system``, ``builtins.exec``, ...) is
refused before anything is called. Why this and not ``torch.load(weights_only=False, pickle_module=...)``
with our own ``find_class``: that path runs Python's full unpickler (every opcode, arbitrary ``__reduce__``
callables of allowed classes, ``__setstate__`` of real classes) and torch's wrapper adds its own lookups in
front of ours; the weights_only unpickler is small, hardened, cannot be switched off by the
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable when ``weights_only=True`` is passed, and the
only code it can reach from the file is torch's tensor rebuilding and our inert classes.

The stand-in tree is then walked (an ``nn.Module`` pickles its ``__dict__``, with ``_parameters``,
``_buffers`` and ``_modules``) into a flat state_dict with ultralytics' key names, which are ours
(model.py), plus the model's ``yaml`` description, class ``names`` and Detect ``stride``.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from aics.core.ckpt import FORMAT, save_checkpoint
from aics.core.errors import UserError
from aics.tasks.detect.model import REQUIRED_KEYS, DetectionModel, check_description, count_parameters

TASK = "detect"

# Module classes a YOLOv5 v6/v7 checkpoint pickles (v5-era ones too, so that a model using them is reported
# by name when the description is checked, instead of as an unknown global).
MODULE_GLOBALS = (
    "models.yolo.DetectionModel",
    "models.yolo.Model",  # v6.0 / v6.1 name of DetectionModel
    "models.yolo.Detect",
    "models.common.Conv",
    "models.common.Bottleneck",
    "models.common.C3",
    "models.common.SPPF",
    "models.common.SPP",
    "models.common.Focus",
    "models.common.BottleneckCSP",
    "models.common.DWConv",
    "models.common.Concat",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.activation.SiLU",
    "torch.nn.modules.activation.LeakyReLU",
    "torch.nn.modules.activation.Hardswish",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.upsampling.Upsample",
    "torch.nn.modules.linear.Identity",
)
# Other globals found in training checkpoints: numpy scalars/arrays (best_fitness), paths and namespaces
# in 'opt'. Their values are never used; they only must not stop the load.
VALUE_GLOBALS = (
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "argparse.Namespace",
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
)
_ROOT_GLOBALS = ("models.yolo.DetectionModel", "models.yolo.Model")


class StandIn:
    """Inert object for one allowlisted global: keeps what the pickle gives it and has no behaviour.

    Unpickling calls it (``REDUCE``: ``__init__`` keeps ``args``), creates it (``NEWOBJ``) and sets its
    state (``BUILD``: ``__setstate__`` keeps ``state``); nothing else of it is ever run.
    """

    global_name = ""
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.global_name}>"


@functools.cache
def _stand_in_classes() -> dict[str, type[StandIn]]:
    """One StandIn subclass per allowlisted global name (a distinct class, so the tree keeps the names)."""
    return {
        name: type(name.rsplit(".", 1)[1], (StandIn,), {"global_name": name, "__module__": __name__})
        for name in MODULE_GLOBALS + VALUE_GLOBALS
    }


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _unpickle(src: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` and our stand-ins allowlisted for this load only."""
    allow = [(cls, name) for name, cls in _stand_in_classes().items()]
    try:
        with torch.serialization.safe_globals(allow), warnings.catch_warnings():
            # torch warns about pickle protocols and weights_only advice that do not apply here
            warnings.simplefilter("ignore")
            return torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        match = re.search(r"GLOBAL (\S+)", text)
        if match:
            raise UserError(
                f"{src}: refuses to load global '{match.group(1)}': not a YOLOv5 checkpoint (only the "
                "classes of ultralytics YOLOv5 v6/v7 models are read, and no code from the file is run)"
            ) from None
        reason = next((ln.strip() for ln in text.splitlines()
                       if ln.strip().startswith(("Unsupported", "Trying", "Can only", "Only", "persistent"))),
                      _first_line(e))  # fmt: skip
        raise UserError(f"{src}: not a YOLOv5 checkpoint (the safe unpickler refused it: {reason})") from None
    except Exception as e:  # not a zip or pickle, truncated, TorchScript archive, ...
        raise UserError(f"{src}: not a YOLOv5 checkpoint ({type(e).__name__}: {_first_line(e)})") from None


def _module_state(obj: Any, where: str, src: Path) -> dict:
    is_module = isinstance(obj, StandIn) and obj.global_name in MODULE_GLOBALS
    if not is_module or not isinstance(obj.state, dict):
        raise UserError(f"{src}: {where}: expected a YOLOv5 module, found {obj!r}; not a YOLOv5 checkpoint")
    return obj.state


def _collect_tensors(obj: Any, prefix: str, out: dict[str, torch.Tensor], src: Path) -> None:
    """Parameters and persistent buffers of the stand-in tree, named as ``nn.Module.state_dict`` does."""
    if prefix.count(".") > 32:  # a YOLOv5 tree is 5 deep; a pickle can also hold a cycle
        raise UserError(f"{src}: {prefix[:80]}...: modules nested too deep; not a YOLOv5 checkpoint")
    state = _module_state(obj, prefix.rstrip(".") or "model", src)
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    tensors = [*(state.get("_parameters") or {}).items()]
    tensors += [(k, v) for k, v in (state.get("_buffers") or {}).items() if k not in non_persistent]
    for name, t in tensors:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise UserError(f"{src}: {prefix}{name}: expected a tensor, found {type(t).__name__}")
        out[prefix + name] = t.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _collect_tensors(child, f"{prefix}{name}.", out, src)


def _is_plain(x: Any) -> bool:
    """Only primitives and containers of them: what a description may hold (and weights_only reloads)."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return True
    if isinstance(x, (list, tuple)):
        return all(_is_plain(v) for v in x)
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in x.items())
    return False


def _class_names(raw: Any, nc: int, src: Path) -> list[str]:
    """ultralytics keeps a list (v6) or a dict {index: name} (v7); none means the default '0', '1', ..."""
    if raw is None:
        return [str(i) for i in range(nc)]
    if isinstance(raw, dict):
        if set(raw) != set(range(len(raw))):
            raise UserError(f"{src}: model.names: the keys of a names dict must be 0..n-1")
        raw = [raw[i] for i in range(len(raw))]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(n, (str, int)) for n in raw):
        raise UserError(f"{src}: model.names: expected a list of class names")
    if len(raw) != nc:
        raise UserError(f"{src}: model.names has {len(raw)} names but the model has nc={nc} classes")
    return [str(n) for n in raw]


def _read(src: Path) -> tuple[dict, dict, list[str], torch.Tensor | None, dict]:
    """(description, float32 state_dict, names, Detect stride, top-level checkpoint dict) of a file."""
    if not src.is_file():
        raise UserError(f"{src}: file not found")
    ckpt = _unpickle(src)
    try:
        return _interpret(ckpt, src)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError, RuntimeError) as e:
        # the load builds only containers, tensors and stand-ins, but of any shape: say so, clearly
        reason = f"{type(e).__name__}: {_first_line(e)}"
        raise UserError(f"{src}: malformed YOLOv5 checkpoint ({reason})") from None


def _interpret(ckpt: Any, src: Path) -> tuple[dict, dict, list[str], torch.Tensor | None, dict]:
    """The checkpoint dict as _read returns it; UserError for anything a YOLOv5 checkpoint does not hold."""
    if not isinstance(ckpt, dict):
        raise UserError(f"{src}: not a YOLOv5 checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    if ckpt.get("format") == FORMAT:
        raise UserError(f"{src}: is already an aics checkpoint; use it directly")
    # ultralytics' own rule: the EMA weights when present
    root = ckpt["ema"] if ckpt.get("ema") is not None else ckpt.get("model")
    if root is None:
        keys = sorted(map(str, ckpt))[:8]
        raise UserError(f"{src}: not a YOLOv5 checkpoint (no 'model' entry; keys: {', '.join(keys)})")
    if not isinstance(root, StandIn) or root.global_name not in _ROOT_GLOBALS:
        raise UserError(f"{src}: not a YOLOv5 checkpoint ('model' is {root!r}, not a YOLOv5 DetectionModel)")
    state = _module_state(root, "model", src)

    yaml = state.get("yaml")
    if not isinstance(yaml, dict) or not _is_plain(yaml):
        raise UserError(f"{src}: model.yaml: missing or not a plain description; not a YOLOv5 v6+ checkpoint")
    description = {k: yaml[k] for k in (*REQUIRED_KEYS, "ch") if k in yaml}
    tensors: dict[str, torch.Tensor] = {}
    _collect_tensors(root, "", tensors, src)
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}

    # The anchors buffer is authoritative (autoanchor rewrites it, not the yaml): describe what was trained.
    children = state.get("_modules")
    sequential = children.get("model") if isinstance(children, dict) else None
    layers = _module_state(sequential, "model.model", src).get("_modules")
    if not isinstance(layers, dict) or not layers:
        raise UserError(f"{src}: model.model: no layers; not a YOLOv5 checkpoint")
    last = str(len(layers) - 1)
    anchors = state_dict.get(f"model.{last}.anchors")
    stride = _module_state(layers.get(last), f"model.{last}", src).get("stride")
    if not isinstance(stride, torch.Tensor):
        stride = None
    if isinstance(anchors, torch.Tensor) and stride is not None and anchors.dim() == 3:
        pixels = (anchors * stride.float().view(-1, 1, 1)).flatten(1).tolist()  # (nl, na * 2)
        description["anchors"] = [[int(v) if float(v).is_integer() else v for v in level] for level in pixels]
    description = check_description(description, f"{src}: model.yaml")
    names = _class_names(state.get("names"), description["nc"], src)
    return description, state_dict, names, stride, ckpt


def read_ultralytics(src: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """Read an ultralytics YOLOv5 ``.pt`` without running code from it.

    Returns ``(description, state_dict, names)``: the model yaml as a checked description dict (anchors
    taken from the weights, in pixels), the EMA weights when present else the model's, float32, with
    ultralytics' key names (= ours), and the class names (list of nc strings).
    """
    description, state_dict, names, _, _ = _read(Path(src))
    return description, state_dict, names


def _load_model(description: dict, state_dict: dict, names: list[str], stride: torch.Tensor | None,
                src: Path) -> DetectionModel:  # fmt: skip
    """Our DetectionModel for the description with the file's weights; UserError on any mismatch."""
    model = DetectionModel(description, ch=int(description.get("ch", 3)), names=names)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state_dict and own[k].shape != state_dict[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        problems = (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in problems
            if keys
        ]
        raise UserError(f"{src}: weights do not match the model its yaml describes ({'; '.join(parts)})")
    model.load_state_dict(state_dict, strict=True)
    if stride is not None and not torch.equal(stride.float().flatten(), model.stride):
        ours = model.stride.tolist()
        raise UserError(f"{src}: Detect strides {stride.tolist()} differ from the rebuilt model's {ours}")
    return model.eval()


def load_ultralytics(src: str | os.PathLike) -> DetectionModel:
    """Our DetectionModel (eval mode) with the weights and class names of an ultralytics ``.pt``."""
    src = Path(src)
    description, state_dict, names, stride, _ = _read(src)
    return _load_model(description, state_dict, names, stride, src)


def import_ultralytics(src: str | os.PathLike, dst: str | os.PathLike) -> dict:
    """Convert an ultralytics YOLOv5 ``.pt`` into an aics checkpoint at ``dst`` (atomic write).

    The checkpoint holds ``format, task='detect', model (state_dict), description, names, step=0,
    epoch=-1, metrics={}, config={}, source='ultralytics'`` and loads with ``weights_only=True``.
    Returns ``{'nc', 'names', 'params', 'epoch' (the file's, -1 when stripped), 'skipped'}`` where
    ``skipped`` lists the file's other non-empty top-level entries, which are not carried over
    (optimizer, opt, git, the non-EMA model, ...).
    """
    src, dst = Path(src), Path(dst)
    description, state_dict, names, stride, ckpt = _read(src)
    model = _load_model(description, state_dict, names, stride, src)
    used = "ema" if ckpt.get("ema") is not None else "model"
    skipped = sorted(str(k) for k, v in ckpt.items() if k not in (used, "epoch") and v is not None)
    save_checkpoint(dst, {
        "format": FORMAT,
        "task": TASK,
        "model": model.state_dict(),
        "description": description,
        "names": names,
        "step": 0,
        "epoch": -1,
        "metrics": {},
        "config": {},
        "source": "ultralytics",
    })  # fmt: skip
    epoch = ckpt.get("epoch")
    return {
        "nc": model.nc,
        "names": names,
        "params": count_parameters(model),
        "epoch": epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else -1,
        "skipped": skipped,
    }
