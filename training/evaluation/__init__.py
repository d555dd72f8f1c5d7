"""Scoring: test metrics and plots, and the gate's rescoring of candidate and champion."""
