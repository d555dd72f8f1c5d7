"""The prepare, train and publish stages as a plain library (no Prefect import).

Modules: ``split`` (80/20 split file), ``images`` (decode + resize, shared with serving), ``weights``
(which ResNet50 weights), ``model`` (network), ``embed`` (feature cache and runtimes), ``fit`` (head
training), ``evaluate`` (metrics and plots), ``track`` (MLflow), ``train`` (the stage entry point).
"""
