"""Liveness and readiness; no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from server.api.deps import SessionDep, SettingsDep
from server.api.errors import one_line
from server.api.schemas.health import Live, NotReady, Ready
from server.core.queue import broker_ok

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Live, summary="The process answers")
async def live() -> Live:  # on the event loop itself: it answers even when every pool thread waits
    return Live(status="ok")


@router.get("/ready", response_model=Ready, summary="Database, broker and weights are usable (503 otherwise)",
            responses={503: {"model": NotReady, "description": "Something the server needs is not usable"}})
def ready(session: SessionDep, settings: SettingsDep):
    from kmine.weights import KNOWN_WEIGHTS

    checks = {}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:
        checks["database"] = one_line(f"{err.__class__.__name__}: {err}", 500)
    _, message = broker_ok(settings)
    checks["broker"] = one_line(message, 500)
    weights = settings.resolved_weights_dir()
    needed = [KNOWN_WEIGHTS[k].filename for k in ("mobile_sam", "efficientnet_lite0")]
    missing = [f for f in needed if not (weights / f).is_file()]
    checks["weights"] = "ok" if not missing else f"missing in {weights}: {', '.join(missing)}"
    failing = [name for name, state in checks.items() if state != "ok"]
    if not failing:
        return Ready(status="ready", checks=checks)
    body = NotReady(detail=f"not ready: {'; '.join(f'{name}: {checks[name]}' for name in failing)}",
                    status="not ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503)
