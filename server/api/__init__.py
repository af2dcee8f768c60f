"""HTTP layer: the FastAPI app, its dependencies and routes."""
