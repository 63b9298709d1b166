"""Drift benchmark: learnloop's drift engine against Evidently on the same parquet files."""
