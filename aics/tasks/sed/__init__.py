"""Weakly labelled sound event detection (DCASE2018 task 4): a CRNN on log-mel, trained on clip tags."""
