"""kmine's HTTP server: FastAPI app over the kmine engine, state in a SQL database."""
