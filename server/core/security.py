"""API tokens: random bearer tokens, stored only as HMAC-SHA256(secret_key, token)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.models import ApiToken
from server.core.settings import Settings


def hash_token(token: str, settings: Settings) -> str:
    return hmac.new(settings.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_token(session: Session, settings: Settings, name: str, is_admin: bool = False) -> str:
    token = "km_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=hash_token(token, settings), is_admin=is_admin))
    session.flush()
    return token


def find_token(session: Session, settings: Settings, token: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token, settings)))


def ensure_admin_token(session: Session, settings: Settings) -> str | None:
    """On first start (no token at all) create an admin token and write it, readable by the
    owner only, to ``<data_dir>/admin_token``. Returns the token when one was created."""
    if session.scalar(select(ApiToken.id).limit(1)) is not None:
        return None
    token = create_token(session, settings, "admin", is_admin=True)
    path = settings.admin_token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
