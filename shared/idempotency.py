"""Idempotency keys: a retried POST with the same `Idempotency-Key` returns the first answer, changes nothing.

Kiosks and window terminals retry on flaky networks. The key row is inserted in the request's own
transaction, so a concurrent retry waits on the unique index until the first attempt commits (then
replays it) or rolls back (then runs itself). The same key with a different body is a 422.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shared import clock
from shared.auth import OptionalPrincipal
from shared.db import SessionDep
from shared.errors import AppError
from shared.tables import idempotency_keys

HEADER = "Idempotency-Key"


class Idempotency:
    def __init__(self, session: Any, scope: str, key: str | None, request_hash: bytes) -> None:
        self.session = session
        self.scope = scope
        self.key = key
        self.request_hash = request_hash
        self._claimed = False

    async def replay(self) -> JSONResponse | None:
        """The stored answer of an earlier attempt with this key, or None (and the key is now ours)."""
        if self.key is None:
            return None
        claim = (
            insert(idempotency_keys)
            .values(scope=self.scope, key=self.key, request_hash=self.request_hash, status_code=0,
                    body={}, created_at=clock.now())
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
        if (await self.session.execute(claim)).first() is not None:
            self._claimed = True
            return None
        row = (await self.session.execute(
            select(idempotency_keys).where(idempotency_keys.c.scope == self.scope,
                                           idempotency_keys.c.key == self.key)
        )).one()
        if row.request_hash != self.request_hash:
            raise AppError("this Idempotency-Key was used with a different request body",
                           field=HEADER, status=422, code="idempotency_key_reused")
        return JSONResponse(row.body, status_code=row.status_code, headers={"Idempotent-Replayed": "true"})

    async def remember(self, status_code: int, body: BaseModel | Any) -> JSONResponse:
        """Store the answer with the key (same transaction as the change) and return it."""
        content = jsonable_encoder(body)
        if self.key is not None and self._claimed:
            await self.session.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.scope == self.scope, idempotency_keys.c.key == self.key)
                .values(status_code=status_code, body=content)
            )
        return JSONResponse(content, status_code=status_code)


async def _idempotency(request: Request, session: SessionDep, principal: OptionalPrincipal) -> Idempotency:
    key = request.headers.get(HEADER)
    if key is not None and not (1 <= len(key) <= 200):
        raise AppError("Idempotency-Key must be 1 to 200 characters", field=HEADER, status=400,
                       code="bad_idempotency_key")
    subject = principal.subject if principal else "anonymous"
    scope = f"{subject}:{request.method}:{request.url.path}"[:300]
    body_hash = hashlib.sha256(request.url.query.encode() + b"\0" + await request.body()).digest()
    return Idempotency(session, scope, key, body_hash)


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
