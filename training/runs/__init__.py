"""The train stage as MLflow runs: one candidate per backbone (or sweep point), tracked and compared."""
