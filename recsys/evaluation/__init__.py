"""Evaluating a model: the metrics, the baselines, the evaluator, its verdict in plain words and its plots."""
