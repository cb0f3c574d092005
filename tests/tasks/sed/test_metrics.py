"""Sound event detection scores: hand-computed cases (collar, offset length rule, substitutions, empty
output, clips without references), parity with sed_eval 0.2.1 (event-based with optimal matching and
segment-based, fed clip by clip) on random clips, and parity of tagging with scikit-learn."""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from aics.tasks.sed import metrics as sed_metrics
from aics.tasks.sed.labels import CLASSES
from aics.tasks.sed.metrics import evaluate_all, event_based, segment_based, strong_to_tags, tagging

with warnings.catch_warnings():
    # dcase_util imports pkg_resources, which warns about its own deprecation.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import dcase_util
    import sed_eval

EPS = float(np.spacing(1))
EVENT_RATES = ("f_measure", "precision", "recall", "error_rate", "deletion_rate", "insertion_rate")


def same(a: float, b: float) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


# ---- sed_eval, the way the DCASE baselines call it ----


def _container(clip: str, events) -> dcase_util.containers.MetaDataContainer:
    return dcase_util.containers.MetaDataContainer(
        [{"filename": clip, "onset": on, "offset": off, "event_label": label} for on, off, label in events]
    )


def sed_eval_event_based(reference, estimated, classes, files, t_collar=0.2, percentage_of_length=0.2):
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(classes),
        evaluate_onset=True,
        evaluate_offset=True,
        t_collar=t_collar,
        percentage_of_length=percentage_of_length,
        event_matching_type="optimal",
        empty_system_output_handling="zero_score",
    )
    for clip in files:
        metric.evaluate(_container(clip, reference.get(clip, [])), _container(clip, estimated.get(clip, [])))
    return metric


def sed_eval_segment_based(reference, estimated, classes, files, time_resolution=1.0, evaluated_length=None):
    metric = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(classes), time_resolution=time_resolution
    )
    for clip in files:
        metric.evaluate(
            _container(clip, reference.get(clip, [])),
            _container(clip, estimated.get(clip, [])),
            evaluated_length_seconds=evaluated_length,
        )
    return metric


def assert_matches_sed_eval(
    ours: dict, metric, counts: dict[str, str], class_counts: tuple[str, ...]
) -> None:
    """Every overall, class-wise and class-wise average number of ``ours`` equals sed_eval's; ``counts``
    maps our overall count names to sed_eval's."""
    results = metric.results()
    overall = results["overall"]
    expected = {**overall["f_measure"], **overall["error_rate"], **overall["accuracy"]}
    expected.update({ours_key: metric.overall[key] for ours_key, key in counts.items()})
    assert set(ours["overall"]) == set(expected)
    for key, value in ours["overall"].items():
        assert same(value, expected[key]), ("overall", key, value, expected[key])

    assert list(ours["class_wise"]) == list(results["class_wise"])
    for label, scores in ours["class_wise"].items():
        theirs = results["class_wise"][label]
        expected = {**theirs["f_measure"], **theirs["error_rate"], **theirs["accuracy"]}
        expected.update({key: metric.class_wise[label][key] for key in class_counts})
        assert set(scores) == set(expected), label
        for key, value in scores.items():
            assert same(value, expected[key]), (label, key, value, expected[key])

    average = results["class_wise_average"]
    expected = {**average["f_measure"], **average["error_rate"], **average["accuracy"]}
    assert set(ours["class_wise_average"]) == set(expected)
    for key, value in ours["class_wise_average"].items():
        assert same(value, expected[key]), ("class_wise_average", key, value, expected[key])


EVENT_COUNTS = {key: key for key in ("Nref", "Nsys", "Ntp", "Nsubs", "Nfp", "Nfn")}
EVENT_CLASS_COUNTS = ("Nref", "Nsys", "Ntp", "Nfp", "Nfn")
SEGMENT_CLASS_COUNTS = ("Nref", "Nsys", "Ntp", "Ntn", "Nfp", "Nfn")
# sed_eval's segment-based overall S, D and I
SEGMENT_COUNTS = {**{key: key for key in SEGMENT_CLASS_COUNTS}, "Nsubs": "S", "Ndel": "D", "Nins": "I"}


