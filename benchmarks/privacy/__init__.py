"""Privacy benchmarks: PII detection precision and recall on a labelled set."""
