"""Benchmark jobs: what every benchmark shares (common), one module per kind of model
(causal_lm, encoder_classifier), and the entry point that picks between them (dispatch).

Imports run one way only: dispatch -> causal_lm / encoder_classifier -> common."""