# ---- event-based by hand ----

CLS = ("Dog", "Cat", "Speech")


def test_exact_hit():
    ref = {"a.wav": [(1.0, 3.0, "Dog")]}
    out = event_based(ref, ref, CLS)
    overall = out["overall"]
    assert (overall["Ntp"], overall["Nsubs"], overall["Nfp"], overall["Nfn"]) == (1, 0, 0, 0)
    assert overall["f_measure"] == overall["precision"] == overall["recall"] == 1.0
    assert overall["error_rate"] == 0.0
    assert out["class_wise"]["Dog"]["f_measure"] == 1.0
    # Cat has neither references nor output: recall nan, so F nan, left out of the class-wise average.
    cat = out["class_wise"]["Cat"]
    assert cat["precision"] == 0.0 and math.isnan(cat["recall"]) and math.isnan(cat["f_measure"])
    assert cat["error_rate"] == 0.0
    assert out["class_wise_average"]["f_measure"] == 1.0


@pytest.mark.parametrize(
    ("est_onset", "hit"),
    [(1.15, True), (0.85, True), (1.25, False), (0.75, False)],
)
def test_onset_collar(est_onset, hit):
    ref = {"a.wav": [(1.0, 3.0, "Dog")]}
    est = {"a.wav": [(est_onset, 3.0, "Dog")]}
    overall = event_based(ref, est, CLS)["overall"]
    assert overall["Ntp"] == int(hit)
    # A miss of the same label is an insertion plus a deletion, not a substitution.
    assert (overall["Nsubs"], overall["Nfp"], overall["Nfn"]) == (0, int(not hit), int(not hit))
    assert overall["f_measure"] == (1.0 if hit else 0.0)
    assert overall["error_rate"] == (0.0 if hit else 2 / (1 + EPS))


def test_collar_edge_is_inclusive():
    # 0.2 - 0.0 is exactly the collar; 1.2 - 1.0 is 0.19999999999999996; 1.35 - 1.15 is 0.20000000000000018.
    ref = {"a": [(0.0, 3.0, "Dog")], "b": [(1.0, 3.0, "Dog")], "c": [(1.15, 3.0, "Dog")]}
    est = {"a": [(0.2, 3.0, "Dog")], "b": [(1.2, 3.0, "Dog")], "c": [(1.35, 3.0, "Dog")]}
    assert event_based(ref, est, CLS, files=["a"])["overall"]["Ntp"] == 1
    assert event_based(ref, est, CLS, files=["b"])["overall"]["Ntp"] == 1
    assert event_based(ref, est, CLS, files=["c"])["overall"]["Ntp"] == 0
    assert (
        event_based(ref, est, CLS)["overall"]["Ntp"]
        == sed_eval_event_based(ref, est, CLS, "abc").overall["Ntp"]
    )


@pytest.mark.parametrize(
    ("ref_event", "est_offset", "hit"),
    [
        ((0.0, 5.0, "Dog"), 5.9, True),  # 20 % of 5 s = 1 s > 200 ms
        ((0.0, 5.0, "Dog"), 4.1, True),
        ((0.0, 5.0, "Dog"), 6.1, False),
        ((0.0, 0.5, "Dog"), 0.65, True),  # 20 % of 0.5 s = 0.1 s < 200 ms: the collar applies
        ((0.0, 0.5, "Dog"), 0.75, False),
    ],
)
def test_offset_length_rule(ref_event, est_offset, hit):
    ref = {"a.wav": [ref_event]}
    est = {"a.wav": [(ref_event[0], est_offset, "Dog")]}
    assert event_based(ref, est, CLS)["overall"]["Ntp"] == int(hit)


def test_offset_length_share_is_a_parameter():
    ref = {"a.wav": [(0.0, 5.0, "Dog")]}
    est = {"a.wav": [(0.0, 6.1, "Dog")]}
    assert event_based(ref, est, CLS, percentage_of_length=0.5)["overall"]["Ntp"] == 1


