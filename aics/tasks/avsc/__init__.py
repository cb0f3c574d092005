"""The audio-visual scene classification lab (DCASE2021 task 1B): single modalities and their fusions."""
