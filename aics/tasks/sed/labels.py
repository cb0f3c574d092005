"""The DCASE2018 task 4 classes and on-disk layout, shared by the generator, the readers and the scorer."""

from __future__ import annotations

# The ten domestic sound event classes, in the order of the model's outputs.
CLASSES = (
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
)

# split -> audio folder and metadata file, relative to the dataset root (the layout of the task's
# `dataset/` folder). weak: clip tags only; unlabel_in_domain: no labels; test and eval: strong labels.
AUDIO_DIRS = {
    "weak": "audio/train/weak",
    "unlabel_in_domain": "audio/train/unlabel_in_domain",
    "test": "audio/test",
    "eval": "audio/eval",
}
METADATA = {
    "weak": "metadata/train/weak.csv",
    "unlabel_in_domain": "metadata/train/unlabel_in_domain.csv",
    "test": "metadata/test/test.csv",
    "eval": "metadata/eval/eval.csv",
}
# Tab-separated headers of the metadata files.
WEAK_HEADER = ("filename", "event_labels")
UNLABELLED_HEADER = ("filename",)
STRONG_HEADER = ("filename", "onset", "offset", "event_label")