def test_substitution():
    ref = {"a.wav": [(1.0, 3.0, "Dog")]}
    est = {"a.wav": [(1.1, 3.1, "Cat")]}
    out = event_based(ref, est, CLS)
    overall = out["overall"]
    assert (overall["Ntp"], overall["Nsubs"], overall["Nfp"], overall["Nfn"]) == (0, 1, 0, 0)
    assert overall["substitution_rate"] == overall["error_rate"] == 1 / (1 + EPS)
    assert overall["f_measure"] == 0.0
    # Class-wise a substitution is a deletion of Dog and an insertion of Cat; Cat has no references, so
    # its insertion rate is 1 / eps (sed_eval's convention), and that enters the class-wise average.
    assert out["class_wise"]["Dog"]["deletion_rate"] == 1 / (1 + EPS)
    assert out["class_wise"]["Cat"]["insertion_rate"] == 1 / EPS
    assert math.isnan(out["class_wise"]["Cat"]["f_measure"])
    assert out["class_wise_average"]["f_measure"] == 0.0
    assert_matches_sed_eval(
        out, sed_eval_event_based(ref, est, CLS, ["a.wav"]), EVENT_COUNTS, EVENT_CLASS_COUNTS
    )


def test_empty_system_output_scores_zero():
    ref = {"a.wav": [(1.0, 3.0, "Dog"), (4.0, 5.0, "Cat")], "b.wav": [(0.0, 10.0, "Speech")]}
    out = event_based(ref, {}, CLS)
    assert out["overall"]["precision"] == out["overall"]["recall"] == out["overall"]["f_measure"] == 0.0
    assert out["overall"]["deletion_rate"] == out["overall"]["error_rate"] == 3 / (3 + EPS)
    assert all(scores["f_measure"] == 0.0 for scores in out["class_wise"].values())
    assert out["class_wise_average"]["f_measure"] == 0.0
    assert_matches_sed_eval(
        out, sed_eval_event_based(ref, {}, CLS, sorted(ref)), EVENT_COUNTS, EVENT_CLASS_COUNTS
    )


def test_clip_without_reference_events():
    ref = {"a.wav": [(1.0, 3.0, "Dog")], "b.wav": []}
    est = {"a.wav": [(1.0, 3.0, "Dog")], "b.wav": [(2.0, 4.0, "Dog")], "c.wav": [(0.0, 1.0, "Cat")]}
    out = event_based(ref, est, CLS)
    overall = out["overall"]
    assert (overall["Nref"], overall["Nsys"], overall["Ntp"], overall["Nfp"], overall["Nfn"]) == (
        1,
        3,
        1,
        2,
        0,
    )
    assert overall["precision"] == 1 / 3 and overall["recall"] == 1.0
    assert out["class_wise"]["Dog"]["precision"] == 0.5
    assert_matches_sed_eval(
        out,
        sed_eval_event_based(ref, est, CLS, ["a.wav", "b.wav", "c.wav"]),
        EVENT_COUNTS,
        EVENT_CLASS_COUNTS,
    )
    # Only the listed clips count; a listed clip absent from both sides adds nothing.
    only_a = event_based(ref, est, CLS, files=["a.wav", "z.wav"])["overall"]
    assert (only_a["Nsys"], only_a["f_measure"]) == (1, 1.0)


