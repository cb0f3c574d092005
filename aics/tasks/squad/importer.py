"""Read Hugging Face BERT model dirs, and write ours as one, without running code from any file.

Usage: aics squad import path/to/hf_bert_dir --out data/squad/pretrained/minilm

A Hugging Face BERT dir holds ``config.json``, the weights as ``model.safetensors`` (or a torch pickle
``pytorch_model.bin``, or either sharded with an ``.index.json``) and the tokenizer (``vocab.txt``,
``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``). safetensors files hold only
tensors; pickles are read with torch's ``weights_only`` unpickler, which builds tensors and plain containers
and refuses any other global (``os.system``, a class of the file's) before calling it.

The dirs found in the wild differ in ways that do not matter and are smoothed over here: the keys of a
``BertModel`` lack the ``bert.`` prefix, old TensorFlow conversions call LayerNorm's parameters
``gamma``/``beta``, the ``position_ids``/``token_type_ids`` buffers may be saved or not, a pre-trained
model has a pooler and MLM/NSP heads (``cls.*``) that question answering does not use, and a fine-tuned
one already has ``qa_outputs``. Anything else that does not fit the config is an error naming the file
and the key.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import secrets
import shutil
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from aics.core.errors import UserError
from aics.core.io import fsync_path, read_json, write_json
from aics.tasks.squad.data import copy_tokenizer
from aics.tasks.squad.model import BertForQuestionAnswering, BertShape

IMPORT_FORMAT = "aics-squad-import-1"
# Weight files in the order Hugging Face prefers them.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")  # index tables, not weights
QA_KEYS = ("qa_outputs.weight", "qa_outputs.bias")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


# ---- reading weight files ----


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except Exception as e:  # SafetensorError for a bad header, truncated data, ...
        raise UserError(
            f"{path}: not a readable safetensors file ({_first_line(e)}); download it again"
        ) from None


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``: tensors and plain containers only, nothing from the file is run."""
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols before refusing them
            warnings.simplefilter("ignore")
            # memory-map the zip format (torch >= 1.6); the legacy format (old BERT files) cannot be mapped
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        # torch's own message goes on to advise weights_only=False, which would run code from the file
        name = re.search(r"GLOBAL (\S+)", str(e))
        if name:
            raise UserError(
                f"{path}: refers to '{name.group(1)}', which is not a tensor or a plain value; not loaded "
                "and nothing from it was run (use the model's model.safetensors instead)"
            ) from None
        raise UserError(
            f"{path}: not a loadable PyTorch weights file (the safe unpickler refused it); nothing from it "
            "was run"
        ) from None
    except Exception as e:  # random bytes, truncated zip, ...: the loaders fail in many ways
        if isinstance(e, OSError) and not isinstance(e, zipfile.BadZipFile) and e.filename:
            raise
        raise UserError(
            f"{path}: not a loadable PyTorch weights file (empty, truncated or not written by torch.save)"
        ) from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UserError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; not a state_dict"
            )
    return obj


