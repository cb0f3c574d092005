"""Benchmarks (``make bench``): speed and quality-at-budget targets, never asserted in CI tests.

Usage: python bench/run.py [--only NAME] [--out bench/out]

Each benchmark prints one line of numbers and appends a JSON record to ``bench/out/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_startup(repeats: int = 10) -> dict:
    """Wall time of `aics --help` and `aics --version` (target: well under 0.5 s; torch is not imported)."""
    out = {}
    for args in (["--help"], ["--version"], ["vae", "--help"]):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aics", *args], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        out[" ".join(args)] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    out["reference: python -c 'import torch'"] = {"median_s": round(time.perf_counter() - t, 3)}
    return out


def vae_train_speed(steps: int = 200) -> dict:
    """Training images/s of the base MLP VAE (hidden 512, batch 128) on random 28x28 images."""
    import torch

    from aics.tasks.vae.model import VAE, bernoulli_nll, kl_to_standard_normal

    out = {}
    for arch in ("mlp", "conv"):
        torch.manual_seed(0)
        model = VAE(2, arch=arch, hidden=512)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = torch.rand(128, 1, 28, 28)
        for i in range(steps + 10):
            if i == 10:
                t = time.perf_counter()
            logits, mu, logvar = model(x)
            loss = (bernoulli_nll(logits, x) + kl_to_standard_normal(mu, logvar)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[arch] = {"images_per_s": round(steps * 128 / (time.perf_counter() - t))}
    return out


def lm_train_speed(steps: int = 30) -> dict:
    """Training tokens/s per LM architecture at one size: emb 128, hidden 256, 2 layers, vocab 3000,
    batch 32 x 35 tokens (the recipe's CPU setting), with the trainer's CPU settings (foreach Adam, freed
    memory kept for reuse)."""
    import torch
    import torch.nn.functional as F

    from aics.core.config import load_config
    from aics.core.runtime import keep_freed_memory
    from aics.tasks.lm.config import ARCHS, LMConfig
    from aics.tasks.lm.model import build_lm

    keep_freed_memory()
    out = {}
    vocab, batch, bptt = 3000, 32, 35
    for arch in ARCHS:
        torch.manual_seed(0)
        cfg = load_config(
            LMConfig, [], [f"model.arch={arch}", "model.emb=128", "model.hidden=256", "model.context=5"]
        )
        model = build_lm(cfg.model, vocab)
        opt = torch.optim.Adam(model.parameters(), 1e-3, foreach=True)
        x = torch.randint(0, vocab, (batch, model.prefix + bptt))
        y = torch.randint(0, vocab, (batch, bptt))
        for i in range(steps + 3):
            if i == 3:
                t = time.perf_counter()
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        params = sum(p.numel() for p in model.parameters())
        out[arch] = {
            "tokens_per_s": round(steps * batch * bptt / (time.perf_counter() - t)),
            "params": params,
        }
    return out


def lm_matched_speed(steps: int = 60) -> dict:
    """`aics lm train` itself on the setting of pytorch/examples' word_language_model that issue 7 compares
    with: a 10k-word synthetic corpus (1M train tokens, PTB layout), 2x256 tied LSTM, batch 32 x 35,
    dropout 0.2, clip 0.25; Adam (the default) and SGD at lr 20, one thread and the default threads.
    Tokens/s is the median over 10-step intervals after the first 10 steps (from log/metrics.jsonl). The
    examples script reads the same corpus/train.txt, valid.txt, test.txt; run it by hand to compare:
    ``python main.py --data CORPUS --model LSTM --emsize 256 --nhid 256 --nlayers 2 --tied --batch_size 32
    --bptt 35 --dropout 0.2 --clip 0.25 --log-interval 10`` (its ms/batch lines)."""
    import os
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-lm-"))
    aics = [sys.executable, "-m", "aics", "lm"]
    corpus, data = str(work / "corpus"), str(work / "data")
    try:
        subprocess.run([*aics, "synth", "--out", corpus, "--vocab-size", "10000"], check=True)
        subprocess.run([*aics, "prepare", "--src", corpus, "--out", data], check=True)
        out = {}
        for threads in ("1", "default"):
            env = dict(os.environ)
            if threads != "default":
                env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            for opt, sets in (("adam", []), ("sgd", ["train.optimizer=sgd", "train.lr=20"])):
                exp = work / f"exp_{opt}_{threads}"
                sets = ["model.dropout=0.2", "model.emb_dropout=0.2", "train.clip=0.25", "train.log_every=10",
                        f"train.max_steps={steps}", *sets]  # fmt: skip
                subprocess.run(
                    [*aics, "train", "--data", data, "--exp", str(exp), "--conf",
                     str(ROOT / "recipes/lm/conf/lstm.yaml"), *(a for s in sets for a in ("--set", s))],
                    check=True, env=env, capture_output=True,
                )  # fmt: skip
                log = (exp / "log/metrics.jsonl").read_text().splitlines()
                times = [r["time"] for r in map(json.loads, log) if r["split"] == "train"]
                per_step = statistics.median(b - a for a, b in zip(times, times[1:], strict=False)) / 10
                out[f"{opt}_threads_{threads}"] = {"tokens_per_s": round(32 * 35 / per_step)}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def detect_speed(steps: int = 6, batch: int = 8) -> dict:
    """YOLOv5 n and s on this CPU: training images/s (forward, loss, backward, SGD step at 320 px, batch 8,
    random images with 8 boxes each) and inference images/s (fused, eval, batch 1 and 8, 320 and 640 px,
    without NMS)."""
    import torch

    from aics.tasks.detect.loss import YoloLoss, hyp_for_model
    from aics.tasks.detect.model import build_model, count_parameters

    out = {}
    hyp = {
        "box": 0.05,
        "cls": 0.5,
        "obj": 1.0,
        "cls_pw": 1.0,
        "obj_pw": 1.0,
        "anchor_t": 4.0,
        "fl_gamma": 0.0,
    }
    for size in ("n", "s"):
        torch.manual_seed(0)
        model = build_model(size, nc=6)
        loss_fn = YoloLoss(model.detect, hyp_for_model(hyp, 6, 3, 320))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
        x = torch.rand(batch, 3, 320, 320)
        g = torch.Generator().manual_seed(0)
        boxes = torch.cat(
            (
                torch.rand(batch * 8, 2, generator=g) * 0.6 + 0.2,
                torch.rand(batch * 8, 2, generator=g) * 0.3 + 0.05,
            ),
            1,
        )
        targets = torch.cat((torch.arange(batch).repeat_interleave(8)[:, None].float(),
                             torch.randint(0, 6, (batch * 8, 1), generator=g).float(), boxes), 1)  # fmt: skip
        model.train()
        for i in range(steps + 2):
            if i == 2:
                t = time.perf_counter()
            loss, _ = loss_fn(model(x), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
        record = {
            "params": count_parameters(model),
            "train_320_images_per_s": round(steps * batch / (time.perf_counter() - t), 1),
        }
        model.eval().fuse()
        with torch.no_grad():
            for imgsz in (320, 640):
                for bs in (1, 8):
                    xi = torch.rand(bs, 3, imgsz, imgsz)
                    reps = max(2, 16 // bs) if imgsz == 320 else max(1, 8 // bs)
                    model(xi)
                    t = time.perf_counter()
                    for _ in range(reps):
                        model(xi)
                    record[f"infer_{imgsz}_b{bs}_images_per_s"] = round(
                        reps * bs / (time.perf_counter() - t), 1
                    )
        out[f"yolov5{size}"] = record
    return out


def _shapes_set(out: Path, train_images: int, imgsz: int) -> Path:
    """An offline shapes dataset (``aics detect synth``) in ``out``; returns its data yaml."""
    subprocess.run(
        [sys.executable, "-m", "aics", "detect", "synth", "--out", str(out),
         "--train-images", str(train_images), "--val-images", "32", "--imgsz", str(imgsz), "--seed", "0"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out / "data.yaml"


def detect_data_speed(train_images: int = 200, repeats: int = 3) -> dict:
    """The training data pipeline alone: ms per item of the train YoloDataset (mosaic, random_perspective,
    HSV and flips with the default hyp) at 320 and 640 px, images cached in RAM (the default) and read from
    disk, on 200 shapes images of up to 640 px. Median of ``repeats`` passes over the set."""
    import shutil
    import tempfile

    from aics.tasks.detect.data import YoloDataset
    from aics.tasks.detect.dataset_yaml import load_data_yaml
    from aics.tasks.detect.labels import scan_labels

    work = Path(tempfile.mkdtemp(prefix="aics-bench-detect-data-"))
    try:
        spec = load_data_yaml(_shapes_set(work / "shapes", train_images, 640))
        samples = scan_labels(spec.train, spec.nc).samples
        out = {}
        for imgsz in (320, 640):
            for cached in (True, False):
                ds = YoloDataset(samples, img_size=imgsz, augment=True, seed=0, cache_images=cached)
                times = []
                for epoch in range(repeats + 1):
                    ds.set_epoch(epoch)
                    t = time.perf_counter()
                    for i in range(len(ds)):
                        ds[i]
                    times.append((time.perf_counter() - t) / len(ds) * 1e3)
                key = f"{imgsz}px_{'cached' if cached else 'from_disk'}_ms_per_item"
                out[key] = round(statistics.median(times[1:]), 3)  # the first pass warms the file cache
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def detect_epoch_speed(train_images: int = 200, epochs: int = 2) -> dict:
    """yolov5n training from scratch on 200 shapes images at 320 px (batch 16, 2 workers, images cached,
    validation only after the last epoch, no plots): seconds per training epoch as the trainer counts them
    (data loading, forward, backward, steps; validation excluded), and images/s."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-detect-epoch-"))
    try:
        data = _shapes_set(work / "shapes", train_images, 320)
        exp = work / "exp"
        subprocess.run(
            [sys.executable, "-m", "aics", "detect", "train", "--data", str(data), "--exp", str(exp),
             "--set", f"train.epochs={epochs}", "--set", f"train.val_every={epochs}",
             "--set", "train.plots=false", "--set", "train.autoanchor=false"],
            check=True, capture_output=True,
        )  # fmt: skip
        done = json.loads((exp / ".done").read_text())
        return {
            "epochs": epochs,
            "train_s_per_epoch": round(done["train_seconds"] / epochs, 2),
            "images_per_s": done["images_per_s"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def detect_quality(minutes: float = 20.0) -> dict:
    """yolov5n from scratch on the offline shapes set (recipe stages 0 to 2 with conf/base.yaml): the best
    mAP its validation reached within ``minutes`` of wall time from the start of the recipe (goal: mAP@0.5
    >= 0.9 within 20 minutes on this CPU), and where the whole schedule ended."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-detect-"))
    try:
        t0 = time.time()
        subprocess.run(
            ["bash", str(ROOT / "recipes/yolov5/run.sh"), "--stage", "0", "--stop-stage", "2",
             "--conf", str(ROOT / "recipes/yolov5/conf/base.yaml"), "--data", str(work / "data"),
             "--exp", str(work / "exp")],
            check=True, cwd=ROOT,
        )  # fmt: skip
        wall = time.time() - t0
        run = next((work / "exp").glob("*_direct"))
        records = [json.loads(line) for line in (run / "log/metrics.jsonl").read_text().splitlines()]
        vals = [r for r in records if r["split"] == "val"]
        in_budget = [r for r in vals if r["time"] - t0 <= minutes * 60]
        first_90 = next((r for r in vals if r["mAP50"] >= 0.9), None)
        best = max(in_budget, key=lambda r: r["mAP50"]) if in_budget else {}
        return {
            "budget_min": minutes, "best_mAP50_in_budget": round(best.get("mAP50", 0.0), 4),
            "its_mAP50-95": round(best.get("mAP50-95", 0.0), 4), "its_epoch": best.get("epoch"),
            "minutes_to_mAP50_0.9": round((first_90["time"] - t0) / 60, 2) if first_90 else None,
            "final_mAP50": round(vals[-1]["mAP50"], 4), "final_mAP50-95": round(vals[-1]["mAP50-95"], 4),
            "epochs": vals[-1]["epoch"], "wall_min": round(wall / 60, 2),
        }  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def squad_train_speed(steps: int = 6, repeats: int = 3) -> dict:
    """Training tokens/s of our BERT QA model against transformers' BertForQuestionAnswering (its default
    attention) at the MiniLM-L6-H384 shape, on the same batches from the same weights: forward, span loss,
    backward, AdamW step, dropout on, 16 windows of 96-192 pieces with padding (goal: ours >= 1.1x)."""
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig
    from transformers import BertForQuestionAnswering as HFBert

    from aics.core.runtime import keep_freed_memory
    from aics.tasks.squad.model import BertForQuestionAnswering, BertShape

    keep_freed_memory()
    shape = BertShape(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536)  # fmt: skip
    torch.manual_seed(0)
    ours = BertForQuestionAnswering(shape)
    hf = HFBert(BertConfig(**shape.to_hf_config()))
    hf.load_state_dict(ours.state_dict(), strict=False)
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(steps):
        t = (96, 128, 192)[i % 3]
        lens = torch.randint(t // 2, t + 1, (16,), generator=g)
        lens[0] = t
        mask = torch.arange(t)[None, :] < lens[:, None]
        ids = torch.randint(1000, 30000, (16, t), generator=g) * mask
        gold = torch.randint(0, t // 2, (2, 16), generator=g)
        batches.append((ids, torch.zeros_like(ids), mask, gold))
    tokens = sum(int(b[2].sum()) for b in batches)

    def run(model, logits) -> float:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
        model.train()
        t0 = time.perf_counter()
        for ids, types, mask, gold in batches:
            s, e = logits(model, ids, types, mask)
            loss = (F.cross_entropy(s.float(), gold[0]) + F.cross_entropy(e.float(), gold[1])) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return tokens / (time.perf_counter() - t0)

    def ours_logits(m, ids, types, mask):
        return m(ids, types, mask)

    def hf_logits(m, ids, types, mask):
        out = m(input_ids=ids, token_type_ids=types, attention_mask=mask.long())
        return out.start_logits, out.end_logits

    rates: dict[str, list[float]] = {"aics": [], "transformers": []}
    run(ours, ours_logits), run(hf, hf_logits)  # warm-up
    for _ in range(repeats):  # interleaved, so both see the same machine
        rates["aics"].append(run(ours, ours_logits))
        rates["transformers"].append(run(hf, hf_logits))
    a, h = statistics.median(rates["aics"]), statistics.median(rates["transformers"])
    return {"aics_tokens_per_s": round(a), "transformers_tokens_per_s": round(h), "speedup": round(a / h, 3),
            "attention": hf.config._attn_implementation, "threads": torch.get_num_threads()}  # fmt: skip


def squad_quality(minutes: float = 20.0) -> dict:
    """The SQuAD recipe on the offline set on this CPU: MiniLM fine-tuned (stages 0-4, conf/minilm.yaml;
    goal EM >= 85 within ``minutes``), the same architecture from random weights, and the 3-layer student
    distilled from the fine-tuned model (stage 5): EM/F1, parameters, windows/s, minutes."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-squad-"))
    recipe = ["bash", str(ROOT / "recipes/bert_squad/run.sh"), "--data", str(work / "data"),
              "--exp", str(work / "exp")]  # fmt: skip
    out: dict = {"budget_min": minutes}
    try:
        for name, extra in (("minilm", ["--stop-stage", "4"]), ("minilm_random", ["--random-init", "true",
                            "--stage", "2", "--stop-stage", "4"]), ("minilm_student3", ["--stage", "5",
                            "--stop-stage", "5"])):  # fmt: skip
            t0 = time.time()
            subprocess.run([*recipe, *extra], check=True, cwd=ROOT)
            exp = work / "exp" / name
            s = json.loads((exp / "scores.json").read_text())
            records = [json.loads(line) for line in (exp / "log/metrics.jsonl").read_text().splitlines()]
            dev = [r for r in records if r["split"] == "dev"]
            first_85 = next((r for r in dev if r["em"] >= 85), None)
            out[name] = {
                "EM": round(s["exact_match"], 2), "F1": round(s["f1"], 2), "parameters": s["parameters"],
                "windows_per_s": round(s["windows_per_s"], 1), "wall_min": round((time.time() - t0) / 60, 2),
                "minutes_to_EM_85": round((first_85["time"] - t0) / 60, 2) if first_85 else None,
            }  # fmt: skip
        baseline = json.loads((work / "exp/lexical_baseline/scores.json").read_text())
        out["lexical_baseline"] = {"EM": round(baseline["exact_match"], 2), "F1": round(baseline["f1"], 2)}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def asr_feature_speed(seconds: float = 60.0, repeats: int = 15) -> dict:
    """Feature extraction of ``seconds`` of 16 kHz audio (8 utterances of equal length, one batch) with
    aics.core.audio against librosa, the same numbers from both: the DFCNN's 201-bin log power spectrogram
    (n_fft 400, hop 160) and the 80-band log-mel (goal: >= 3x librosa). The fastest of ``repeats`` runs,
    interleaved; one thread each, as in a feature worker."""
    import librosa
    import numpy as np
    import torch

    from aics.core.audio import FeatureExtractor

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    wav = rng.standard_normal((8, int(seconds * 16000 / 8))).astype(np.float32) * 0.1
    ours = {
        "logspec": FeatureExtractor(kind="logspec", sr=16000, n_fft=400, hop_length=160, log="ln"),
        "logmel": FeatureExtractor(kind="logmel", sr=16000, n_fft=400, hop_length=160, n_mels=80, log="ln"),
    }

    def theirs(kind: str) -> None:
        for w in wav:
            if kind == "logspec":
                np.log(np.maximum(np.abs(librosa.stft(w, n_fft=400, hop_length=160)) ** 2, 1e-10))
            else:
                m = librosa.feature.melspectrogram(y=w, sr=16000, n_fft=400, hop_length=160, n_mels=80)
                np.log(np.maximum(m, 1e-10))

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    out = {"audio_s": seconds}
    batch = torch.from_numpy(wav)
    for kind, ex in ours.items():
        ex(batch), theirs(kind)  # warm-up
        runs = [
            (timed(lambda ex=ex: ex(batch)), timed(lambda kind=kind: theirs(kind))) for _ in range(repeats)
        ]
        a, b = min(r[0] for r in runs), min(r[1] for r in runs)
        out[kind] = {"aics_s": round(a, 4), "librosa_s": round(b, 4), "speedup": round(b / a, 2)}
    return out


