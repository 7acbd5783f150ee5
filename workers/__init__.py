"""songqueue workers: the Celery app, its tasks, providers, storage."""
