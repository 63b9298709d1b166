"""Model registry backends (MLflow)."""
