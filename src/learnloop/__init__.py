"""learnloop — a self-hosted continuous-learning ML service.

``import learnloop`` is cheap; build the services with :func:`learnloop.container.Container`.
"""

__version__ = "0.1.0"
