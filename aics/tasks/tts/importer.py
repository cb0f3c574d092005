"""Read NVIDIA's Tacotron2 and WaveGlow checkpoint files without running code from them.

Layouts read (all plain dicts of tensors, loaded with ``torch.load(weights_only=True)``):

- DeepLearningExamples 2019 (``nvidia_tacotron2pyt_fp32_20190427``, ``nvidia_waveglowpyt_fp32_20190427``):
  ``{'epoch', 'config', 'state_dict'}``, keys often prefixed ``module.`` (distributed training);
- DeepLearningExamples today: the same plus ``optimizer``, ``scaler`` and RNG states;
- NVIDIA/tacotron2's ``tacotron2_statedict.pt``: ``{'state_dict', 'optimizer', 'iteration', ...}``, no config
  (it is read from the weight shapes);
- a bare state_dict, and WaveGlow weights whose coupling nets use one stacked ``cond_layer``
  (NVIDIA/waveglow's newer code) instead of one ``cond_layers.i`` per layer: split into the per-layer form.

aics's own files are read too: ``aics tts train`` and ``train-waveglow`` checkpoints (``model`` and,
under ``extra``, the ``tacotron2`` or ``waveglow`` config), and voices as ``.safetensors`` with the config
as JSON in the file's metadata.

NVIDIA/waveglow's own release files pickle the whole Python model object (``{'model': <glow.WaveGlow>}``):
they are refused, before anything in them runs, with a line saying how to get a dict file.

Every load checks the keys and shapes against the model the config describes and names what is missing,
unexpected or mis-shaped.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from aics.core.errors import UserError
from aics.tasks.tts.model import Tacotron2, Tacotron2Config
from aics.tasks.tts.waveglow import WaveGlow, WaveGlowConfig, WNConfig


@dataclass
class KeyReport:
    missing: list[str]
    unexpected: list[str]
    mis_shaped: list[str]  # "key: file (a, b) vs model (c, d)"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mis_shaped)

    def lines(self) -> list[str]:
        if self.ok:
            return ["keys: every key and shape matches the model"]
        out = []
        for name, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.mis_shaped),
        ):
            if items:
                out.append(
                    f"{name} ({len(items)}): " + ", ".join(items[:8]) + (" ..." if len(items) > 8 else "")
                )
        return out

    def summary(self) -> str:
        return "; ".join(self.lines())


@dataclass
class Imported:
    kind: str
    config: Tacotron2Config | WaveGlowConfig
    state_dict: dict[str, torch.Tensor]
    report: KeyReport
    layout: str  # what the file looked like, for `aics tts info`
    extra: dict  # other top-level entries of the file (epoch, iteration, ...), primitives only
    model: torch.nn.Module  # built from ``config`` (random weights), what the keys were checked against
    arpabet: float = 0.0  # the share of words given as ARPAbet phones in training (aics files say; else 0)


def _load_safetensors(path: Path) -> dict:
    """An aics voice file: the weights, and NVIDIA's ``config`` as JSON in the file's metadata."""
    import json

    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({str(e)[:120]})") from None
    try:
        config = json.loads(meta.get("config", "{}"))
        text = json.loads(meta.get("text", "{}"))
    except json.JSONDecodeError:
        raise UserError(f"{path}: its metadata 'config' or 'text' is not JSON") from None
    out = {"state_dict": sd, "config": config, "layout": "aics voice (safetensors)", "text": text}
    if isinstance(text, dict) and "arpabet" in text:
        out["text.arpabet"] = text["arpabet"]
    out.update(_voice_info(meta.get("info")))
    return out


def _voice_info(raw: str | None) -> dict:
    """What ``aics tts export`` recorded about a voice (source, note, scores) as printable one-liners."""
    import json

    try:
        info = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(info, dict):
        return {}
    out = {k: info[k] for k in ("source", "note") if isinstance(info.get(k), str)}
    sc = info.get("scores")
    if isinstance(sc, dict):
        labels = (("wer_synth", "judge WER"), ("cer_synth", "CER"), ("wer_real", "real recordings' WER"))
        parts = [f"{label} {100 * sc[k]:.2f} %" for k, label in labels if isinstance(sc.get(k), (int, float))]
        if isinstance(sc.get("mcd_dtw_db"), (int, float)):
            parts.append(f"MCD-DTW {sc['mcd_dtw_db']:.2f} dB")
        if parts:
            n = sc.get("utterances")
            out["scores"] = ", ".join(parts) + (f" ({n} {sc.get('subset', '')} utterances)" if n else "")
    return out


def _load(path: Path) -> object:
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not found and "Unsupported global" not in str(e):
            why = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(e))
            reason = why.group(1) if why else (str(e).strip().splitlines() or ["unreadable"])[0]
            raise UserError(f"{path}: not a torch checkpoint ({reason[:120]})") from None
        what = f" ({found.group(1)})" if found else ""
        raise UserError(
            f"{path}: holds a pickled Python object{what}, not a dict of tensors; refused without running "
            "it. Use DeepLearningExamples' checkpoint, or save its state_dict (and config) as a dict"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise UserError(f"{path}: not a torch checkpoint ({reason})") from None


def _strip_prefixes(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        for prefix in ("module.1.", "module."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
                break
        out[k] = v
    return out


def _state_dict(obj: object, path: Path) -> tuple[dict, dict, str]:
    """(state_dict, the file's config or {}, layout name)."""
    if not isinstance(obj, dict):
        raise UserError(
            f"{path}: holds a {type(obj).__name__}, not NVIDIA's dict format ({{'state_dict': ...}})"
        )
    if "state_dict" in obj:
        sd, config = obj["state_dict"], obj.get("config") or {}
        layout = obj.get("layout") or (
            "DeepLearningExamples" if "config" in obj else "NVIDIA/tacotron2 (no config)"
        )
    elif obj.get("task") == "tts" and isinstance(obj.get("model"), dict):  # `aics tts train(-waveglow)`'s
        extra = obj.get("extra") or {}
        sd, layout = obj["model"], "aics training"
        config = extra.get("tacotron2") or extra.get("waveglow") or {}
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd, config, layout = obj, {}, "bare state_dict"
    else:
        keys = ", ".join(sorted(map(str, obj))[:6])
        raise UserError(f"{path}: has no 'state_dict' (its keys: {keys}); not NVIDIA's dict format")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path}: its 'state_dict' is not a dict of tensors")
    if not isinstance(config, dict):
        raise UserError(f"{path}: its 'config' is not a dict")
    return _strip_prefixes(sd), config, layout


