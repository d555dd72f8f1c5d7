"""The prepare, train and publish stages as a plain library (no Prefect import).

Modules: ``split`` (the split file), ``features`` (the frozen base and cached features), ``embed`` (the
feature cache), ``fit`` (head training), ``finetune``, ``candidate`` (one trained and scored model),
``evaluate`` (metrics and plots), ``baselines``, ``track`` (what a run records in MLflow), ``train`` (the
stage entry point), ``sweep`` (a grid of candidates), ``gate`` and ``publish`` (the registry).
"""
