"""SQuAD v1.1 extractive question answering with BERT: import, fine-tune, distil, predict, score."""
