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


def ptb_tokenize(captions: dict) -> dict:
    """{id: [caption, ...]} -> {id: [tokenised, ...]} through pycocoevalcap's Stanford PTB tokenizer
    (lower case, punctuation dropped), or through aics's word tokenizer when there is no java."""
    if java() is None:
        return {k: [simple_tokenize(c) for c in v] for k, v in captions.items()}
    require_pycocoevalcap()
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})


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
    if tokenize:
        refs, hyps_list = ptb_tokenize(refs), ptb_tokenize(hyps_list)
    keys = list(refs)  # every pycocoevalcap scorer lists per-image scores in the order of the refs' keys
    per: dict[str, dict] = {k: {} for k in keys}
    overall: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    if tokenize and java() is None:
        unavailable["PTB tokenizer"] = "no java on the PATH: aics's word tokenizer was used"
    bleu, bleu_per = Bleu(4).compute_score(refs, hyps_list, verbose=0)
    for n, name in enumerate(BLEU_NAMES):
        overall[name] = float(bleu[n])
        for k, v in zip(keys, bleu_per[n], strict=True):
            per[k][name] = float(v)
    if java() is not None:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            m, m_per = scorer.compute_score(refs, hyps_list)
        finally:
            _close_meteor(scorer)
        overall["METEOR"] = float(m)
        for k, v in zip(keys, m_per, strict=True):
            per[k]["METEOR"] = float(v)
    else:
        unavailable["METEOR"] = "no java on the PATH"
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


def _close_meteor(scorer) -> None:
    """pycocoevalcap leaves its METEOR java process running until the object is collected; end it now."""
    p = getattr(scorer, "meteor_p", None)
    if p is not None and p.poll() is None:
        with scorer.lock:
            p.stdin.close()
            p.kill()
            p.wait()
