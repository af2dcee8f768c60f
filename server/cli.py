"""The ``kmine`` console script: the composition root.

It takes the engine's commands (``kmine.cli``: split, train, predict, …) and adds the two
that start services: ``serve`` (the API, and in embedded mode a local worker, the demo and the
web UI) and ``worker``; and ``token`` (create, list, revoke API tokens in the configured database). Only this module knows all of ``kmine``, ``server``, ``worker`` and
``webui``; each of them knows less (``tests/test_architecture.py`` holds them to it).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from kmine.cli import _choices, _fail, app
from server.core.devices import JOB_DEVICES
from server.core.roles import TOKEN_ROLES
from server.services.export_formats import EXPORT_FORMATS

if TYPE_CHECKING:
    class ExportFormat(str, Enum): ...  # built from EXPORT_FORMATS below, which a type checker cannot read
else:
    ExportFormat = _choices("ExportFormat", EXPORT_FORMATS)

__all__ = ["app", "main"]

if TYPE_CHECKING:
    class Role(str, Enum): ...  # built from the one list of roles, which a type checker cannot read
    class Device(str, Enum): ...
else:
    Role = _choices("Role", TOKEN_ROLES)
    Device = _choices("Device", JOB_DEVICES)
token_app = typer.Typer(help="API tokens in the configured database (KMINE_DATABASE_URL, KMINE_SECRET_KEY, as "
                             "`serve` reads them): create, list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker", help="Also start a local worker process (default: in embedded mode).")] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Import the demo dataset (../shared/data/covid-qu-ex-sample) on first start and train a first small model.")] = True,
    migrate: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Bring the database to the current schema first (alembic upgrade head).")] = True,
    ui: Annotated[bool | None, typer.Option("--ui/--no-ui", help="Also serve the web UI at /ui, where each visitor signs in with an API token (default: in embedded mode only; or run `python -m webui` on its own).")] = None,
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
    """The web UI at /ui: an HTTP client of this same server, behind a sign-in page where each
    visitor pastes their own API token. A one-time link signs the person who started the server
    in with the admin token (as Jupyter's does), so the first visit needs no copying."""
    import contextlib
    import io
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from webui.app import mount
    except ImportError as err:
        typer.echo(f"kmine: web UI not served ({err}); the API is unaffected")
        return api
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    # the sign-in page is public: it names the file, never where the server keeps it
    hint = ("First time here? The first admin token is in the file `admin_token` in the server's data folder "
            "(KMINE_DATA_DIR), or open the one-time sign-in link `kmine serve` printed. An admin makes a token per "
            "person with "
            "`kmine token create NAME --role user`.")
    # gradio 5.50's mount_gradio_app prints a bare "new /ui" (a debug print left in it): keep that
    # out of the log, and pass on anything else it prints.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        sessions = mount(api, f"http://{local}:{port}", "/ui", hint)
    for line in printed.getvalue().splitlines():
        if line != "new /ui":
            typer.echo(line)
    api.state.ui_mounted = True
    typer.echo(f"kmine: web UI on http://{host}:{port}/ui (sign in with an API token)")
    if settings.admin_token_file.is_file():
        code = sessions.one_time_code(settings.admin_token_file.read_text().strip())
        typer.echo(f"kmine: sign in as admin once, within the hour: http://{local}:{port}/ui/sign-in?code={code}")
    return api


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    hostname: Annotated[str | None, typer.Option(help="Worker name (default: celery's).")] = None,
    queue: Annotated[Device, typer.Option(help="Also take the jobs that ask for this device (`gpu`: one worker "
                                               "per GPU; `any`: only jobs for any device).")] = Device["any"],
):
    """Run a job worker: one job at a time (start one per GPU, e.g. with CUDA_VISIBLE_DEVICES).
    It reads the same KMINE_* settings as the server (database, broker, data directory)."""
    from server.core.settings import SettingsError, get_settings
    from worker.main import run_worker

    try:
        run_worker(get_settings(), loglevel, hostname, queue.value)
    except SettingsError as err:
        _fail(str(err))


def _token_session():
    """A session on the configured database, for the ``token`` commands; fails readably."""
    from server.core.db import session_scope
    from server.core.settings import SettingsError, get_settings

    try:
        settings = get_settings()
        settings.check_production()
    except SettingsError as err:
        _fail(str(err))
    return settings, session_scope(settings)


def _database_failed(err: Exception) -> NoReturn:
    first = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
    _fail(f"the database cannot be used ({first}); bring it to the current schema with `alembic upgrade head` "
          "or one start of `kmine serve`", code=1)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what will use it, e.g. 'gpu-worker-1'.")],
    role: Annotated[Role, typer.Option(help="admin: everything; user: all but managing tokens and deleting datasets; "
                                            "worker: only what a job worker needs.")] = Role["user"],
):
    """Create a token and print it (on stdout, alone): it is shown this once, the database keeps only its hash."""
    from sqlalchemy.exc import SQLAlchemyError

    from server.core.errors import BadInput
    from server.core.security import create_token

    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        _fail("the name must be 1 to 200 characters, without control characters")
    settings, scope = _token_session()
    try:
        with scope as session:
            row, token = create_token(session, settings, name, role.value)
            summary = f"kmine: created token {row.id} {row.name!r} ({row.role}); it is shown only this once"
    except BadInput as err:
        _fail(str(err))
    except SQLAlchemyError as err:
        _database_failed(err)
    typer.echo(summary, err=True)
    typer.echo(token)


@token_app.command("list")
def token_list():
    """List the tokens, revoked ones too: id, name, role, when created, last used and revoked (never the tokens)."""
    from sqlalchemy.exc import SQLAlchemyError

    from server.core.security import list_tokens

    def when(moment) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    _, scope = _token_session()
    try:
        with scope as session:
            rows = [(str(t.id), t.name, t.role, when(t.created_at), when(t.last_used_at), when(t.revoked_at))
                    for t in list_tokens(session)]
    except SQLAlchemyError as err:
        _database_failed(err)
    rows.insert(0, ("id", "name", "role", "created", "last used", "revoked"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see `kmine token list`).", min=1)]):
    """Revoke a token: it is refused (401) from then on. The last admin token cannot be revoked."""
    from sqlalchemy.exc import SQLAlchemyError

    from server.core.errors import BadInput
    from server.core.security import revoke_token

    _, scope = _token_session()
    try:
        with scope as session:
            row = revoke_token(session, token_id)
            done = f"kmine: revoked token {row.id} {row.name!r} ({row.role})"
    except BadInput as err:
        _fail(str(err), code=1)
    except SQLAlchemyError as err:
        _database_failed(err)
    typer.echo(done)


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
    from server.core.storage import local_store
    from server.services.export import write_export

    partial = out.with_name(f".{out.name}.part")  # a failed export leaves no half-written file at --out
    try:
        settings = get_settings()
        with session_scope(settings) as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None:
                _fail(f"dataset {dataset_id} not found", 1)
            write_export(session, local_store(settings), dataset, format.value, partial, include_images)
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
