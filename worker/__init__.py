"""The Celery worker: turns a queued job into a kmine run and records what it produces."""