def asr_quality(minutes: float = 60.0) -> dict:
    """The DFCNN recipe on this CPU (recipes/asr_dfcnn, conf/cpu.yaml): ``minutes`` of synthetic speech from
    four voices (goal: CER <= 10% on held-out sentences of those voices after <= 30 minutes of training),
    the CER on a held-out voice, greedy / beam / beam + char 5-gram, and the pocketsphinx judge's level on
    the same recordings."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-asr-"))
    recipe = ["bash", str(ROOT / "recipes/asr_dfcnn/run.sh"), "--data", str(work / "data"),
              "--exp", str(work / "exp"), "--minutes", str(minutes)]  # fmt: skip
    out: dict = {"minutes_of_speech": minutes}
    try:
        subprocess.run([*recipe, "--stop-stage", "1"], check=True, cwd=ROOT)
        t0, c0 = time.time(), _child_cpu()
        subprocess.run([*recipe, "--stage", "2", "--stop-stage", "2"], check=True, cwd=ROOT)
        out["train_wall_min"] = round((time.time() - t0) / 60, 2)
        out["train_cpu_min"] = round((_child_cpu() - c0) / 60, 2)
        subprocess.run([*recipe, "--stage", "3"], check=True, cwd=ROOT)
        exp = work / "exp" / "dfcnn"
        for s in sorted(exp.glob("decode_*/scores.json")):
            sc = json.loads(s.read_text())
            out[s.parent.name] = {"CER": round(100 * sc["uer"], 2), "WER": round(100 * sc["wer"], 2)}
        for s in sorted(exp.glob("judge_*/scores.json")):
            sc = json.loads(s.read_text())
            out[s.parent.name] = {"CER": round(100 * sc["cer"], 2), "WER": round(100 * sc["wer"], 2)}
        records = [json.loads(line) for line in (exp / "log/metrics.jsonl").read_text().splitlines()]
        out["valid_cer_per_epoch"] = [round(100 * r["uer"], 2) for r in records if r["split"] == "valid"]
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tts_speed(steps: int = 400, text_len: int = 170, audio_frames: int = 86) -> dict:
    """Full-size Tacotron2 (random weights, ``steps`` decoder steps, no early stop, a ``text_len``-symbol
    text) at batch 1 and 8: mel frames/s of the fast CPU decoder step (``cpu_step``) and of the reference step
    (NVIDIA's layer-by-layer order, which their own code follows). The vocoders at batch 1 and 8 on
    ``audio_frames`` frames (1 s) each: real-time factor of Griffin-Lim (60 iterations), of WaveGlow with 256
    and 512 channels, and of the WaveGlow denoiser alone; then the text-to-audio real-time factor of each
    vocoder after the fast decoder (decoder seconds per second of audio, from its frames/s, plus the
    vocoder's). Best of 3 after a warm-up (WaveGlow at batch 8: one run after the warm-up).
    The comparison with NVIDIA's own inference code at the same weights is run by hand (their code is not
    vendored): see the closing note of the TTS issue."""
    import warnings

    import torch

    from aics.tasks.tts.model import Tacotron2
    from aics.tasks.tts.vocoder import Denoiser, griffin_lim_vocoder
    from aics.tasks.tts.waveglow import WaveGlow, WaveGlowConfig, WNConfig

    torch.manual_seed(0)
    model = Tacotron2().eval()

    def best(fn, repeats: int = 3) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    frame_s = 256 / 22050  # seconds of audio per mel frame
    out: dict = {"threads": torch.get_num_threads(), "decoder_steps": steps}
    for batch in (1, 8):
        text = torch.randint(1, 148, (batch, text_len))
        lengths = torch.full((batch,), text_len)
        for name, fast in (("fast", True), ("reference", False)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = best(lambda text=text, lengths=lengths, fast=fast: model.infer(
                    text, lengths, max_steps=steps, stop=False, fast=fast))  # fmt: skip
            out[f"tacotron2_b{batch}_{name}"] = {"steps_per_s": round(steps / s, 1),
                                                 "mel_frames_per_s": round(batch * steps / s, 1)}  # fmt: skip
    audio_s = audio_frames * frame_s
    vocoders = {"griffinlim60": lambda mel: griffin_lim_vocoder(mel, n_iter=60)}
    for channels in (256, 512):
        wg = WaveGlow(WaveGlowConfig(WN_config=WNConfig(n_channels=channels))).eval().remove_weightnorm()
        vocoders[f"waveglow{channels}"] = lambda mel, wg=wg: wg.infer(mel, sigma=0.6)
    denoiser = Denoiser(wg)
    for batch in (1, 8):
        mel = torch.randn(batch, 80, audio_frames) - 5
        for name, vocode in vocoders.items():
            repeats = 1 if batch > 1 and name.startswith("waveglow") else 3
            with torch.no_grad():
                rtf = best(lambda mel=mel, vocode=vocode: vocode(mel), repeats) / (batch * audio_s)
            out[f"{name}_b{batch}_rtf"] = round(rtf, 3)
            decoder_rtf = 1 / out[f"tacotron2_b{batch}_fast"]["mel_frames_per_s"] / frame_s
            out[f"text_to_audio_{name}_b{batch}_rtf"] = round(decoder_rtf + rtf, 3)
        audio = torch.randn(batch, audio_frames * 256) * 0.1
        with torch.no_grad():
            rtf = best(lambda audio=audio: denoiser(audio)) / (batch * audio_s)
        out[f"denoiser_b{batch}_rtf"] = round(rtf, 4)
    return out


def sed_feature_speed(clips: int = 8, repeats: int = 10) -> dict:
    """The sound event lab's log-mel (dB) of ``clips`` 10-second clips in one batch with aics.core.audio
    against librosa (melspectrogram + power_to_db on each clip), in seconds of audio per second, one thread
    each (as in a feature worker): the CPU preset (16 kHz, n_fft 1024, hop 320, 64 bands) and the DCASE2018
    baseline's (44.1 kHz, n_fft 2048, 40 ms windows, hop 882, 64 bands). Goal: >= 3x librosa."""
    import librosa
    import numpy as np
    import torch

    from aics.core.audio import FeatureExtractor

    torch.set_num_threads(1)
    settings = {"cpu_16k": (16000, 1024, 1024, 320), "base_44k": (44100, 2048, 1764, 882)}
    out: dict = {"clips": clips, "clip_s": 10.0}
    rng = np.random.default_rng(0)
    for name, (sr, n_fft, win, hop) in settings.items():
        wav = (rng.standard_normal((clips, 10 * sr)) * 0.1).astype(np.float32)
        batch = torch.from_numpy(wav)
        ours = FeatureExtractor(kind="logmel", sr=sr, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=64,
                                log="db")  # fmt: skip

        def theirs(wav=wav, sr=sr, n_fft=n_fft, win=win, hop=hop) -> None:
            for w in wav:
                m = librosa.feature.melspectrogram(y=w, sr=sr, n_fft=n_fft, win_length=win, hop_length=hop,
                                                   n_mels=64)  # fmt: skip
                librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None)

        def timed(fn) -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        ours(batch), theirs()  # warm-up
        runs = [(timed(lambda ours=ours, batch=batch: ours(batch)), timed(theirs)) for _ in range(repeats)]
        a, b = min(r[0] for r in runs), min(r[1] for r in runs)
        audio = clips * 10.0
        out[name] = {"aics_audio_s_per_s": round(audio / a, 1), "librosa_audio_s_per_s": round(audio / b, 1),
                     "speedup": round(b / a, 2)}  # fmt: skip
    return out


