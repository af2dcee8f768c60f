"""The ``kmine`` console script: the composition root.

It takes the engine's commands (``kmine.cli``: split, train, predict, …) and adds the two
that start services: ``serve`` (the API, and in embedded mode a local worker, the demo and the
web UI) and ``worker``. Only this module knows all of ``kmine``, ``server``, ``worker`` and
``webui``; each of them knows less (``tests/test_architecture.py`` holds them to it).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kmine.cli import _choices, _fail, app
from server.services.export_formats import EXPORT_FORMATS

if TYPE_CHECKING:
    class ExportFormat(str, Enum): ...  # built from EXPORT_FORMATS below, which a type checker cannot read
else:
    ExportFormat = _choices("ExportFormat", EXPORT_FORMATS)

__all__ = ["app", "main"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker", help="Also start a local worker process (default: in embedded mode).")] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Import the demo dataset (../shared/data/covid-qu-ex-sample) on first start and train a first small model.")] = True,
    migrate: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Bring the database to the current schema first (alembic upgrade head).")] = True,
    ui: Annotated[bool | None, typer.Option("--ui/--no-ui", help="Also serve the web UI at /ui, acting with the admin token (default: in embedded mode only; in production run `python -m webui` behind your own access control).")] = None,
):
    """Start the HTTP API (docs at /docs). Embedded mode (default): SQLite, a SQLite-backed
    queue and a local worker in ./kmine-data (KMINE_DATA_DIR); production: set KMINE_MODE,
    KMINE_DATABASE_URL, KMINE_BROKER_URL, KMINE_SECRET_KEY and run `kmine worker` elsewhere."""
    from server.core.settings import SettingsError, get_settings
    from server.serve import run

    settings = get_settings()
    mount = _mount_ui if (ui if ui is not None else settings.mode == "embedded") else None
    try:
        run(settings, host, port, worker=worker, demo=demo, migrate=migrate, ui=mount, echo=typer.echo)
    except SettingsError as err:
        _fail(str(err))


def _mount_ui(api, settings, host: str, port: int):
    """The web UI at /ui: an HTTP client of this same server, authenticated with the admin token."""
    import contextlib
    import io
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr

        from webui.app import build_ui
    except ImportError as err:
        typer.echo(f"kmine: web UI not served ({err}); the API is unaffected")
        return api
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    blocks = build_ui(f"http://{local}:{port}", settings.admin_token_file.read_text().strip())
    # gradio 5.50's mount_gradio_app prints a bare "new /ui" (a debug print left in it): keep that
    # out of the log, and pass on anything else it prints.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        api = gr.mount_gradio_app(api, blocks, path="/ui", show_api=False, ssr_mode=False)
    for line in printed.getvalue().splitlines():
        if line != "new /ui":
            typer.echo(line)
    api.state.ui_mounted = True
    typer.echo(f"kmine: web UI on http://{host}:{port}/ui")
    return api


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    hostname: Annotated[str | None, typer.Option(help="Worker name (default: celery's).")] = None,
):
    """Run a job worker: one job at a time (start one per GPU, e.g. with CUDA_VISIBLE_DEVICES).
    It reads the same KMINE_* settings as the server (database, broker, data directory)."""
    from server.core.settings import SettingsError, get_settings
    from worker.main import run_worker

    try:
        run_worker(get_settings(), loglevel, hostname)
    except SettingsError as err:
        _fail(str(err))


@app.command("export")
def export_labels(
    dataset_id: Annotated[int, typer.Argument(help="The dataset's id (as GET /api/v1/datasets lists it).", min=1)],
    out: Annotated[Path, typer.Option(help="File to write (a .zip for masks, a .json for coco).")],
    format: Annotated[ExportFormat, typer.Option(help="masks: a zip of masks/<stem>.png and labels.json; coco: COCO JSON (RLE).")] = ExportFormat["masks"],
    include_images: Annotated[bool, typer.Option(help="masks format: also pack images/ as uploaded.")] = False,
):
    """Export a dataset's current labels, as GET /api/v1/datasets/{id}/export does, straight
    from the installation's database and file store: it reads the same KMINE_* settings as the
    server (run it where the server's data directory or database is reachable)."""
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from server.core.db import session_scope
    from server.core.models import Dataset
    from server.core.settings import SettingsError, get_settings
    from server.core.storage import open_store
    from server.services.export import write_export

    partial = out.with_name(f".{out.name}.part")  # a failed export leaves no half-written file at --out
    try:
        settings = get_settings()
        with session_scope(settings) as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None:
                _fail(f"dataset {dataset_id} not found", 1)
            write_export(session, open_store(settings), dataset, format.value, partial, include_images)
        os.replace(partial, out)
    except SettingsError as err:
        _fail(str(err))
    except SQLAlchemyError as err:  # e.g. the database is unreachable or not migrated yet
        _fail(f"cannot read the database: {err.__class__.__name__}", 1)
    except OSError as err:
        _fail(f"cannot write {out}: {err.strerror or err}", 1)
    finally:
        partial.unlink(missing_ok=True)
    typer.echo(f"→ {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
