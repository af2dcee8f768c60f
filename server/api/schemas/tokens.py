"""API tokens: what an admin creates and lists (never the token itself after its creation,
never its hash), and what any token learns about itself."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.api.schemas.choices import TokenRole
from server.api.schemas.common import Answer, IsoDatetime

TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                             pattern=r"^[^\x00-\x1f\x7f]+$")]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: TokenName = Field(description="who or what will use it, e.g. 'annotator anna' or 'gpu-worker-1'",
                            examples=["annotator anna"])
    role: TokenRole = Field(description="admin: everything; user: all but managing tokens and deleting datasets; "
                                        "worker: only what a job worker needs", examples=["user"])


class TokenMe(Answer):
    id: int
    name: str
    role: TokenRole


class TokenOut(TokenMe):
    created_at: IsoDatetime
    created_by: int | None = Field(description="the token that created it through the API; null for the first admin "
                                               "token and those made with `kmine token create`")
    last_used_at: IsoDatetime | None = Field(description="when it was last used, to the minute; null: never")
    revoked: bool
    revoked_at: IsoDatetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself, to send as `Authorization: Bearer <token>`: shown this once, "
                                   "the server keeps only a hash of it")