def _load_sharded(index: Path, load: Callable[[Path], dict]) -> dict[str, torch.Tensor]:
    """The shards an ``*.index.json`` names (``{"weight_map": {key: file}}``), merged."""
    index_json = read_json(index)
    weight_map = index_json.get("weight_map") if isinstance(index_json, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise UserError(f"{index}: no 'weight_map' of key -> shard file name; not a sharded weights index")
    tensors: dict[str, torch.Tensor] = {}
    for name in sorted(set(weight_map.values())):
        if Path(name).name != name or name.startswith("."):
            raise UserError(f"{index}: shard {name!r} is not a file name in the same directory")
        shard = index.parent / name
        if not shard.is_file():
            raise UserError(f"{index}: names shard {name}, which is missing from {index.parent}")
        for key, value in load(shard).items():
            if key in tensors:
                raise UserError(f"{shard}: key '{key}' is in two shards")
            tensors[key] = value
    return tensors


def _read_weights(src: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    for name in WEIGHT_FILES:
        path = src / name
        if not path.is_file():
            continue
        load = _load_safetensors if name.startswith("model.safetensors") else _load_pickle
        return path, _load_sharded(path, load) if name.endswith(".index.json") else load(path)
    others = [n for n in ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index") if (src / n).exists()]
    if others:
        raise UserError(
            f"{src}: has only {others[0]} (TensorFlow/Flax weights); convert them to model.safetensors "
            "with transformers first"
        )
    raise UserError(
        f"{src}: no weights (model.safetensors or pytorch_model.bin); a Hugging Face model dir has one"
    )


# ---- key names and shapes ----


def expected_shapes(shape: BertShape) -> dict[str, tuple[int, ...]]:
    """Our state_dict's keys and shapes for ``shape`` (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        model = BertForQuestionAnswering(shape)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _our_key(key: str) -> str:
    """Hugging Face key -> ours: the ``bert.`` prefix added where a BertModel file lacks it, TensorFlow's
    LayerNorm ``gamma``/``beta`` renamed ``weight``/``bias``."""
    if key.endswith("LayerNorm.gamma"):
        key = key[: -len("gamma")] + "weight"
    elif key.endswith("LayerNorm.beta"):
        key = key[: -len("beta")] + "bias"
    if key in QA_KEYS or key.startswith("cls."):
        return key
    return key if key.startswith("bert.") else "bert." + key


def _shape_text(s: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, s)) + ")"


def _convert(tensors: dict[str, torch.Tensor], shape: BertShape, where: Path, config: Path):
    """(state with our keys, float32; notes) from a file's tensors; UserError for a key that does not fit."""
    expected = expected_shapes(shape)
    state: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}  # our key -> the file's
    pooler, heads, renamed, converted = 0, 0, 0, set()
    for key, value in tensors.items():
        ours = _our_key(key)
        if ours[len("bert.") :] in BUFFERS:
            continue
        if ours.startswith("bert.pooler."):
            pooler += 1
            continue
        if ours.startswith("cls."):
            heads += 1
            continue
        if ours not in expected:
            raise UserError(
                f"{where}: unexpected key '{key}' (not part of a BERT encoder with {shape.num_hidden_layers} "
                "layers, its pooler, its pre-training heads or a qa_outputs span head)"
            )
        if ours in state:
            raise UserError(f"{where}: keys '{source[ours]}' and '{key}' are the same tensor under two names")
        if tuple(value.shape) != expected[ours]:
            raise UserError(
                f"{where}: '{key}' has shape {_shape_text(tuple(value.shape))} but {config.name} implies "
                f"{_shape_text(expected[ours])}"
            )
        if not value.is_floating_point():
            raise UserError(f"{where}: '{key}' holds {value.dtype} values, not floating point weights")
        if value.dtype != torch.float32:
            converted.add(str(value.dtype).removeprefix("torch."))
        renamed += key.endswith(("LayerNorm.gamma", "LayerNorm.beta"))
        state[ours], source[ours] = value.float().contiguous(), key
    prefixed = any(k.startswith("bert.") for k in tensors)
    missing = [k for k in expected if k not in state and k not in QA_KEYS]
    qa = [k for k in QA_KEYS if k in state]
    if len(qa) == 1:
        missing.append(QA_KEYS[1] if qa[0] == QA_KEYS[0] else QA_KEYS[0])
    if missing:
        name = missing[0] if prefixed or missing[0] in QA_KEYS else missing[0][len("bert.") :]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(
            f"{where}: missing '{name}'{more}; the weights do not match {config.name} "
            f"(num_hidden_layers={shape.num_hidden_layers})"
        )
    notes = []
    if renamed:
        notes.append(f"renamed {renamed} LayerNorm gamma/beta tensors to weight/bias")
    if converted:
        notes.append(f"converted {', '.join(sorted(converted))} weights to float32")
    if pooler:
        notes.append(f"ignored {pooler} pooler tensors (question answering does not use the pooler)")
    if heads:
        notes.append(f"ignored {heads} pre-training head tensors (cls.*: masked LM / next sentence)")
    notes.append("qa_outputs kept from the source" if qa else "qa_outputs newly initialised")
    return state, notes


# ---- tokenizer files ----


def _vocab_entries(path: Path) -> int:
    """Tokens in a vocab.txt: one per line (split on newlines only; BERT vocabularies hold tokens that
    ``str.splitlines`` would split)."""
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _tokenizer_json_size(path: Path) -> int:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path)).get_vocab_size(with_added_tokens=True)
    except Exception as e:
        raise UserError(f"{path}: not a readable tokenizer.json ({_first_line(e)})") from None


def check_vocab(model_dir: Path, vocab_size: int) -> None:
    """The tokenizer files present in ``model_dir`` must have exactly ``vocab_size`` tokens."""
    for name, count in (("vocab.txt", _vocab_entries), ("tokenizer.json", _tokenizer_json_size)):
        path = model_dir / name
        if path.is_file():
            n = count(path)
            if n != vocab_size:
                raise UserError(
                    f"{path}: {name} has {n} entries but the embeddings have {vocab_size} rows; use the "
                    "tokenizer files that came with these weights"
                )


# ---- public API ----


def read_hf_dir(src: str | os.PathLike) -> tuple[BertShape, dict[str, torch.Tensor], list[str]]:
    """A Hugging Face BERT dir -> ``(shape, state_dict with our keys (float32, CPU), notes)``.

    The state has every encoder key and ``qa_outputs.*`` only when the source has them; ``notes`` says
    what was renamed, converted or ignored, one line each.
    """
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"{src}: not a directory; give a Hugging Face model dir (config.json + weights)")
    config = src / "config.json"
    if not config.is_file():
        raise UserError(
            f"{src}: no config.json; a Hugging Face model dir has config.json next to its weights"
        )
    shape = BertShape.from_hf_config(read_json(config), str(config))
    weights, tensors = _read_weights(src)
    state, notes = _convert(tensors, shape, weights, config)
    check_vocab(src, shape.vocab_size)
    return shape, state, notes