def guess_kind(sd: dict) -> str | None:
    if "embedding.weight" in sd or any(k.startswith("decoder.") for k in sd):
        return "tacotron2"
    if "upsample.weight" in sd or any(k.startswith("WN.") for k in sd):
        return "waveglow"
    return None


def _dataclass_from(cls, values: dict):
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


def tacotron2_config(sd: dict, config: dict, path: Path) -> Tacotron2Config:
    """The file's config, else the sizes read from the weights (NVIDIA/tacotron2 files have none)."""
    if config:
        return _dataclass_from(Tacotron2Config, config)
    c = Tacotron2Config()
    try:
        c.n_symbols, c.symbols_embedding_dim = sd["embedding.weight"].shape
        c.encoder_embedding_dim = c.symbols_embedding_dim
        c.encoder_n_convolutions = len({k.split(".")[2] for k in sd if k.startswith("encoder.convolutions.")})
        c.encoder_kernel_size = sd["encoder.convolutions.0.0.conv.weight"].shape[2]
        c.attention_rnn_dim = sd["decoder.attention_rnn.weight_hh"].shape[1]
        c.decoder_rnn_dim = sd["decoder.decoder_rnn.weight_hh"].shape[1]
        c.prenet_dim, c.n_mel_channels = sd["decoder.prenet.layers.0.linear_layer.weight"].shape
        c.n_frames_per_step = sd["decoder.linear_projection.linear_layer.weight"].shape[0] // c.n_mel_channels
        c.attention_dim = sd["decoder.attention_layer.v.linear_layer.weight"].shape[1]
        loc = sd["decoder.attention_layer.location_layer.location_conv.conv.weight"]
        c.attention_location_n_filters, _, c.attention_location_kernel_size = loc.shape
        c.postnet_n_convolutions = len({k.split(".")[2] for k in sd if k.startswith("postnet.convolutions.")})
        c.postnet_embedding_dim = sd["postnet.convolutions.0.0.conv.weight"].shape[0]
        c.postnet_kernel_size = sd["postnet.convolutions.0.0.conv.weight"].shape[2]
    except (KeyError, ValueError) as e:
        raise UserError(
            f"{path}: has no config and lacks Tacotron2 weight {e}; not a Tacotron2 checkpoint"
        ) from None
    return c


