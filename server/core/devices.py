"""The devices a job may ask for (the one list; it imports nothing, so ``kmine worker --help``
can offer it without loading the database's libraries): ``any`` worker, or only those started
with ``kmine worker --queue gpu`` (or ``cpu``). Queues follow in ``server.core.queue``."""

JOB_DEVICES = ("any", "gpu", "cpu")
