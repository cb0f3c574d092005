"""Sound event detection scores (DCASE2018 task 4): event-based, segment-based and clip-level tagging.

Events are plain data: an event list maps a clip's filename to its events ``(onset, offset, label)`` in
seconds; tags map a filename to a set (or list) of labels. Every label must be one of ``classes``.
Counts are made clip by clip and summed over the evaluated clips (``files``: by default the sorted union of
the clips named in the reference and the estimate; a clip missing from one side has no events there).

Event-based (``event_based``), the DCASE2018 ranking measure
-------------------------------------------------------------
An estimated event is a hit for a reference event of the same label when its onset lies within
``t_collar`` (200 ms) of the reference onset and its offset within ``max(t_collar, percentage_of_length *
reference length)`` (20 %) of the reference offset (both inclusive). In each clip the hits are paired one to
one by a maximum-cardinality bipartite matching: true positives ``Ntp``. Among the events left unpaired, a
reference event and an estimated one whose times would match but whose labels differ are a substitution
(``Nsubs``); the rest of the estimates are insertions (``Nfp``) and the rest of the references deletions
(``Nfn``). A class's counts are the same with the other classes' events left out, so its insertions and
deletions include the substituted events.

Which events remain for the substitution count depends on which maximum matching is chosen. The one chosen
here is sed_eval's: Hopcroft-Karp after mir_eval, on the graph "estimate -> list of references it hits",
with the estimates in the order in which a row-major scan of the (reference, estimate) hit matrix first
meets them and each estimate's references ascending; it starts from the greedy matching in that order, then
augments along shortest alternating paths found by a layered breadth-first search and a depth-first search
back through the layers. Substitutions are then counted greedily: each unpaired reference in order takes
the first unpaired, not yet taken estimate (in order) whose onset and offset both match. So the order of
the events inside a clip can change ``Nsubs`` (and so the overall error rate), never ``Ntp``.

Segment-based (``segment_based``)
---------------------------------
Each clip is cut into ``time_resolution`` (1 s) segments; an event makes its class active from segment
``floor(onset / res)`` up to, not including, ``ceil(offset / res)``. A clip has ``ceil(L / res)`` segments,
``L`` being ``evaluated_length`` or, when that is None, the clip's latest reference or estimated offset
(events past the end are cut off). Per class and segment: true/false positives and negatives. Overall, per
segment, with ``Nref``/``Nsys`` the active classes and ``Ntp`` the classes active in both:
``S = min(Nref, Nsys) - Ntp``, ``D = max(0, Nref - Nsys)``, ``I = max(0, Nsys - Nref)``, summed.

Rates and their conventions (both measures, as sed_eval)
-------------------------------------------------------
precision ``Ntp / Nsys``, recall ``Ntp / Nref`` (nan when ``Nref == 0``), F1 ``2 P R / (P + R)`` (0 when
``P == R == 0``, nan when either is nan); substitution, deletion and insertion rates ``N / (Nref + eps)``
with ``eps = numpy.spacing(1)``, error rate their sum (a class's error rate has no substitutions).
When ``Nsys == 0``, event-based precision is 0 (sed_eval's ``empty_system_output_handling='zero_score'``,
the DCASE setting: a class the system never outputs scores F = 0 when it has references), while
segment-based precision is nan (``SegmentBasedMetrics`` has no such option). Segment-based accuracy:
sensitivity ``Ntp / (Ntp + Nfn + eps)``, specificity ``Ntn / (Ntn + Nfp + eps)``, balanced accuracy their
mean, accuracy ``(Ntp + Ntn) / (Ntp + Ntn + Nfp + Nfn + eps)``. The class-wise average is the mean over the
classes whose value is not nan (``numpy.nanmean``; nan when there is none): the class-wise average event-based
F1 is the DCASE2018 task 4 ranking metric ("macro event-based F1").

Every count, rate and average equals sed_eval 0.2.1's ``EventBasedMetrics(event_matching_type='optimal',
empty_system_output_handling='zero_score')`` and ``SegmentBasedMetrics`` fed clip by clip (the DCASE
baselines' loop); tests/tasks/sed/test_metrics.py checks this on random clips. Inputs sed_eval would take
but that are almost surely mistakes are refused here with a ValueError: a label outside ``classes``
(sed_eval counts it in the overall numbers only, or fails in segment-based), a negative or non-finite time,
an offset before its onset.

Tagging (``tagging``)
---------------------
Clip-level labels: per class, ``Ntp``/``Nfp``/``Nfn`` count clips; precision, recall and F1
``2 Ntp / (2 Ntp + Nfp + Nfn)`` are 0 where their denominator is 0. "macro" is the plain mean over all
classes, a class with neither reference nor estimated clips counting as 0 (and so pulling the mean down):
the same as ``sklearn.metrics.f1_score(average='macro', zero_division=0)`` with one indicator column per
class; "micro" pools the counts of all classes. Also checked against scikit-learn in the tests.

``evaluate_all`` computes the three with the DCASE2018 settings (200 ms collar, 20 % of the length for the
offset, 1 s segments, tags derived from the strong labels by ``strong_to_tags``). All results are plain
Python ints and floats (nan included), ready for ``json.dumps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

Event = tuple[float, float, str]
EventList = Mapping[str, Sequence[Event]]
TagList = Mapping[str, Iterable[str]]

# sed_eval's guard in the denominators of the rates; it changes them in the last bits when Nref == 1.
_EPS = float(np.spacing(1))


# ---- inputs ----


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    classes = list(classes)
    if not classes:
        raise ValueError("classes is empty")
    index: dict[str, int] = {}
    for name in classes:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"class names must be non-empty strings without surrounding spaces: {name!r}")
        if name in index:
            raise ValueError(f"class {name!r} is listed twice")
        index[name] = len(index)
    return index


def _evaluated_files(files: Iterable[str] | None, *sides: Mapping[str, object]) -> list[str]:
    if files is None:
        return sorted(set().union(*(side.keys() for side in sides)))
    files = list(files)
    if len(set(files)) != len(files):
        raise ValueError("files lists a clip more than once")
    return files


def _clip_events(
    events: Sequence[Event], index: Mapping[str, int], side: str, clip: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onsets, offsets, class ids) of one clip's events, in their given order, after checking them."""
    onsets, offsets, labels = [], [], []
    for k, event in enumerate(events):
        if len(event) != 3:
            raise ValueError(f"{side} {clip!r} event {k}: expected (onset, offset, label), got {event!r}")
        onset, offset, label = float(event[0]), float(event[1]), event[2]
        if label not in index:
            raise ValueError(f"{side} {clip!r} event {k}: label {label!r} is not one of the classes")
        if not (math.isfinite(onset) and math.isfinite(offset)) or onset < 0 or offset < onset:
            raise ValueError(
                f"{side} {clip!r} event {k}: need 0 <= onset <= offset (finite), got {onset!r}, {offset!r}"
            )
        onsets.append(onset)
        offsets.append(offset)
        labels.append(index[label])
    return np.array(onsets, dtype=float), np.array(offsets, dtype=float), np.array(labels, dtype=np.int64)


