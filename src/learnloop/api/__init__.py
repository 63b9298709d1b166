"""The HTTP API (FastAPI). Build it with :func:`learnloop.api.app.create_app`."""
