"""Dataclass configs: defaults < YAML files < ``--set a.b=v``. Unknown keys and wrong types are errors.

A task declares its config as a tree of dataclasses whose defaults are the tiny CPU preset::

    @dataclass
    class ModelConfig:
        zdim: int = option(2, help="latent size")

    @dataclass
    class Config:
        model: ModelConfig = section(ModelConfig, help="the network")

``load_config(Config, files, overrides)`` builds it; every error names the file or ``--set`` and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from aics.core.errors import UserError
from aics.core.io import write_text

T = TypeVar("T")


def option(default: Any, *, help: str, choices: tuple | None = None, min: float | None = None) -> Any:
    """A config field with a one-line help, and optionally the allowed values or the smallest one."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if min is not None:
        meta["min"] = min
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, *, help: str) -> Any:
    """A nested config section (another dataclass) with its one-line help."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise _Mismatch. Only lossless conversions are made."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _Mismatch
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        items = [_coerce(v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    raise TypeError(f"config fields of type {tp!r} are not supported")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; known keys: {', '.join(known)}"


def _set_value(obj: Any, name: str, value: Any, keypath: str, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hint = _hints(type(obj))[name]
    field = fields[name]
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise UserError(f"{source}: '{keypath}' is a section; give a mapping of its keys, not {value!r}")
        merge_mapping(getattr(obj, name), value, keypath + ".", source)
        return
    try:
        coerced = _coerce(value, hint)
    except _Mismatch:
        raise UserError(
            f"{source}: '{keypath}' must be {_type_name(hint)}, got {value!r}; "
            f"fix the value ({field.metadata.get('help', '')})"
        ) from None
    choices = field.metadata.get("choices")
    if choices is not None and coerced not in choices:
        raise UserError(
            f"{source}: '{keypath}' must be one of {', '.join(map(str, choices))}, got {coerced!r}"
        )
    low = field.metadata.get("min")
    if low is not None and coerced is not None and coerced < low:
        raise UserError(f"{source}: '{keypath}' must be at least {low}, got {coerced!r}")
    setattr(obj, name, coerced)


def merge_mapping(obj: Any, data: dict, prefix: str, source: str) -> None:
    """Set the keys of ``data`` on the dataclass ``obj`` (nested dicts into sections); errors name
    ``source``."""
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in data.items():
        keypath = f"{prefix}{key}"
        if key not in names:
            known = [f"{prefix}{n}" for n in names]
            raise UserError(f"{source}: unknown key '{keypath}'{_suggest(keypath, known)}")
        _set_value(obj, key, value, keypath, source)


def apply_override(obj: Any, override: str) -> None:
    """Apply one ``a.b=value`` override; the value is parsed as YAML unless the field is a string."""
    source = f"--set {override}"
    if "=" not in override:
        raise UserError(f"{source}: expected KEY=VALUE, e.g. --set train.lr=0.001")
    keypath, raw = override.split("=", 1)
    parts = keypath.strip().split(".")
    target = obj
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        prefix = ".".join(parts[:i])
        if part not in names:
            known = [f"{prefix}.{n}" if prefix else n for n in names]
            raise UserError(f"{source}: unknown key '{keypath}'{_suggest(keypath, known)}")
        hint = _hints(type(target))[part]
        if i < len(parts) - 1:
            if not dataclasses.is_dataclass(hint):
                raise UserError(f"{source}: '{'.'.join(parts[: i + 1])}' is not a section")
            target = getattr(target, part)
            continue
        if hint is str or (
            typing.get_origin(hint) in (Union, types.UnionType) and str in typing.get_args(hint)
        ):
            value: Any = None if raw in ("null", "~") and hint is not str else raw
        else:
            try:
                value = yaml.safe_load(raw) if raw != "" else None
            except yaml.YAMLError:
                value = raw
        _set_value(target, part, value, keypath, source)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found; check the --conf path")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: not a UTF-8 text file (byte 0x{raw[e.start]:02x}); pass a YAML config, "
            "saved as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config file must be a mapping of keys, not {type(data).__name__}")
    return data


def load_config(cls: type[T], files: list | tuple = (), overrides: list | tuple = ()) -> T:
    """Defaults of ``cls``, then each YAML file in order, then each ``a.b=v`` override."""
    obj = cls()
    for f in files:
        merge_mapping(obj, load_yaml(f), "", str(f))
    for o in overrides:
        apply_override(obj, o)
    return obj


def from_dict(cls: type[T], data: dict, source: str = "config") -> T:
    obj = cls()
    merge_mapping(obj, data, "", source)
    return obj


def to_dict(obj: Any) -> dict:
    """The config as plain primitives (safe for YAML, JSON and weights_only checkpoints)."""
    return _plain(dataclasses.asdict(obj))


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_keys(a: dict, b: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    fa, fb = flatten(a), flatten(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


def to_yaml(obj: Any, comments: bool = False) -> str:
    """YAML text of a config; with ``comments`` every key carries its one-line help."""
    if not comments:
        return yaml.safe_dump(to_dict(obj), sort_keys=False)
    lines: list[str] = []
    _commented(obj, 0, lines)
    return "\n".join(lines) + "\n"


def _commented(obj: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        help_text = f.metadata.get("help", "")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:  # {help_text}")
            _commented(value, indent + 1, lines)
            continue
        dumped = yaml.safe_dump({f.name: _plain(value)}, default_flow_style=True, width=10_000).strip()
        dumped = dumped[1:-1] if dumped.startswith("{") else dumped
        choices = f.metadata.get("choices")
        extra = f" [{' | '.join(map(str, choices))}]" if choices else ""
        lines.append(f"{pad}{dumped}  # {help_text}{extra}")


def save_config(obj: Any, path: str | Path) -> None:
    write_text(path, to_yaml(obj))


@dataclass
class RunOptions:
    """Fields every task's ``train`` section shares (a task's TrainConfig extends it)."""

    seed: int = option(0, help="seed for weights, data order, dropout and sampling noise")
    device: str = option("auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    amp: bool = option(True, help="mixed precision on CUDA (ignored on CPU)")
    deterministic: bool = option(False, help="deterministic kernels (slower on GPU)")
    log_every: int = option(50, help="log the train loss every N steps", min=1)
    save_every_steps: int = option(0, help="also write last.pt every N steps (0: at epoch ends only)", min=0)
    max_steps: int = option(
        0, help="stop after N optimizer steps in total, saving last.pt (0: no limit)", min=0
    )
    keep_epochs: int = option(0, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
