"""Caption scores: the COCO caption evaluation (pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE)
after its PTB tokenizer, SPIDEr = (SPICE + CIDEr-D) / 2, and sacrebleu's BLEU on the same tokens.

The Java parts (the PTB tokenizer, METEOR, SPICE) need a ``java`` on the PATH. SPICE also needs the Stanford
CoreNLP 3.6.0 jars (``stanford-corenlp-3.6.0.jar`` and ``stanford-corenlp-3.6.0-models.jar``), which
pycocoevalcap would download on first use; aics never downloads: give their folder (``--corenlp DIR`` or
``AICS_CORENLP_DIR``). A scorer that cannot run is reported as ``unavailable: <reason>``, never a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from aics.core.errors import UserError

BLEU_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")
METRICS = (*BLEU_NAMES, "METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
# Java 17 closes the JDK internals that SPICE's dependencies reach into; these options reopen them.
JAVA17_OPENS = (
    *("--add-opens", "java.base/java.lang=ALL-UNNAMED"),
    *("--add-opens", "java.base/java.nio=ALL-UNNAMED"),
    *("--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED"),
)


def require_pycocoevalcap():
    try:
        import pycocoevalcap
    except ImportError:
        raise UserError(
            "the caption scores need pycocoevalcap: pip install 'aics[caption]' (or rerun make setup)"
        ) from None
    return Path(list(pycocoevalcap.__path__)[0]).resolve()  # a namespace package: no __file__


def java() -> str | None:
    return shutil.which("java")


def simple_tokenize(text: str) -> str:
    from aics.tasks.caption.data import tokenize

    return " ".join(tokenize(text))


def ptb_tokenize(captions: dict) -> tuple[dict, str]:
    """{id: [caption, ...]} -> ({id: [tokenised, ...]}, "" or why the word tokenizer was used instead).

    The COCO evaluation's tokenisation: Stanford's PTBTokenizer from the jar pycocoevalcap ships
    (``-preserveLines -lowerCase``), then its punctuation tokens dropped, as pycocoevalcap's own wrapper
    does; run here on a file in a temporary folder (that wrapper writes into its installed package). Without
    java, or if the tokenizer fails, aics's word tokenizer (lower case, punctuation removed)."""
    flat = [(k, c.replace("\n", " ")) for k, v in captions.items() for c in v]
    lines = None
    why = "no java on the PATH" if java() is None else ""
    if not why:
        from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, STANFORD_CORENLP_3_4_1_JAR

        jar = require_pycocoevalcap() / "tokenizer" / STANFORD_CORENLP_3_4_1_JAR
        with tempfile.TemporaryDirectory(prefix="aics-ptb-") as tmp:
            text = Path(tmp) / "captions.txt"
            text.write_text("\n".join(c for _, c in flat), encoding="utf-8")
            cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
                   "-lowerCase", str(text)]  # fmt: skip
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                out = proc.stdout.split("\n")
                if proc.returncode == 0 and len(out) >= len(flat):
                    drop = set(PUNCTUATIONS)
                    lines = [" ".join(w for w in line.rstrip().split(" ") if w not in drop) for line in out]
                else:
                    why = f"the PTB tokenizer failed (exit {proc.returncode})"
            except (OSError, subprocess.TimeoutExpired) as e:
                why = f"the PTB tokenizer failed ({type(e).__name__})"
    out_caps: dict = {k: [] for k in captions}
    for n, (k, c) in enumerate(flat):
        out_caps[k].append(lines[n] if lines is not None else simple_tokenize(c))
    return out_caps, (f"{why}: aics's word tokenizer was used" if why else "")


def bleu_cider(refs: dict, hyps: dict) -> dict:
    """BLEU-1..4 and CIDEr-D of already tokenised captions (no Java): what training scores every epoch.
    refs {id: [str, ...]}, hyps {id: [str]}."""
    require_pycocoevalcap()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    cider, _ = Cider().compute_score(refs, hyps)
    return {**dict(zip(BLEU_NAMES, map(float, bleu), strict=True)), "CIDEr-D": float(cider)}


def sacrebleu_bleu4(refs: dict, hyps: dict) -> float:
    """Corpus BLEU-4 (0 to 1) of the same tokens by sacrebleu: no further tokenisation, no smoothing, the
    closest reference length (what the COCO scorer does, up to its 1e-15 guard on empty n-gram counts)."""
    from sacrebleu.metrics import BLEU

    ids = sorted(hyps)
    n_refs = max(len(refs[i]) for i in ids)
    streams = [[refs[i][k] if k < len(refs[i]) else None for i in ids] for k in range(n_refs)]
    bleu = BLEU(tokenize="none", smooth_method="none", force=True)
    return bleu.corpus_score([hyps[i][0] for i in ids], streams).score / 100


