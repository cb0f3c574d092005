"""The ten scenes of DCASE2021 task 1B (TAU Urban Audio-Visual Scenes 2021), in the challenge's order, and the
dataset's file names."""

from __future__ import annotations

SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
          "street_pedestrian", "street_traffic", "tram")  # fmt: skip
SETUP_DIR = "evaluation_setup"
FOLDS = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}
HEADER = ("filename_audio", "filename_video", "scene_label", "identifier")
MODALITIES = ("audio", "video")
