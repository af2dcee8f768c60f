"""API tokens: random bearer tokens, stored only as HMAC-SHA256(secret_key, token), each with a
role (:data:`~server.core.roles.TOKEN_ROLES`). Shared by the API and ``kmine token``."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from kmine.text import shown
from server.core.errors import BadInput
from server.core.models import ApiToken, utcnow
from server.core.roles import TOKEN_ROLES
from server.core.settings import Settings

# ``last_used_at`` is written at most this often per token, not on every request.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_token(token: str, settings: Settings) -> str:
    return hmac.new(settings.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_token(session: Session, settings: Settings, name: str, role: str = "user",
                 created_by: ApiToken | None = None) -> tuple[ApiToken, str]:
    """A new token: its row and the token itself, which is shown once and stored nowhere."""
    if role not in TOKEN_ROLES:
        raise BadInput(f"unknown role {shown(role)}: one of {', '.join(TOKEN_ROLES)}")
    token = "km_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(token, settings), role=role,
                   created_by=None if created_by is None else created_by.id)
    session.add(row)
    session.flush()
    return row, token


def find_token(session: Session, settings: Settings, token: str) -> ApiToken | None:
    """The row of ``token`` (revoked or not), or None."""
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token, settings)))


def mark_used(session: Session, token: ApiToken, now: datetime | None = None) -> None:
    """Record that ``token`` was used now, when its ``last_used_at`` is over a minute old: one
    small committed write per token and minute (the condition in the UPDATE keeps concurrent
    requests from writing twice)."""
    now = now or utcnow()
    last = token.last_used_at
    if last is not None and (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) > now - LAST_USED_EVERY:
        return
    session.execute(update(ApiToken).where(ApiToken.id == token.id,
                                           or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY))
                    .values(last_used_at=now).execution_options(synchronize_session=False))
    session.commit()
    token.last_used_at = now


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke token ``token_id`` (404 when there is none, 409 when it is already revoked or is
    the last admin token that is not)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise BadInput(f"token {token_id} not found", 404)
    if token.role == "admin":
        # Lock every live admin row, in one order, so that two revocations at once cannot each
        # see the other's token left; then read this one again as it now stands.
        admins = session.scalars(select(ApiToken.id).where(ApiToken.role == "admin", ApiToken.revoked_at.is_(None))
                                 .order_by(ApiToken.id).with_for_update()).all()
        session.refresh(token)
        if token.revoked_at is None and len(admins) <= 1:
            raise BadInput(f"token {token_id} is the last admin token; create another admin token first", 409)
    if token.revoked_at is not None:
        raise BadInput(f"token {token_id} is already revoked", 409)
    token.revoked_at = utcnow()
    session.flush()
    return token


def ensure_admin_token(session: Session, settings: Settings) -> str | None:
    """On first start (no token at all) create an admin token and write it, readable by the
    owner only, to ``<data_dir>/admin_token``. Returns the token when one was created."""
    if session.scalar(select(ApiToken.id).limit(1)) is not None:
        return None
    _, token = create_token(session, settings, "admin", role="admin")
    path = settings.admin_token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
