"""Serving benchmark: learnloop vs MLServer vs BentoML on one scikit-learn model (README.md)."""
