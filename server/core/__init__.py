"""The layer the API and the worker share: settings, database, models, file store, jobs."""
