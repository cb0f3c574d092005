"""Caption scores (aics.tasks.caption.metrics, score): the COCO evaluation's BLEU equals sacrebleu's on
the same tokens, per-image scores stay with their image, SPICE says why it cannot run, best and worst."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from aics.tasks.caption.metrics import bleu_cider, coco_scores, sacrebleu_bleu4, spice_scores
from aics.tasks.caption.score import extremes

WORDS = [f"w{i}" for i in range(12)]


def random_set(seed: int, n: int = 40) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS, size=int(rng.integers(6, 14))))

    refs = {f"img{i}": [sentence() for _ in range(5)] for i in range(n)}
    hyps = {k: [v[0] if rng.random() < 0.3 else sentence()] for k, v in refs.items()}
    return refs, hyps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_bleu4_equals_sacrebleu_on_the_same_tokens(seed):
    refs, hyps = random_set(seed)
    coco = bleu_cider(refs, hyps)["BLEU-4"]
    assert 0.05 < coco < 0.9
    assert sacrebleu_bleu4(refs, hyps) == pytest.approx(coco, abs=1e-6)


def test_per_image_scores_follow_their_image_whatever_the_order():
    refs, hyps = random_set(3, n=12)
    a = coco_scores(refs, {k: v[0] for k, v in hyps.items()}, tokenize=False)
    keys = list(hyps)[::-1]
    b = coco_scores({k: refs[k] for k in keys}, {k: hyps[k][0] for k in keys}, tokenize=False)
    for k in hyps:
        for m in ("BLEU-4", "ROUGE-L", "CIDEr-D"):
            assert a["per_image"][k][m] == pytest.approx(b["per_image"][k][m], abs=1e-9), (k, m)
    perfect = next(k for k in hyps if hyps[k][0] == refs[k][0])
    others = [a["per_image"][k]["ROUGE-L"] for k in hyps if hyps[k][0] not in refs[k]]
    assert a["per_image"][perfect]["ROUGE-L"] > max(others)
    assert a["overall"]["BLEU-4"] == pytest.approx(bleu_cider(refs, hyps)["BLEU-4"])


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR and the PTB tokenizer need java")
def test_the_java_scorers_run_and_tokenise_like_coco():
    refs = {"a": ["A red circle, on the LEFT.", "a red ball"], "b": ["Two blue squares .", "blue boxes"]}
    hyps = {"a": "A red circle on the left .", "b": "a green star"}
    r = coco_scores(refs, hyps)
    assert r["tokenized"]["hyps"]["a"] == ["a red circle on the left"]
    assert r["tokenized"]["refs"]["a"][0] == "a red circle on the left"
    assert r["per_image"]["a"]["METEOR"] > 0.9 > 0.2 > r["per_image"]["b"]["METEOR"]
    assert "METEOR" not in r["unavailable"] and "SPICE" in r["unavailable"]


def test_spice_says_why_it_cannot_run(tmp_path, monkeypatch):
    monkeypatch.delenv("AICS_CORENLP_DIR", raising=False)
    refs, hyps = {"a": ["a cat"]}, {"a": ["a cat"]}
    if shutil.which("java") is None:
        assert spice_scores(refs, hyps, None, tmp_path)[1] == "no java on the PATH"
        return
    assert "Stanford CoreNLP 3.6.0" in spice_scores(refs, hyps, None, tmp_path)[1]
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars/stanford-corenlp-3.6.0.jar").write_bytes(b"")
    scores, why = spice_scores(refs, hyps, tmp_path / "jars", tmp_path)
    assert scores is None and why.endswith("lacks stanford-corenlp-3.6.0-models.jar")


def test_extremes_are_the_best_and_worst_under_a_metric():
    per = [{"image": f"i{k}", "CIDEr-D": s} for k, s in enumerate([0.5, 2.0, 0.1, 2.0, 1.0])]
    best, worst = extremes(per, "CIDEr-D", 2)
    assert [r["image"] for r in best] == ["i1", "i3"] and [r["image"] for r in worst] == ["i2", "i0"]


@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs java")
def test_ptb_tokenisation_is_the_coco_evaluations():
    from aics.tasks.caption.metrics import ptb_tokenize

    caps = {"a": ["A man, in a RED hat.", ""], "b": ["Don't stop -- the (big) dog's toy!"]}
    out, why = ptb_tokenize(caps)
    assert why == "" and out == {
        "a": ["a man in a red hat", ""],
        "b": ["do n't stop the -lrb- big -rrb- dog 's toy"],
    }


def test_a_failing_meteor_is_unavailable_and_leaves_nothing_running(monkeypatch):
    import subprocess
    import threading

    from pycocoevalcap.meteor import meteor

    from aics.tasks.caption import metrics

    made = []

    class Broken:
        def __init__(self):
            self.meteor_p = subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.lock = threading.Lock()
            made.append(self)

        def compute_score(self, refs, hyps):
            self.lock.acquire()  # as pycocoevalcap does, and never releases when the pipe breaks
            raise BrokenPipeError("the java process died")

    monkeypatch.setattr(metrics, "java", lambda: "/usr/bin/java")
    monkeypatch.setattr(meteor, "Meteor", Broken)
    scores, why = metrics.meteor_scores({"a": ["a cat"]}, {"a": ["a cat"]})
    assert scores is None and why.startswith("METEOR failed (BrokenPipeError")
    assert made[0].meteor_p.poll() is not None and not made[0].lock.locked()