def load_into(model: nn.Module, state: dict[str, torch.Tensor], where: str | os.PathLike) -> None:
    """``model.load_state_dict(state)``, strict except that ``qa_outputs`` may be missing (then the model
    keeps its freshly initialised span head); UserError naming ``where`` when the weights do not fit."""
    own = model.state_dict()
    optional = QA_KEYS if not any(k in state for k in QA_KEYS) else ()  # both missing: a new span head
    missing = [k for k in own if k not in state and k not in optional]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {_shape_text(tuple(state[k].shape))} vs {_shape_text(tuple(own[k].shape))}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = [(label, keys) for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                 ("shape", shapes)) if keys]  # fmt: skip
    if problems:
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}" for label, keys in problems
        ]
        raise UserError(f"{where}: the weights do not fit the model ({'; '.join(parts)})")
    model.load_state_dict(state, strict=False)


def import_hf(src: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False) -> dict:
    """Check a Hugging Face BERT dir and write it as our canonical dir ``out``: ``config.json``,
    ``model.safetensors`` (our keys), the tokenizer files and ``import.json`` (source, notes, parameters).

    ``out`` appears complete or not at all (written beside it, then renamed). Returns import.json's dict.
    """
    src, out = Path(src), Path(out)
    _check_out(out, overwrite)
    if out.resolve() == src.resolve():
        raise UserError(f"{out}: is the source dir; import into another directory")
    shape, state, notes = read_hf_dir(src)
    if not any((src / n).is_file() for n in ("vocab.txt", "tokenizer.json")):
        raise UserError(
            f"{src}: no vocab.txt or tokenizer.json; copy in the tokenizer files that came with these weights"
        )
    info = {
        "format": IMPORT_FORMAT,
        "source": str(src.resolve()),
        "notes": notes,
        "parameters": sum(math.prod(s) for s in expected_shapes(shape).values()),
        "qa_outputs": "source" if QA_KEYS[0] in state else "new",
        "shape": asdict(shape),
    }

    def fill(tmp: Path) -> None:
        write_json(tmp / "config.json", shape.to_hf_config())
        _save_safetensors(state, tmp / "model.safetensors")
        info["tokenizer_files"] = copy_tokenizer(src, tmp)
        write_json(tmp / "import.json", info)

    _write_dir(out, overwrite, fill)
    return info


def export_hf(
    model: nn.Module,
    shape: BertShape,
    tokenizer_src_dir: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a Hugging Face dir that ``BertForQuestionAnswering.from_pretrained(out)`` and
    ``AutoTokenizer.from_pretrained(out)`` load as is: config.json, model.safetensors, tokenizer files."""
    tok, out = Path(tokenizer_src_dir), Path(out)
    _check_out(out, overwrite)
    if not any((tok / n).is_file() for n in ("vocab.txt", "tokenizer.json")):
        raise UserError(f"{tok}: no vocab.txt or tokenizer.json to export with the model")
    check_vocab(tok, shape.vocab_size)
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    got, expected = {k: tuple(v.shape) for k, v in state.items()}, expected_shapes(shape)
    if got != expected:
        key = sorted(k for k in got.keys() | expected.keys() if got.get(k) != expected.get(k))[0]
        raise UserError(f"{out}: not exported: the model's '{key}' does not fit the shape given for it")

    def fill(tmp: Path) -> None:
        write_json(tmp / "config.json", shape.to_hf_config())
        _save_safetensors(state, tmp / "model.safetensors")
        copy_tokenizer(tok, tmp)

    _write_dir(out, overwrite, fill)
    return out


# ---- writing a directory atomically ----


def _save_safetensors(state: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file(state, path, metadata={"format": "pt"})
    os.chmod(path, path.parent.stat().st_mode & 0o666)  # safetensors makes it 0600; the umask's mode instead
    fsync_path(path)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another output path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: exists and is not empty; choose another directory, or pass --overwrite")


def _write_dir(out: Path, overwrite: bool, fill: Callable[[Path], None]) -> None:
    """Let ``fill`` write into a fresh directory beside ``out``, then rename it to ``out`` (replacing an
    existing ``out`` only with ``overwrite``): a crash midway leaves no half-written ``out``."""
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    old = None
    try:
        fill(tmp)
        fsync_path(tmp)
        if out.is_dir() and any(out.iterdir()):
            old = out.parent / f".{out.name}.{secrets.token_hex(4)}.old"
            os.replace(out, old)
        os.replace(tmp, out)  # over nothing or an empty directory
        fsync_path(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)  # put the previous dir back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
