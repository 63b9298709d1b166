"""Response-cache backends (the in-process one is ``learnloop.core.cache``)."""