def test_substitutions_follow_sed_eval_choice_of_maximum_matching():
    # Both estimates hit the Dog reference; the one left over is a substitution for the Cat reference only
    # when it is the one at 0.1 s. sed_eval pairs the first estimate, so the order decides Nsubs.
    ref = {"a.wav": [(0.0, 1.0, "Dog"), (0.25, 1.0, "Cat")]}
    forward = {"a.wav": [(0.0, 1.0, "Dog"), (0.1, 1.0, "Dog")]}
    backward = {"a.wav": [(0.1, 1.0, "Dog"), (0.0, 1.0, "Dog")]}
    for est, expected in ((forward, (1, 1, 0, 0)), (backward, (1, 0, 1, 1))):
        out = event_based(ref, est, CLS)
        overall = out["overall"]
        assert (overall["Ntp"], overall["Nsubs"], overall["Nfp"], overall["Nfn"]) == expected
        metric = sed_eval_event_based(ref, est, CLS, ["a.wav"])
        assert_matches_sed_eval(out, metric, EVENT_COUNTS, EVENT_CLASS_COUNTS)


def test_augmenting_path_beyond_the_greedy_start():
    # Greedy pairs the first estimate with the first reference and leaves the second reference unpaired;
    # the augmenting path re-pairs them so that both are found.
    ref = {"a.wav": [(1.0, 2.0, "Dog"), (1.15, 2.0, "Dog")]}
    est = {"a.wav": [(1.1, 2.0, "Dog"), (0.9, 2.0, "Dog")]}
    out = event_based(ref, est, CLS)
    assert out["overall"]["Ntp"] == 2
    assert_matches_sed_eval(
        out, sed_eval_event_based(ref, est, CLS, ["a.wav"]), EVENT_COUNTS, EVENT_CLASS_COUNTS
    )


def test_maximum_matching_equals_sed_eval_bipartite_match():
    rng = np.random.default_rng(3)
    for _ in range(500):
        n_ref, n_est = rng.integers(0, 9, size=2)
        hits = rng.random((n_ref, n_est)) < rng.choice((0.2, 0.4, 0.7))
        graph = sed_metrics._candidate_graph(hits)
        expected_graph: dict = {}
        for r, e in zip(*np.where(hits), strict=True):
            expected_graph.setdefault(e, []).append(r)
        assert list(graph.items()) == [(int(e), [int(r) for r in refs]) for e, refs in expected_graph.items()]
        ours = sed_metrics._maximum_matching(graph)
        theirs = sed_eval.util.bipartite_match(expected_graph)
        assert sorted(ours.items()) == sorted((int(r), int(e)) for r, e in theirs.items())


# ---- segment-based by hand ----


def test_segment_based_by_hand():
    ref = {"a.wav": [(0.5, 2.2, "Dog")]}  # segments 0, 1, 2
    est = {"a.wav": [(1.0, 1.5, "Dog"), (2.5, 2.9, "Cat")]}  # Dog in segment 1, Cat in segment 2
    out = segment_based(ref, est, CLS)
    dog, cat = out["class_wise"]["Dog"], out["class_wise"]["Cat"]
    assert (dog["Ntp"], dog["Nfn"], dog["Nfp"], dog["Ntn"]) == (1, 2, 0, 0)
    assert (cat["Ntp"], cat["Nfn"], cat["Nfp"], cat["Ntn"]) == (0, 0, 1, 2)
    overall = out["overall"]
    # segment 0: a deletion; segment 1: a hit; segment 2: Dog missed and Cat output, one substitution
    assert (overall["Ntp"], overall["Nsubs"], overall["Ndel"], overall["Nins"]) == (1, 1, 1, 0)
    assert overall["error_rate"] == 1 / (3 + EPS) + 1 / (3 + EPS)
    # Speech never occurs nor is output: segment-based precision is nan then (no zero_score in sed_eval).
    assert math.isnan(out["class_wise"]["Speech"]["precision"])
    assert_matches_sed_eval(
        out, sed_eval_segment_based(ref, est, CLS, ["a.wav"]), SEGMENT_COUNTS, SEGMENT_CLASS_COUNTS
    )

    ten = segment_based(ref, est, CLS, evaluated_length=10.0)
    assert ten["class_wise"]["Dog"]["Ntn"] == 7
    assert ten["overall"]["Ntn"] == 7 + 9 + 10
    metric = sed_eval_segment_based(ref, est, CLS, ["a.wav"], evaluated_length=10.0)
    assert_matches_sed_eval(ten, metric, SEGMENT_COUNTS, SEGMENT_CLASS_COUNTS)


