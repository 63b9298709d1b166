"""Privacy at ingestion and in datasets: PII scrubbing, k-anonymity/l-diversity, differential privacy."""
