"""Post-processing: thresholds, hysteresis, median filtering, tag gating, frames -> events."""

from __future__ import annotations

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.sed.config import PostConfig
from aics.tasks.sed.infer import (
    class_thresholds,
    decide,
    median_filter_binary,
    postprocess,
    read_events,
    to_events,
    write_events,
)
from aics.tasks.sed.labels import CLASSES

FS = 0.1  # seconds per frame


def _probs(T=40, **runs):
    p = np.zeros((T, len(CLASSES)), np.float32)
    for label, values in runs.items():
        for start, end, v in values:
            p[start:end, CLASSES.index(label)] = v
    return p


def test_frames_to_events_in_seconds():
    post = PostConfig(median_seconds=0.0, tag_gate=False)
    p = _probs(Dog=[(5, 12, 0.9)], Cat=[(0, 3, 0.7), (30, 40, 0.8)])
    events = to_events(decide(p, p.max(0), FS, post), FS, post)
    # centred frames: a run [start, end) spans [start - 1/2, end - 1/2) frames, clipped to the clip
    assert events == [(0.0, 0.25, "Cat"), (0.45, 1.15, "Dog"), (2.95, 3.9, "Cat")]


def test_events_stay_within_the_clip():
    post = PostConfig(median_seconds=0.0, tag_gate=False)
    active = np.ones((501, len(CLASSES)), bool)  # 10 s at 20 ms: the last frame is centred at 10.00 s
    events = to_events(active, 0.02, post, clip_seconds=10.0)
    assert len(events) == len(CLASSES) and all(e[:2] == (0.0, 10.0) for e in events)


def test_median_filter_removes_blips_and_fills_gaps():
    a = np.zeros((20, 1), bool)
    a[3] = True  # a one-frame blip
    a[8:12] = a[13:17] = True  # a one-frame gap
    out = median_filter_binary(a, 3)
    assert not out[3] and out[8:17].all() and out.sum() == 9
    assert np.array_equal(median_filter_binary(a, 1), a)


def test_per_class_median_lengths():
    p = _probs(Dog=[(5, 6, 0.9), (10, 20, 0.9)], Cat=[(5, 6, 0.9), (10, 20, 0.9)])
    lengths = [0.0] * len(CLASSES)
    lengths[CLASSES.index("Cat")] = 0.3  # three frames: the one-frame blip goes, for Cat only
    post = PostConfig(median_per_class=tuple(lengths), tag_gate=False)
    events = to_events(decide(p, p.max(0), FS, post), FS, post)
    assert [e for e in events if e[2] == "Cat"] == [(0.95, 1.95, "Cat")]
    assert [e for e in events if e[2] == "Dog"] == [(0.45, 0.55, "Dog"), (0.95, 1.95, "Dog")]
    with pytest.raises(UserError, match="median_per_class has 2 values"):
        class_thresholds(PostConfig(median_per_class=(0.1, 0.2)))


def test_hysteresis_keeps_the_whole_run_that_passes_the_high_threshold():
    p = _probs(Dog=[(2, 10, 0.4), (5, 6, 0.9), (20, 25, 0.4)])
    post = PostConfig(threshold=0.5, low_threshold=0.3, median_seconds=0.0, tag_gate=False)
    events = to_events(decide(p, p.max(0), FS, post), FS, post)
    assert events == [(0.15, 0.95, "Dog")]  # the 20-25 run never passes 0.5


def test_tag_gate_drops_classes_the_clip_head_rejects():
    p = _probs(Dog=[(5, 12, 0.9)], Cat=[(20, 30, 0.9)])
    clip = np.zeros(len(CLASSES))
    clip[CLASSES.index("Dog")] = 0.8
    post = PostConfig(median_seconds=0.0, tag_gate=True)
    events, tags = postprocess(["x.wav"], clip[None], p[None], FS, post)
    assert events["x.wav"] == [(0.45, 1.15, "Dog")] and tags["x.wav"] == ["Dog"]


def test_merge_gap_and_min_length():
    p = _probs(Dog=[(5, 8, 0.9), (9, 12, 0.9), (30, 31, 0.9)])
    post = PostConfig(median_seconds=0.0, tag_gate=False, merge_gap_seconds=0.15, min_event_seconds=0.2)
    assert to_events(decide(p, p.max(0), FS, post), FS, post) == [(0.45, 1.15, "Dog")]


def test_per_class_thresholds():
    post = PostConfig(thresholds=tuple(0.05 * (i + 1) for i in range(len(CLASSES))))
    assert class_thresholds(post)[2] == pytest.approx(0.15)
    with pytest.raises(UserError, match="give one per class"):
        class_thresholds(PostConfig(thresholds=(0.5, 0.5)))
    with pytest.raises(UserError, match="must lie between 0 and 1"):
        class_thresholds(PostConfig(threshold=1.5))
    with pytest.raises(UserError, match="low_threshold=0.6 must be below every threshold"):
        class_thresholds(PostConfig(threshold=0.5, low_threshold=0.6))


def test_event_lists_round_trip_in_the_dcase_format(tmp_path):
    events = {
        "b.wav": [(0.5, 1.25, "Dog")],
        "a.wav": [],
        "c.wav": [(0.0, 10.0, "Frying"), (1.0, 2.0, "Speech")],
    }
    write_events(tmp_path / "e.tsv", events)
    lines = (tmp_path / "e.tsv").read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label" and lines[1] == "b.wav\t0.500\t1.250\tDog"
    back, clips = read_events(tmp_path / "e.tsv")
    assert back == {k: v for k, v in events.items() if v} and set(clips) == {"b.wav", "c.wav"}