def _split_stacked_cond(sd: dict) -> dict:
    """NVIDIA/waveglow's one ``WN.k.cond_layer`` (all layers' conditioning stacked) -> ``cond_layers.i``."""
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(r"(WN\.\d+)\.cond_layer\.(weight_g|weight_v|bias|weight)", k)
        if not m:
            out[k] = v
            continue
        layer = re.compile(rf"{re.escape(m.group(1))}\.in_layers\.(\d+)\.")
        n_layers = 1 + max(int(x.group(1)) for x in map(layer.match, sd) if x)
        for i, chunk in enumerate(v.chunk(n_layers, dim=0)):
            out[f"{m.group(1)}.cond_layers.{i}.{m.group(2)}"] = chunk.clone()
    return out


def waveglow_config(sd: dict, config: dict, path: Path) -> WaveGlowConfig:
    if config:
        wn = config.get("WN_config") or {}
        c = _dataclass_from(WaveGlowConfig, {k: v for k, v in config.items() if k != "WN_config"})
        c.WN_config = _dataclass_from(WNConfig, wn)
        return c
    c = WaveGlowConfig()
    try:
        c.n_flows = len({k.split(".")[1] for k in sd if k.startswith("WN.")})
        c.WN_config.n_channels = sd["WN.0.start.weight_v"].shape[0]
        c.WN_config.n_layers = len({k.split(".")[3] for k in sd if k.startswith("WN.0.in_layers.")})
        c.WN_config.kernel_size = sd["WN.0.in_layers.0.weight_v"].shape[2]
        c.n_mel_channels = sd["upsample.weight"].shape[0]
        c.n_group = sd["convinv.0.conv.weight"].shape[0]
    except (KeyError, ValueError) as e:
        raise UserError(
            f"{path}: has no config and lacks WaveGlow weight {e}; not a WaveGlow checkpoint"
        ) from None
    return c


def key_report(model: torch.nn.Module, sd: dict) -> KeyReport:
    want = model.state_dict()
    missing = [k for k in want if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in want]
    mis_shaped = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in want.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    return KeyReport(missing, unexpected, mis_shaped)


def read_checkpoint(path: str | Path, kind: str | None = None) -> Imported:
    """The config, state_dict and key report of a Tacotron2 or WaveGlow file (``kind`` None: guessed)."""
    path = Path(path)
    obj = _load(path)
    sd, config, layout = _state_dict(obj, path)
    guessed = guess_kind(sd)
    if kind is None:
        if guessed is None:
            raise UserError(f"{path}: neither Tacotron2 nor WaveGlow weights (no embedding.weight, no WN.*)")
        kind = guessed
    elif guessed is not None and guessed != kind:
        raise UserError(f"{path}: holds {guessed} weights, not {kind}; pass it as --{guessed}")
    if kind == "tacotron2":
        cfg = tacotron2_config(sd, config, path)
        model: torch.nn.Module = Tacotron2(cfg)
    else:
        sd = _split_stacked_cond(sd)
        cfg = waveglow_config(sd, config, path)
        model = WaveGlow(cfg)
    skip = ("state_dict", "layout", "format", "task")
    extra = {k: v for k, v in obj.items() if isinstance(v, (int, float, str, bool)) and k not in skip}
    text = obj.get("text") if layout.startswith("aics voice") else (obj.get("config") or {}).get("text")
    arpabet = float(text.get("arpabet", 0.0)) if layout.startswith("aics") and isinstance(text, dict) else 0.0
    return Imported(kind, cfg, sd, key_report(model, sd), layout, extra, model, arpabet)


def load_model(path: str | Path, kind: str, device: str | torch.device = "cpu"):
    """A Tacotron2 or WaveGlow from ``path`` in eval mode, or one line naming what does not fit."""
    imp = read_checkpoint(path, kind)
    if not imp.report.ok:
        raise UserError(f"{path}: its weights do not fit {kind} ({imp.report.summary()})")
    imp.model.load_state_dict(imp.state_dict, strict=False)  # num_batches_tracked may be absent
    return imp.model.to(device).eval(), imp
