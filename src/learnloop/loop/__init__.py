"""The learning loop: training, tuning, evaluation, monitoring, policy."""
