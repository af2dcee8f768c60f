"""API tokens: an admin creates, lists and revokes them; any token may ask who it is.
Which role may call which of these is decided in :mod:`server.api.permissions`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from server.api.deps import CurrentUser, SessionDep, SettingsDep
from server.api.schemas.common import MAX_ID, errors
from server.api.schemas.tokens import TokenCreated, TokenMe, TokenOut, TokenRequest
from server.core import security
from server.core.models import ApiToken

router = APIRouter(prefix="/tokens", tags=["tokens"])

TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="token id", examples=[1])]


def token_out(row: ApiToken) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, role=row.role, created_at=row.created_at, created_by=row.created_by,
                    last_used_at=row.last_used_at, revoked=row.revoked_at is not None, revoked_at=row.revoked_at)


@router.post("", status_code=201, response_model=TokenCreated, summary="Create a token (admin); shown this once")
def create_token(body: TokenRequest, session: SessionDep, settings: SettingsDep, user: CurrentUser):
    row, token = security.create_token(session, settings, body.name, body.role, created_by=user)
    session.commit()
    return TokenCreated(**token_out(row).model_dump(), token=token)


@router.get("", response_model=list[TokenOut], summary="List tokens, revoked ones too (admin); never the tokens")
def list_tokens(session: SessionDep):
    return [token_out(row) for row in security.list_tokens(session)]


@router.get("/me", response_model=TokenMe, summary="The calling token's name and role")
def me(user: CurrentUser):
    return TokenMe.model_validate(user)


@router.delete("/{token_id}", status_code=204, response_class=Response, responses=errors(404, 409),
               summary="Revoke a token (admin): it gets 401 from then on",
               description="409 when it is already revoked, or when it is the last admin token that is not.")
def revoke_token(token_id: TokenId, session: SessionDep):
    security.revoke_token(session, token_id)
    session.commit()
    return Response(status_code=204)