# ---- random parity with sed_eval ----

JITTERS = (0.0, 0.05, 0.1, 0.15, 0.19, 0.2, 0.21, 0.25, 0.3, 0.5)


def _jitter(rng: random.Random, largest: float = 0.5) -> float:
    size = rng.choice([j for j in JITTERS if j <= largest])
    return size * rng.choice((-1, 1)) + rng.choice((0.0, 0.0, 0.001, -0.001, 0.01))


def _contested(rng: random.Random, labels: list[str]):
    """References of two or three classes a little apart and several estimates of the first class among
    them: which estimate the matching pairs decides whether the ones left over can substitute the others."""
    refs, ests = [], []
    for _ in range(rng.randint(1, 2)):
        start, length = round(rng.uniform(0.3, 8.0), 2), rng.choice((0.3, 1.0, 2.0))
        refs.append((start, start + length, labels[0]))
        for other in rng.sample(labels[1:], rng.randint(1, len(labels) - 1)):
            gap = rng.choice((0.1, 0.15, 0.2, 0.25, 0.3, 0.35)) * rng.choice((-1, 1))
            refs.append((start + gap, start + gap + length, other))
        for _ in range(rng.randint(1, 3)):
            shift = rng.choice((-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2))
            ests.append((start + shift, start + shift + length, labels[0]))
    rng.shuffle(refs)
    rng.shuffle(ests)
    return refs, ests


def random_clips(seed: int, n_clips: int, classes: tuple[str, ...]):
    """Clips whose events crowd around a few instants with a few labels, so that estimates hit several
    references and references several estimates, and the pairing decides which events are left for the
    substitutions; onsets and offsets fall near the collar and length limits, some estimates repeat."""
    rng = random.Random(seed)
    reference, estimated = {}, {}
    for k in range(n_clips):
        clip = f"clip{k:04d}.wav"
        labels = rng.sample(classes, rng.randint(2, min(3, len(classes))))
        kind = rng.choice(("scattered", "crowded", "contested"))
        if kind == "contested":
            refs, ests = _contested(rng, labels)
        else:
            # crowded: all events around one instant with a common length
            crowded = kind == "crowded"
            centres = [round(rng.uniform(0.0, 9.0), 2) for _ in range(1 if crowded else rng.randint(1, 3))]
            lengths = rng.sample((0.05, 0.3, 1.0, 1.0, 2.0, 4.0), 1 if crowded else 6)
            refs = []
            for _ in range(rng.randint(0, 6)):
                onset = max(0.0, rng.choice(centres) + _jitter(rng, largest=0.25))
                length = rng.choice(lengths) + rng.choice((0.0, 0.0, 0.02, 0.1))
                refs.append((onset, round(onset + length, 3), rng.choice(labels)))
            ests = []
        for _ in range(rng.randint(0, 6 - len(ests))):
            draw = rng.random()
            if refs and draw < 0.7:
                onset, offset, label = rng.choice(refs)
                if rng.random() < 0.6:  # near the reference
                    onset, offset = max(0.0, onset + _jitter(rng, 0.15)), offset + _jitter(rng, 0.15)
                else:  # near the limits of the collar or of the offset length rule
                    length_share = rng.choice((0.2, -0.2, 0.19, 0.21, 0.5)) * (offset - onset)
                    onset = max(0.0, onset + _jitter(rng))
                    offset = offset + rng.choice((0.0, _jitter(rng, 0.25), length_share))
                if rng.random() < 0.35:
                    label = rng.choice(labels if rng.random() < 0.8 else classes)
                ests.append((onset, max(onset, offset), label))
            elif ests and draw < 0.85:
                onset, offset, label = rng.choice(ests)  # a duplicate, or nearly
                shift = rng.choice((0.0, 0.05, -0.05))
                ests.append((max(0.0, onset + shift), max(0.0, offset + shift), label))
            else:
                onset = round(rng.uniform(0.0, 9.5), 2)
                ests.append((onset, onset + rng.choice((0.2, 1.0, 3.0)), rng.choice(classes)))
        if refs or rng.random() < 0.5:
            reference[clip] = refs
        if ests or rng.random() < 0.5:
            estimated[clip] = ests
    return reference, estimated


