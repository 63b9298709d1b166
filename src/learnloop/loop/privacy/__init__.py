"""Privacy at ingestion and in datasets: PII scrubbing, k-anonymity and l-diversity,
differential privacy."""
