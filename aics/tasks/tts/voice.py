"""Voices that ship with aics: a Tacotron2 as one ``.safetensors`` file (its config as JSON in the file's
metadata), a ``.json`` copy of that config and a model card, in ``aics/tasks/tts/voices/``.

Usage: aics tts export --ckpt exp/tts/t2/ckpt/best.pt --out aics/tasks/tts/voices/default.safetensors

``aics tts TEXT -o out.wav`` speaks with ``voices/default.safetensors`` when no ``--tacotron2`` is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from aics.core.errors import UserError

VOICES = Path(__file__).resolve().parent / "voices"
DEFAULT_VOICE = VOICES / "default.safetensors"
FORMAT = "aics-tts-voice-1"


def default_voice() -> Path | None:
    return DEFAULT_VOICE if DEFAULT_VOICE.is_file() else None


def export_voice(ckpt: str | Path, out: str | Path, info: dict | None = None) -> dict:
    """Write a Tacotron2 checkpoint's weights (float32) as a voice file; ``info`` (command, data, seed,
    scores...) goes into the metadata too. Returns what was written."""
    import torch
    from safetensors.torch import save_file

    from aics.core.io import atomic_write, write_text
    from aics.tasks.tts.importer import load_model

    out = Path(out)
    if out.suffix != ".safetensors":
        raise UserError(f"{out}: a voice file ends in .safetensors")
    model, imp = load_model(ckpt, "tacotron2")
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}  # fmt: skip
    config = asdict(imp.config)
    meta = {"format": FORMAT, "config": json.dumps(config), "info": json.dumps(info or {}),
            "text": json.dumps({"arpabet": imp.arpabet})}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    with open(tmp, "rb") as src, atomic_write(out, "wb") as dst:
        dst.write(src.read())
    tmp.unlink()
    write_text(out.with_suffix(".json"), json.dumps(config, indent=2) + "\n")
    n = sum(p.numel() for p in model.parameters())
    return {"path": str(out), "parameters": n, "bytes": out.stat().st_size, "config": config}
