"""Liveness and readiness; no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from server.api.deps import SessionDep, SettingsDep
from server.core.queue import broker_ok

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The process answers")
def live() -> dict:
    return {"status": "ok"}


@router.get("/ready", summary="Database, broker and weights are usable (503 otherwise)")
def ready(session: SessionDep, settings: SettingsDep):
    checks = {}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:
        checks["database"] = f"{err.__class__.__name__}: {err}"
    ok, message = broker_ok(settings)
    checks["broker"] = message
    weights = settings.resolved_weights_dir()
    from kmine.weights import KNOWN_WEIGHTS

    needed = [KNOWN_WEIGHTS[k].filename for k in ("mobile_sam", "efficientnet_lite0")]
    missing = [f for f in needed if not (weights / f).is_file()]
    checks["weights"] = "ok" if not missing else f"missing in {weights}: {', '.join(missing)}"
    ready_ = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready_ else "not ready", "checks": checks}, status_code=200 if ready_ else 503)