# ---- rates, as sed_eval.metric defines them ----


def _precision(ntp: int, nsys: int, zero_score: bool) -> float:
    if nsys == 0:
        return 0.0 if zero_score else math.nan
    return ntp / float(nsys)


def _recall(ntp: int, nref: int) -> float:
    return math.nan if nref == 0 else ntp / float(nref)


def _f_measure(precision: float, recall: float) -> float:
    if precision == 0 and recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _rate(count: int, nref: int) -> float:
    return count / (nref + _EPS)


def _nanmean(values: Sequence[float]) -> float:
    """numpy.nanmean without its warning when every value is nan."""
    arr = np.array(values, dtype=float)
    keep = ~np.isnan(arr)
    if not keep.any():
        return math.nan
    arr[~keep] = 0.0
    return float(np.sum(arr) / keep.sum())


def _prf(ntp: int, nsys: int, nref: int, zero_score: bool) -> dict[str, float]:
    precision = _precision(ntp, nsys, zero_score)
    recall = _recall(ntp, nref)
    return {"f_measure": _f_measure(precision, recall), "precision": precision, "recall": recall}


def _class_error_rates(nfn: int, nfp: int, nref: int) -> dict[str, float]:
    deletion, insertion = _rate(nfn, nref), _rate(nfp, nref)
    return {"error_rate": 0.0 + deletion + insertion, "deletion_rate": deletion, "insertion_rate": insertion}


