"""``kmine serve``: prepare the installation, start the API (and, embedded, a local worker
process and the demo), stop the worker with the API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from fastapi import FastAPI

from server.core.settings import Settings

UiMount = Callable[[FastAPI, Settings, str, int], FastAPI]


def split_threads(api_threads: int = 0) -> tuple[int, int]:
    """Torch threads for the API and for its local worker on this machine's cores. Both busy at
    once (a training job beside predictions) with a thread per core each, OpenMP threads spin
    against each other: a 0.26 CPU-s prediction took 4–8 s. So they share the cores: half each
    by default, or ``api_threads`` (``KMINE_THREADS``) for the API and the rest for the worker."""
    from server.core.runtime import cores

    n = cores()
    api = api_threads or max(1, n // 2)
    return api, max(1, n - api)


def run(settings: Settings, host: str, port: int, *, worker: bool | None = None, demo: bool = True,
        migrate: bool = True, ui: UiMount | None = None, echo=print) -> None:
    """Serve until stopped. ``worker``: start a local worker (default: in embedded mode);
    ``ui``: mounts the web UI on the app (the composition root passes it, or None)."""
    import uvicorn

    from server.app import create_app
    from server.bootstrap import prepare, start_demo

    prepare(settings, migrate=migrate, echo=echo)
    embedded = settings.mode == "embedded"
    if demo and embedded:
        start_demo(settings, echo=echo)
    child = None
    if worker if worker is not None else embedded:
        # Its own process (``python -m worker``): training must not share the API's interpreter.
        settings.threads, worker_threads = split_threads(settings.threads)
        env = {**os.environ, "KMINE_THREADS": str(worker_threads), "OMP_NUM_THREADS": str(worker_threads)}
        child = subprocess.Popen([sys.executable, "-m", "worker"], env=env)
        echo(f"kmine: local worker started (pid {child.pid}); torch threads: API {settings.threads}, "
             f"worker {worker_threads}")
    echo(f"kmine: API on http://{host}:{port} (docs: http://{host}:{port}/docs), data in {settings.data_dir}")
    # uvicorn re-raises the SIGTERM it handled once it has shut down: turn it into SystemExit so
    # the local worker below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = create_app(settings, prepare=False)
    if ui is not None:
        api = ui(api, settings, host, port)
    try:
        uvicorn.run(api, host=host, port=port, log_level="info")
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