@pytest.fixture(scope="module", params=[(0, 3), (1, 5), (2, 10)], ids=lambda p: f"{p[1]}classes")
def random_data(request):
    seed, n_classes = request.param
    classes = CLASSES[:n_classes]
    reference, estimated = random_clips(seed, 150, classes)
    files = sorted(set(reference) | set(estimated))
    return reference, estimated, classes, files


def test_event_based_matches_sed_eval(random_data):
    reference, estimated, classes, files = random_data
    out = event_based(reference, estimated, classes)
    assert out["overall"]["Nref"] > 100 and out["overall"]["Nsubs"] > 5
    assert_matches_sed_eval(
        out, sed_eval_event_based(reference, estimated, classes, files), EVENT_COUNTS, EVENT_CLASS_COUNTS
    )
    wide = event_based(reference, estimated, classes, t_collar=0.25, percentage_of_length=0.5)
    metric = sed_eval_event_based(
        reference, estimated, classes, files, t_collar=0.25, percentage_of_length=0.5
    )
    assert_matches_sed_eval(wide, metric, EVENT_COUNTS, EVENT_CLASS_COUNTS)


def test_random_clips_tell_maximum_matchings_apart(random_data, monkeypatch):
    # The parity above would catch another maximum matching: searching the same graphs with the estimates
    # in reverse order finds as many pairs but changes the substitutions in some clips.
    reference, estimated, classes, files = random_data
    exact = {clip: event_based(reference, estimated, classes, files=[clip])["overall"] for clip in files}
    search = sed_metrics._maximum_matching
    monkeypatch.setattr(sed_metrics, "_maximum_matching", lambda graph: search(dict(reversed(graph.items()))))
    changed = 0
    for clip in files:
        other = event_based(reference, estimated, classes, files=[clip])["overall"]
        assert other["Ntp"] == exact[clip]["Ntp"]
        changed += other["Nsubs"] != exact[clip]["Nsubs"]
    assert changed >= 3


@pytest.mark.parametrize(("time_resolution", "evaluated_length"), [(1.0, None), (1.0, 10.0), (0.5, 8.0)])
def test_segment_based_matches_sed_eval(random_data, time_resolution, evaluated_length):
    reference, estimated, classes, files = random_data
    out = segment_based(
        reference, estimated, classes, time_resolution=time_resolution, evaluated_length=evaluated_length
    )
    metric = sed_eval_segment_based(reference, estimated, classes, files, time_resolution, evaluated_length)
    assert_matches_sed_eval(out, metric, SEGMENT_COUNTS, SEGMENT_CLASS_COUNTS)


# ---- tagging ----


