"""The speech lab: offline speech corpora, DFCNN + CTC recognition, and a WER judge for synthesis."""
