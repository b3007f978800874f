"""Accuracy on labelled photos: evaluate, metrics, plots and the batch embedder they use."""
