"""aics: AI-systems course labs, end to end (data, features, training, decoding, scores)."""

__version__ = "0.1.0"
