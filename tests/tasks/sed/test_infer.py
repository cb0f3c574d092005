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
    assert events == [(0.0, 0.3, "Cat"), (0.5, 1.2, "Dog"), (3.0, 4.0, "Cat")]


def test_median_filter_removes_blips_and_fills_gaps():
    a = np.zeros((20, 1), bool)
    a[3] = True  # a one-frame blip
    a[8:12] = a[13:17] = True  # a one-frame gap
    out = median_filter_binary(a, 3)
    assert not out[3] and out[8:17].all() and out.sum() == 9
    assert np.array_equal(median_filter_binary(a, 1), a)


def test_hysteresis_keeps_the_whole_run_that_passes_the_high_threshold():
    p = _probs(Dog=[(2, 10, 0.4), (5, 6, 0.9), (20, 25, 0.4)])
    post = PostConfig(threshold=0.5, low_threshold=0.3, median_seconds=0.0, tag_gate=False)
    events = to_events(decide(p, p.max(0), FS, post), FS, post)
    assert events == [(0.2, 1.0, "Dog")]  # the 20-25 run never passes 0.5


def test_tag_gate_drops_classes_the_clip_head_rejects():
    p = _probs(Dog=[(5, 12, 0.9)], Cat=[(20, 30, 0.9)])
    clip = np.zeros(len(CLASSES))
    clip[CLASSES.index("Dog")] = 0.8
    post = PostConfig(median_seconds=0.0, tag_gate=True)
    events, tags = postprocess(["x.wav"], clip[None], p[None], FS, post)
    assert events["x.wav"] == [(0.5, 1.2, "Dog")] and tags["x.wav"] == ["Dog"]


def test_merge_gap_and_min_length():
    p = _probs(Dog=[(5, 8, 0.9), (9, 12, 0.9), (30, 31, 0.9)])
    post = PostConfig(median_seconds=0.0, tag_gate=False, merge_gap_seconds=0.15, min_event_seconds=0.2)
    assert to_events(decide(p, p.max(0), FS, post), FS, post) == [(0.5, 1.2, "Dog")]


def test_per_class_thresholds():
    post = PostConfig(thresholds=tuple(0.1 * (i + 1) for i in range(len(CLASSES))))
    assert class_thresholds(post)[2] == pytest.approx(0.3)
    with pytest.raises(UserError, match="give one per class"):
        class_thresholds(PostConfig(thresholds=(0.5, 0.5)))


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
