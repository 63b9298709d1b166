"""Active-learning benchmark: selection strategies against random sampling on AI4I 2020."""