SED_VARIANTS = {
    # name: --set overrides on top of recipes/sed_crnn/conf/cpu.yaml (time shift, SpecAugment, linear softmax)
    "augment": [],
    "no_augment": ["augment.specaugment=false", "augment.time_shift=false"],
    "augment_mixup": ["augment.mixup=true"],
    "attention": ["model.pooling=attention"],
    "max": ["model.pooling=max"],
    "mean": ["model.pooling=mean"],
}


def sed_quality(variants: str = "augment,no_augment,augment_mixup,attention,max,mean") -> dict:
    """The sound event recipe on this CPU (recipes/sed_crnn, conf/cpu.yaml: 400 weak clips, 100 test clips
    to pick best.pt, 100 eval clips scored; 30 epochs on one thread each, the fixed CPU budget): the eval
    event-based F1 (macro), segment F1 and tagging F1 of each variant: with and without augmentation, with
    mixup, and each clip pooling head (the localisation each leaves), with the CPU minutes each took."""
    import os
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-sed-"))
    data, exp = work / "data", work / "exp"
    recipe = ["bash", str(ROOT / "recipes/sed_crnn/run.sh"), "--data", str(data), "--exp", str(exp)]
    out: dict = {}
    try:
        subprocess.run([*recipe, "--stop-stage", "1"], check=True, cwd=ROOT)
        feats = next(data.glob("feats_*"))
        for name in variants.split(","):
            run = exp / name
            sets = [a for s in SED_VARIANTS[name] for a in ("--set", s)]
            c0 = _child_cpu()
            t0 = time.time()
            subprocess.run(["aics", "sed", "train", "--data", str(feats), "--exp", str(run), "--conf",
                            str(ROOT / "recipes/sed_crnn/conf/cpu.yaml"), *sets], check=True, cwd=ROOT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
            cpu_min, wall_min = (_child_cpu() - c0) / 60, (time.time() - t0) / 60
            subprocess.run(["aics", "sed", "predict", "--exp", str(run), "--data", str(feats), "--split",
                            "eval"], check=True, cwd=ROOT)  # fmt: skip
            subprocess.run(["aics", "sed", "score", "--pred", str(run / "predict_eval_best"), "--data",
                            str(feats)], check=True, cwd=ROOT)  # fmt: skip
            sc = json.loads((run / "predict_eval_best/score/scores.json").read_text())
            h, per_class = sc["headline"], sc["event_based"]["class_wise"].items()
            out[name] = {"event_f1": round(100 * h["event_f1"], 2),
                         "segment_f1": round(100 * h["segment_f1"], 2),
                         "tag_f1": round(100 * h["tag_f1"], 2), "event_er": round(h["event_er"], 3),
                         "best_epoch": sc["epoch"], "train_cpu_min": round(cpu_min, 2),
                         "train_wall_min": round(wall_min, 2),
                         "per_class_event_f1": {c: round(100 * v["f_measure"], 1)
                                                for c, v in per_class}}  # fmt: skip
            print(f"sed_quality {name}: {json.dumps(out[name])}", flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def caption_quality(schedules: str = "none linear inverse_sigmoid", beams: str = "1 3") -> dict:
    """The captioning recipe on this CPU (recipes/caption, conf/cpu.yaml: 3,000 synthetic training images,
    15 epochs on one thread each, the fixed CPU budget): test CIDEr-D, BLEU-4, METEOR and ROUGE-L of each
    scheduled-sampling schedule decoded greedily and with beam search, the images/s of each decode and the
    CPU minutes each training took."""
    import os
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aics-bench-caption-"))
    data, exp = work / "data", work / "exp"
    recipe = ["bash", str(ROOT / "recipes/caption/run.sh"), "--data", str(data), "--exp", str(exp),
              "--beams", beams]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AICS_PROGRESS": "0"}
    out: dict = {}
    try:
        subprocess.run([*recipe, "--stop-stage", "1"], check=True, cwd=ROOT, env=env)
        for s in schedules.split():
            c0, t0 = _child_cpu(), time.time()
            subprocess.run([*recipe, "--stage", "2", "--stop-stage", "2", "--schedules", s], check=True,
                           cwd=ROOT, env=env)  # fmt: skip
            cpu_min, wall_min = (_child_cpu() - c0) / 60, (time.time() - t0) / 60
            subprocess.run([*recipe, "--stage", "3", "--schedules", s], check=True, cwd=ROOT, env=env)
            for d in sorted((exp / f"sat_{s}").glob("decode_test_*")):
                sc = json.loads((d / "score/scores.json").read_text())
                key = f"{s} {d.name.removeprefix('decode_test_')}"
                out[key] = {m: round(100 * v, 2) for m, v in sc["scores"].items()}
                out[key].update({"images_per_s": sc["images_per_s"], "train_cpu_min": round(cpu_min, 2),
                                 "train_wall_min": round(wall_min, 2)})  # fmt: skip
                print(f"caption_quality {key}: {json.dumps(out[key])}", flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def caption_decode_speed(images: int = 64) -> dict:
    """Images/s of greedy and beam-3 decoding with the CPU preset's Show, Attend and Tell (112 x 112 images,
    87 words), untrained so that every caption runs the full 20 steps: the most work a decode can take."""
    import torch

    from aics.tasks.caption.model import Captioner, CaptionerConfig

    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=87)).eval()
    with torch.no_grad():
        model.out.bias[2] = -1e4  # <end> never wins: full-length captions
    x = torch.randn(images, 3, 112, 112)
    out = {}
    t = time.perf_counter()
    for lo in range(0, images, 32):
        model.greedy(x[lo : lo + 32], 1, 2, 20)
    out["greedy"] = {"images_per_s": round(images / (time.perf_counter() - t), 1)}
    for beam in (3, 5):
        t = time.perf_counter()
        for i in range(images // 4):
            model.beam_search(x[i], 1, 2, 20, beam)
        out[f"beam{beam}"] = {"images_per_s": round(images // 4 / (time.perf_counter() - t), 1)}
    return out


def _child_cpu() -> float:
    """CPU seconds of finished child processes (user + system)."""
    import os

    t = os.times()
    return t.children_user + t.children_system


BENCHES = {
    "cli_startup": cli_startup,
    "vae_train_speed": vae_train_speed,
    "lm_train_speed": lm_train_speed,
    "lm_matched_speed": lm_matched_speed,
    "detect_speed": detect_speed,
    "detect_data_speed": detect_data_speed,
    "detect_epoch_speed": detect_epoch_speed,
    "detect_quality": detect_quality,
    "squad_train_speed": squad_train_speed,
    "squad_quality": squad_quality,
    "asr_feature_speed": asr_feature_speed,
    "asr_quality": asr_quality,
    "tts_speed": tts_speed,
    "sed_feature_speed": sed_feature_speed,
    "sed_quality": sed_quality,
    "caption_quality": caption_quality,
    "caption_decode_speed": caption_decode_speed,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or BENCHES:
        result = BENCHES[name]()
        record = {"bench": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
                  "python": platform.python_version(), "result": result}  # fmt: skip
        print(f"{name}: {json.dumps(result)}")
        with open(out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
