"""Backends behind the protocols of ``learnloop.core``."""