def _overall_error_rates(nsubs: int, ndel: int, nins: int, nref: int) -> dict[str, float]:
    subs, dels, ins = _rate(nsubs, nref), _rate(ndel, nref), _rate(nins, nref)
    return {
        "error_rate": subs + dels + ins,
        "substitution_rate": subs,
        "deletion_rate": dels,
        "insertion_rate": ins,
    }


def _accuracies(ntp: int, ntn: int, nfp: int, nfn: int) -> dict[str, float]:
    sensitivity = ntp / (ntp + nfn + _EPS)
    specificity = ntn / (ntn + nfp + _EPS)
    return {
        "accuracy": (ntp + ntn) / (ntp + ntn + nfn + nfp + _EPS),
        "balanced_accuracy": 0.5 * sensitivity + 0.5 * specificity,
        "sensitivity": sensitivity,
        "specificity": specificity,
    }


def _class_wise_average(
    class_wise: Mapping[str, Mapping[str, float]], keys: Sequence[str]
) -> dict[str, float]:
    return {key: _nanmean([scores[key] for scores in class_wise.values()]) for key in keys}


# ---- event-based ----

_FREE = object()  # marks an estimate that starts an alternating path (it was unmatched)


def _candidate_graph(hits: np.ndarray) -> dict[int, list[int]]:
    """estimate -> references it hits, from the (reference, estimate) hit matrix scanned row by row: the
    estimates are keyed in the order the scan first meets them, their references ascending."""
    graph: dict[int, list[int]] = {}
    for ref, est in zip(*np.nonzero(hits), strict=True):
        graph.setdefault(int(est), []).append(int(ref))
    return graph


