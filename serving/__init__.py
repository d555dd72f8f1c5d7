"""The prediction endpoint as a plain library: load the registered model, answer HTTP with Flask/gunicorn."""