def test_tagging_by_hand():
    ref = {"a": {"Dog"}, "b": {"Dog", "Cat"}, "c": set()}
    est = {"a": ["Dog"], "b": ["Cat", "Speech"], "d": ["Cat"]}
    out = tagging(ref, est, CLS)
    dog, cat, speech = (out["class_wise"][name] for name in CLS)
    assert (dog["Ntp"], dog["Nfp"], dog["Nfn"]) == (1, 0, 1)
    assert (dog["precision"], dog["recall"], dog["f_measure"]) == (1.0, 0.5, 2 / 3)
    assert (cat["Ntp"], cat["Nfp"], cat["Nfn"], cat["f_measure"]) == (1, 1, 0, 2 / 3)
    assert (speech["precision"], speech["recall"], speech["f_measure"]) == (0.0, 0.0, 0.0)
    assert out["macro"]["f_measure"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert (out["micro"]["Ntp"], out["micro"]["Nfp"], out["micro"]["Nfn"]) == (2, 2, 1)
    assert out["micro"]["f_measure"] == 4 / 7
    # A class with neither references nor output counts as 0 in the macro mean.
    assert tagging({"a": {"Dog"}}, {"a": {"Dog"}}, CLS)["macro"]["f_measure"] == 1 / 3


def test_tagging_matches_sklearn():
    rng = np.random.default_rng(5)
    for _ in range(120):
        n_clips, n_classes = int(rng.integers(1, 30)), int(rng.integers(3, 11))
        classes = CLASSES[:n_classes]
        truth = rng.random((n_clips, n_classes)) < rng.uniform(0.0, 0.5)
        guess = rng.random((n_clips, n_classes)) < rng.uniform(0.0, 0.5)
        truth[:, rng.random(n_classes) < 0.2] = False  # some classes absent from the references
        guess[:, rng.random(n_classes) < 0.2] = False
        ref = {f"c{i}": {classes[c] for c in np.flatnonzero(row)} for i, row in enumerate(truth)}
        est = {f"c{i}": [classes[c] for c in np.flatnonzero(row)] for i, row in enumerate(guess)}
        out = tagging(ref, est, classes)
        for average, ours in (("macro", out["macro"]), ("micro", out["micro"])):
            for name, score in (
                ("f_measure", f1_score),
                ("precision", precision_score),
                ("recall", recall_score),
            ):
                expected = score(truth, guess, average=average, zero_division=0)
                assert same(ours[name], expected), (average, name)
        per_class = f1_score(truth, guess, average=None, zero_division=0)
        for name, expected in zip(classes, per_class, strict=True):
            assert same(out["class_wise"][name]["f_measure"], expected), name


# ---- together, and refusals ----


def same_tree(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_tree(a[k], b[k]) for k in a)
    return type(a) is type(b) and same(a, b)


def test_evaluate_all_is_json_ready(random_data):
    reference, estimated, classes, _ = random_data
    scores = evaluate_all(reference, estimated, classes)
    assert list(scores) == ["event_based", "segment_based", "tagging"]
    assert same_tree(scores["event_based"], event_based(reference, estimated, classes, None, 0.2, 0.2))
    assert same_tree(scores["segment_based"], segment_based(reference, estimated, classes, None, 1.0))
    assert same_tree(
        scores["tagging"], tagging(strong_to_tags(reference), strong_to_tags(estimated), classes)
    )
    assert same_tree(json.loads(json.dumps(scores)), scores)

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return type(value) in (int, float)

    assert plain(scores)


def test_strong_to_tags():
    events = {"a": [(0.0, 1.0, "Dog"), (2.0, 3.0, "Dog"), (1.0, 2.0, "Cat")], "b": []}
    assert strong_to_tags(events) == {"a": {"Dog", "Cat"}, "b": set()}


@pytest.mark.parametrize(
    "events",
    [
        {"a": [(0.0, 1.0, "Bird")]},
        {"a": [(-0.1, 1.0, "Dog")]},
        {"a": [(2.0, 1.0, "Dog")]},
        {"a": [(0.0, math.inf, "Dog")]},
        {"a": [(0.0, 1.0)]},
    ],
)
def test_bad_events_are_refused(events):
    for score in (event_based, segment_based):
        with pytest.raises(ValueError, match="'a' event 0"):
            score(events, {}, CLS)
        with pytest.raises(ValueError, match="'a' event 0"):
            score({}, events, CLS)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="empty"):
        event_based({}, {}, ())
    with pytest.raises(ValueError, match="twice"):
        event_based({}, {}, ("Dog", "Dog"))
    with pytest.raises(ValueError, match="more than once"):
        event_based({}, {}, CLS, files=["a", "a"])
    with pytest.raises(ValueError, match="t_collar"):
        event_based({}, {}, CLS, t_collar=0.0)
    with pytest.raises(ValueError, match="time_resolution"):
        segment_based({}, {}, CLS, time_resolution=0.0)
    with pytest.raises(ValueError, match="not one of the classes"):
        tagging({"a": {"Bird"}}, {}, CLS)