def spice_scores(
    refs: dict, hyps: dict, corenlp_dir: str | Path | None, work: Path
) -> tuple[dict | None, str]:
    """Per-image SPICE F-scores, or (None, why not)."""
    if java() is None:
        return None, "no java on the PATH"
    corenlp = corenlp_dir or os.environ.get("AICS_CORENLP_DIR")
    if not corenlp:
        return None, ("needs the Stanford CoreNLP 3.6.0 jars: give their folder with --corenlp DIR "
                      "(or AICS_CORENLP_DIR)")  # fmt: skip
    corenlp = Path(corenlp)
    missing = [j for j in CORENLP_JARS if not (corenlp / j).is_file()]
    if missing:
        return None, f"{corenlp} lacks {', '.join(missing)}"
    spice_home = require_pycocoevalcap() / "spice"
    run = work / "spice"
    (run / "lib").mkdir(parents=True, exist_ok=True)
    for jar in (spice_home / "lib").glob("*.jar"):
        _link(jar, run / "lib" / jar.name)
    for j in CORENLP_JARS:
        _link(corenlp / j, run / "lib" / j)
    _link(spice_home / "spice-1.0.jar", run / "spice-1.0.jar")
    ids = sorted(hyps)
    (run / "input.json").write_text(json.dumps([{"image_id": str(i), "test": hyps[i][0], "refs": refs[i]}
                                                for i in ids]))  # fmt: skip
    cmd = ["java", *JAVA17_OPENS, "-jar", "-Xmx8G", "spice-1.0.jar", "input.json", "-out", "output.json",
           "-subset", "-silent"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=run, capture_output=True, text=True)
    if proc.returncode != 0 or not (run / "output.json").is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"SPICE failed (exit {proc.returncode}): {tail[0][:200]}"
    out = json.loads((run / "output.json").read_text())
    return {str(r["image_id"]): float(r["scores"]["All"]["f"]) for r in out}, ""


def _link(src: Path, dst: Path) -> None:
    if not dst.exists():
        try:
            dst.symlink_to(src)
        except OSError:
            shutil.copy(src, dst)


def coco_scores(refs: dict, hyps: dict, corenlp_dir: str | Path | None = None, tokenize: bool = True) -> dict:
    """Every caption score of hypotheses ``hyps`` {id: caption} against references ``refs`` {id: [caption,
    ...]}, as the COCO caption evaluation computes them. Returns ``overall`` {metric: value}, ``per_image``
    {id: {metric: value}}, ``unavailable`` {metric: reason}, ``sacrebleu_bleu4`` and the tokenised text."""
    require_pycocoevalcap()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ids = sorted(hyps, key=str)
    missing = [i for i in ids if i not in refs]
    if missing:
        raise UserError(f"no references for {len(missing)} captioned images (first: {missing[0]})")
    refs = {str(i): list(refs[i]) for i in ids}
    hyps_list = {str(i): [hyps[i]] for i in ids}
    unavailable: dict[str, str] = {}
    if tokenize:
        (refs, why_r), (hyps_list, why_h) = ptb_tokenize(refs), ptb_tokenize(hyps_list)
        if why_r or why_h:
            unavailable["PTB tokenizer"] = why_r or why_h
    keys = list(refs)  # every pycocoevalcap scorer lists per-image scores in the order of the refs' keys
    per: dict[str, dict] = {k: {} for k in keys}
    overall: dict[str, float] = {}
    bleu, bleu_per = Bleu(4).compute_score(refs, hyps_list, verbose=0)
    for n, name in enumerate(BLEU_NAMES):
        overall[name] = float(bleu[n])
        for k, v in zip(keys, bleu_per[n], strict=True):
            per[k][name] = float(v)
    meteor, why = meteor_scores(refs, hyps_list)
    if meteor is None:
        unavailable["METEOR"] = why
    else:
        overall["METEOR"] = meteor[0]
        for k, v in zip(keys, meteor[1], strict=True):
            per[k]["METEOR"] = float(v)
    r, r_per = Rouge().compute_score(refs, hyps_list)
    overall["ROUGE-L"] = float(r)
    c, c_per = Cider().compute_score(refs, hyps_list)
    overall["CIDEr-D"] = float(c)
    for k, rv, cv in zip(keys, r_per, c_per, strict=True):
        per[k]["ROUGE-L"], per[k]["CIDEr-D"] = float(rv), float(cv)
    with tempfile.TemporaryDirectory(prefix="aics-spice-") as tmp:
        spice, why = spice_scores(refs, hyps_list, corenlp_dir, Path(tmp))
    if spice is None:
        unavailable["SPICE"] = unavailable["SPIDEr"] = why
    else:
        overall["SPICE"] = sum(spice.values()) / len(spice)
        overall["SPIDEr"] = (overall["SPICE"] + overall["CIDEr-D"]) / 2
        for k in keys:
            per[k]["SPICE"] = spice[k]
            per[k]["SPIDEr"] = (spice[k] + per[k]["CIDEr-D"]) / 2
    return {
        "overall": overall,
        "per_image": per,
        "unavailable": unavailable,
        "sacrebleu_bleu4": sacrebleu_bleu4(refs, hyps_list),
        "tokenized": {"refs": refs, "hyps": hyps_list},
    }


def meteor_scores(refs: dict, hyps: dict) -> tuple[tuple[float, list] | None, str]:
    """METEOR 1.5 through pycocoevalcap (its java process), or (None, why not). A failing process is killed
    and its lock released, so neither this call nor the interpreter's exit can hang on it."""
    if java() is None:
        return None, "no java on the PATH"
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = None
    try:
        scorer = Meteor()
        m, m_per = scorer.compute_score(refs, hyps)
        return (float(m), [float(x) for x in m_per]), ""
    except (OSError, ValueError) as e:  # BrokenPipeError, a dead process's empty reply, a missing jar
        return None, f"METEOR failed ({type(e).__name__}: {str(e)[:80]})"
    finally:
        if scorer is not None:
            _close_meteor(scorer)


def _close_meteor(scorer) -> None:
    """End pycocoevalcap's METEOR process now (it would live until the object is collected), without taking
    its lock, which a failed ``compute_score`` leaves held; then free that lock for the object's __del__."""
    p = getattr(scorer, "meteor_p", None)
    if p is not None:
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        if p.poll() is None:
            p.kill()
        p.wait()
    lock = getattr(scorer, "lock", None)
    if lock is not None and lock.locked():
        lock.release()
