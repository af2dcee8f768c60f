"""``python -m webui --api-url http://host:8000``: the web UI as its own process, against any
kmine server (local or remote), at http://HOST:PORT/ui. Each visitor signs in with their own
API token (admin or user); the process itself holds none."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webui", description=__doc__)
    parser.add_argument("--api-url", default=os.environ.get("KMINE_API_URL", "http://127.0.0.1:8000"),
                        help="the kmine server (default: $KMINE_API_URL or http://127.0.0.1:8000)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from webui.app import mount

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.get("/", include_in_schema=False)(lambda: RedirectResponse("/ui/"))
    mount(app, args.api_url, "/ui")
    print(f"webui: on http://{args.host}:{args.port}/ui, against {args.api_url}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
