"""``python -m webui --api-url http://host:8000 --token-file kmine-data/admin_token``: the web UI
as its own process, against any kmine server (local or remote)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webui", description=__doc__)
    parser.add_argument("--api-url", default=os.environ.get("KMINE_API_URL", "http://127.0.0.1:8000"),
                        help="the kmine server (default: $KMINE_API_URL or http://127.0.0.1:8000)")
    parser.add_argument("--token-file", type=Path, help="file holding the API token (default: $KMINE_TOKEN)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    if args.token_file:
        try:
            token = args.token_file.read_text().strip()
        except OSError as err:
            sys.exit(f"webui: cannot read the token file: {err}")
    else:
        token = os.environ.get("KMINE_TOKEN", "")
    if not token:
        sys.exit("webui: no API token: pass --token-file (e.g. kmine-data/admin_token) or set KMINE_TOKEN")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from webui.app import build_ui

    build_ui(args.api_url, token).queue().launch(server_name=args.host, server_port=args.port, show_api=False)


if __name__ == "__main__":
    main()
