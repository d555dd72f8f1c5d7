"""Fitting on stored features: the head (streamed, resumable), fine-tuning, baselines, k-fold."""
