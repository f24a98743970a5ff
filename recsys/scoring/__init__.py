"""Scoring and ranking with a saved model: the scorer, text vectors, ONNX Runtime, catalogs and bulk scoring."""
