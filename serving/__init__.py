"""The prediction endpoint as a plain library: load the registered model, answer HTTP with Flask/gunicorn.

``serving.app.create_app`` is the application factory; ``serving.server`` runs it under gunicorn.
"""