def _maximum_matching(graph: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """A maximum-cardinality matching of the bipartite graph ``estimate -> [references]``, as
    ``{reference: estimate}``: the very matching mir_eval's and sed_eval's Hopcroft-Karp returns."""
    partner: dict[int, int] = {}  # reference -> estimate
    # Greedy start: each estimate, in graph order, takes its first free reference.
    for est, refs in graph.items():
        free_ref = next((ref for ref in refs if ref not in partner), None)
        if free_ref is not None:
            partner[free_ref] = est

    while True:
        taken = set(partner.values())
        # via[est]: the reference through which the layered search reached a matched estimate, or _FREE for
        # the unmatched estimates of the first layer. reached_from[ref]: the estimates of the previous layer
        # that lead to ref.
        via: dict[int, object] = {est: _FREE for est in graph if est not in taken}
        reached_from: dict[int, list[int]] = {}
        frontier = list(via)
        path_ends: list[int] = []  # unmatched references of the last layer
        while frontier and not path_ends:
            next_refs: dict[int, list[int]] = {}
            for est in frontier:
                for ref in graph[est]:
                    if ref not in reached_from:
                        next_refs.setdefault(ref, []).append(est)
            frontier = []
            for ref, sources in next_refs.items():
                reached_from[ref] = sources
                if ref in partner:
                    frontier.append(partner[ref])
                    via[partner[ref]] = ref
                else:
                    path_ends.append(ref)
        if not path_ends:
            return partner

        for ref in path_ends:
            _flip_path(ref, partner, via, reached_from)


def _flip_path(
    ref: int, partner: dict[int, int], via: dict[int, object], reached_from: dict[int, list[int]]
) -> bool:
    """Walk back from ``ref`` through the search layers to a free estimate, using each vertex once per
    round; when one is reached, re-pair the references and estimates along the way (one more pair)."""
    sources = reached_from.pop(ref, None)
    if sources is None:
        return False
    for est in sources:
        if est in via:
            back = via.pop(est)
            if back is _FREE or _flip_path(back, partner, via, reached_from):
                partner[ref] = est
                return True
    return False


def _match_clip(
    ref: tuple[np.ndarray, np.ndarray, np.ndarray],
    est: tuple[np.ndarray, np.ndarray, np.ndarray],
    t_collar: float,
    percentage_of_length: float,
) -> tuple[np.ndarray, int]:
    """(class ids of the references paired as true positives, number of substitutions) for one clip."""
    ref_on, ref_off, ref_label = ref
    est_on, est_off, est_label = est
    onset_ok = np.abs(ref_on[:, None] - est_on[None, :]) <= t_collar
    offset_tolerance = np.maximum(t_collar, percentage_of_length * (ref_off - ref_on))
    offset_ok = np.abs(ref_off[:, None] - est_off[None, :]) <= offset_tolerance[:, None]
    times_ok = onset_ok & offset_ok  # (n_ref, n_est)
    hits = times_ok & (ref_label[:, None] == est_label[None, :])

    partner = _maximum_matching(_candidate_graph(hits))
    ref_paired = np.zeros(len(ref_on), dtype=bool)
    est_paired = np.zeros(len(est_on), dtype=bool)
    ref_paired[list(partner.keys())] = True
    est_paired[list(partner.values())] = True

    n_subs = 0
    est_left = np.flatnonzero(~est_paired)
    for r in np.flatnonzero(~ref_paired):
        for e in est_left:
            if not est_paired[e] and times_ok[r, e]:
                est_paired[e] = True  # taken by this substitution
                n_subs += 1
                break
    return ref_label[ref_paired], n_subs


def event_based(
    reference: EventList,
    estimated: EventList,
    classes: Sequence[str],
    files: Iterable[str] | None = None,
    t_collar: float = 0.2,
    percentage_of_length: float = 0.2,
) -> dict:
    """Event-based (onset and offset) scores, summed over ``files`` clip by clip; see the module docstring.

    Returns ``{"overall": {f_measure, precision, recall, error_rate, substitution_rate, deletion_rate,
    insertion_rate, Nref, Nsys, Ntp, Nsubs, Nfp, Nfn}, "class_wise": {label: {f_measure, precision,
    recall, error_rate, deletion_rate, insertion_rate, Nref, Nsys, Ntp, Nfp, Nfn}}, "class_wise_average":
    {f_measure, precision, recall, error_rate, deletion_rate, insertion_rate}}``.
    """
    index = _class_index(classes)
    if not t_collar > 0:
        raise ValueError(f"t_collar must be > 0, got {t_collar!r}")
    if not 0 <= percentage_of_length <= 1:
        raise ValueError(f"percentage_of_length must be in [0, 1], got {percentage_of_length!r}")
    t_collar, percentage_of_length = float(t_collar), float(percentage_of_length)

    n_classes = len(index)
    nref = np.zeros(n_classes, dtype=np.int64)
    nsys = np.zeros(n_classes, dtype=np.int64)
    ntp = np.zeros(n_classes, dtype=np.int64)
    nsubs = 0
    for clip in _evaluated_files(files, reference, estimated):
        ref = _clip_events(reference.get(clip, ()), index, "reference", clip)
        est = _clip_events(estimated.get(clip, ()), index, "estimated", clip)
        paired_labels, clip_subs = _match_clip(ref, est, t_collar, percentage_of_length)
        nref += np.bincount(ref[2], minlength=n_classes)
        nsys += np.bincount(est[2], minlength=n_classes)
        ntp += np.bincount(paired_labels, minlength=n_classes)
        nsubs += clip_subs

    total_ref, total_sys, total_tp = int(nref.sum()), int(nsys.sum()), int(ntp.sum())
    total_fp, total_fn = total_sys - total_tp - nsubs, total_ref - total_tp - nsubs
    overall = {
        **_prf(total_tp, total_sys, total_ref, zero_score=True),
        **_overall_error_rates(nsubs, total_fn, total_fp, total_ref),
        "Nref": total_ref,
        "Nsys": total_sys,
        "Ntp": total_tp,
        "Nsubs": nsubs,
        "Nfp": total_fp,
        "Nfn": total_fn,
    }
    class_wise = {}
    for name, c in index.items():
        c_ref, c_sys, c_tp = int(nref[c]), int(nsys[c]), int(ntp[c])
        class_wise[name] = {
            **_prf(c_tp, c_sys, c_ref, zero_score=True),
            **_class_error_rates(c_ref - c_tp, c_sys - c_tp, c_ref),
            "Nref": c_ref,
            "Nsys": c_sys,
            "Ntp": c_tp,
            "Nfp": c_sys - c_tp,
            "Nfn": c_ref - c_tp,
        }
    keys = ("f_measure", "precision", "recall", "error_rate", "deletion_rate", "insertion_rate")
    return {
        "overall": overall,
        "class_wise": class_wise,
        "class_wise_average": _class_wise_average(class_wise, keys),
    }


# ---- segment-based ----


def _activity(
    events: tuple[np.ndarray, np.ndarray, np.ndarray], n_segments: int, n_classes: int, resolution: float
) -> np.ndarray:
    """(n_segments, n_classes) bool: which classes are active in which segment."""
    roll = np.zeros((n_segments, n_classes), dtype=bool)
    for onset, offset, c in zip(*events, strict=True):
        roll[math.floor(onset / resolution) : math.ceil(offset / resolution), c] = True
    return roll


def segment_based(
    reference: EventList,
    estimated: EventList,
    classes: Sequence[str],
    files: Iterable[str] | None = None,
    time_resolution: float = 1.0,
    evaluated_length: float | None = None,
) -> dict:
    """Segment-based scores, summed over ``files`` clip by clip; see the module docstring.

    ``evaluated_length``: every clip's length in seconds (DCASE2018 clips: 10.0); None takes each clip's
    latest offset, as sed_eval does without it. Returns ``{"overall": {f_measure, precision, recall,
    error_rate, substitution_rate, deletion_rate, insertion_rate, accuracy, balanced_accuracy, sensitivity,
    specificity, Nref, Nsys, Ntp, Ntn, Nfp, Nfn, Nsubs, Ndel, Nins}, "class_wise": {label: {f_measure,
    precision, recall, error_rate, deletion_rate, insertion_rate, accuracy, balanced_accuracy, sensitivity,
    specificity, Nref, Nsys, Ntp, Ntn, Nfp, Nfn}}, "class_wise_average": {the rates of class_wise}}``.
    """
    index = _class_index(classes)
    if not time_resolution > 0:
        raise ValueError(f"time_resolution must be > 0, got {time_resolution!r}")
    if evaluated_length is not None and not evaluated_length > 0:
        raise ValueError(f"evaluated_length must be > 0 or None, got {evaluated_length!r}")
    resolution = float(time_resolution)

    n_classes = len(index)
    counts = {
        key: np.zeros(n_classes, dtype=np.int64) for key in ("Ntp", "Ntn", "Nfp", "Nfn", "Nref", "Nsys")
    }
    n_subs = n_del = n_ins = 0
    for clip in _evaluated_files(files, reference, estimated):
        ref = _clip_events(reference.get(clip, ()), index, "reference", clip)
        est = _clip_events(estimated.get(clip, ()), index, "estimated", clip)
        if evaluated_length is None:
            length = max(0.0, float(ref[1].max(initial=0.0)), float(est[1].max(initial=0.0)))
        else:
            length = float(evaluated_length)
        n_segments = math.ceil(length / resolution)
        ref_roll = _activity(ref, n_segments, n_classes, resolution)
        est_roll = _activity(est, n_segments, n_classes, resolution)

        both = ref_roll & est_roll
        counts["Ntp"] += both.sum(axis=0)
        counts["Ntn"] += (~ref_roll & ~est_roll).sum(axis=0)
        counts["Nfp"] += (est_roll & ~ref_roll).sum(axis=0)
        counts["Nfn"] += (ref_roll & ~est_roll).sum(axis=0)
        counts["Nref"] += ref_roll.sum(axis=0)
        counts["Nsys"] += est_roll.sum(axis=0)
        per_ref, per_sys, per_tp = ref_roll.sum(axis=1), est_roll.sum(axis=1), both.sum(axis=1)
        n_subs += int((np.minimum(per_ref, per_sys) - per_tp).sum())
        n_del += int(np.maximum(0, per_ref - per_sys).sum())
        n_ins += int(np.maximum(0, per_sys - per_ref).sum())

    total = {key: int(value.sum()) for key, value in counts.items()}
    overall = {
        **_prf(total["Ntp"], total["Nsys"], total["Nref"], zero_score=False),
        **_overall_error_rates(n_subs, n_del, n_ins, total["Nref"]),
        **_accuracies(total["Ntp"], total["Ntn"], total["Nfp"], total["Nfn"]),
        **total,
        "Nsubs": n_subs,
        "Ndel": n_del,
        "Nins": n_ins,
    }
    class_wise = {}
    for name, c in index.items():
        n = {key: int(value[c]) for key, value in counts.items()}
        class_wise[name] = {
            **_prf(n["Ntp"], n["Nsys"], n["Nref"], zero_score=False),
            **_class_error_rates(n["Nfn"], n["Nfp"], n["Nref"]),
            **_accuracies(n["Ntp"], n["Ntn"], n["Nfp"], n["Nfn"]),
            **n,
        }
    keys = (
        "f_measure",
        "precision",
        "recall",
        "error_rate",
        "deletion_rate",
        "insertion_rate",
        "accuracy",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
    )
    return {
        "overall": overall,
        "class_wise": class_wise,
        "class_wise_average": _class_wise_average(class_wise, keys),
    }


# ---- clip tagging ----


def _tag_matrix(tags: TagList, clips: Sequence[str], index: Mapping[str, int], side: str) -> np.ndarray:
    """(n_clips, n_classes) bool indicator matrix."""
    matrix = np.zeros((len(clips), len(index)), dtype=bool)
    for row, clip in enumerate(clips):
        for label in tags.get(clip, ()):
            if label not in index:
                raise ValueError(f"{side} tags of {clip!r}: {label!r} is not one of the classes")
            matrix[row, index[label]] = True
    return matrix


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def tagging(
    reference_tags: TagList,
    estimated_tags: TagList,
    classes: Sequence[str],
    files: Iterable[str] | None = None,
) -> dict:
    """Clip-level tagging scores; see the module docstring.

    Returns ``{"class_wise": {label: {f_measure, precision, recall, Ntp, Nfp, Nfn}}, "macro": {f_measure,
    precision, recall}, "micro": {f_measure, precision, recall, Ntp, Nfp, Nfn}}``.
    """
    index = _class_index(classes)
    clips = _evaluated_files(files, reference_tags, estimated_tags)
    truth = _tag_matrix(reference_tags, clips, index, "reference")
    guess = _tag_matrix(estimated_tags, clips, index, "estimated")
    ntp = (truth & guess).sum(axis=0)
    nfp = (guess & ~truth).sum(axis=0)
    nfn = (truth & ~guess).sum(axis=0)

    def scores(tp: int, fp: int, fn: int) -> dict:
        return {
            "f_measure": _ratio(2 * tp, 2 * tp + fp + fn),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "Ntp": tp,
            "Nfp": fp,
            "Nfn": fn,
        }

    class_wise = {name: scores(int(ntp[c]), int(nfp[c]), int(nfn[c])) for name, c in index.items()}
    macro = {
        key: float(np.mean([s[key] for s in class_wise.values()]))
        for key in ("f_measure", "precision", "recall")
    }
    micro = scores(int(ntp.sum()), int(nfp.sum()), int(nfn.sum()))
    return {"class_wise": class_wise, "macro": macro, "micro": micro}


# ---- together ----


def strong_to_tags(events: EventList) -> dict[str, set[str]]:
    """Clip tags from strong labels: each clip's set of event labels (empty for a clip without events)."""
    return {clip: {event[2] for event in clip_events} for clip, clip_events in events.items()}


def evaluate_all(
    reference: EventList,
    estimated: EventList,
    classes: Sequence[str],
    files: Iterable[str] | None = None,
    estimated_tags: TagList | None = None,
) -> dict:
    """The three measures with the DCASE2018 task 4 settings: ``{"event_based", "segment_based",
    "tagging"}`` (200 ms collar and 20 % of the length for offsets, 1 s segments; the tags are
    ``estimated_tags``, a system's clip-level decisions, or else the classes of its events)."""
    files = None if files is None else list(files)
    tags = strong_to_tags(estimated) if estimated_tags is None else estimated_tags
    return {
        "event_based": event_based(
            reference, estimated, classes, files, t_collar=0.2, percentage_of_length=0.2
        ),
        "segment_based": segment_based(reference, estimated, classes, files, time_resolution=1.0),
        "tagging": tagging(strong_to_tags(reference), tags, classes, files),
    }
