"""One error type and one renderer: every 4xx/5xx is RFC 9457 application/problem+json.

Business rules raise `AppError` subclasses with a stable machine `code`; payload shape errors are 422
with the offending field named; nothing a client sends can produce a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logging import correlation_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("shared.errors")

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


class AppError(Exception):
    """Base of every error a client may see: an HTTP status, a stable code, a human detail."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, status: int | None = None,
                 code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.extra = extra


class BadRequest(AppError):
    status, code = 400, "bad_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class ServiceUnavailable(AppError):
    status, code = 503, "unavailable"


def problem(status: int, code: str, detail: str, *, instance: str | None = None,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://hall.example/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    cid = correlation_id.get()
    if cid:
        body["correlation_id"] = cid
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        errors = [{"field": exc.field, "reason": exc.detail}] if exc.field else None
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.code, exc.detail, instance=request.url.path, errors=errors,
                       headers=headers, field=exc.field, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(e.get("loc", ())), "location": (e.get("loc") or ["body"])[0],
                   "reason": str(e.get("msg", "invalid")), "type": e.get("type")} for e in exc.errors()]
        field: str | None = errors[0]["field"] if errors else None
        reason: str = errors[0]["reason"] if errors else "invalid request"
        detail = f"{field}: {reason}" if field else reason
        return problem(422, "validation_failed", detail, instance=request.url.path, errors=errors,
                       field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem(exc.status_code, code, detail, instance=request.url.path,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_exhausted(request: Request, exc: SQLAlchemyTimeoutError) -> JSONResponse:
        # every pooled connection stayed busy for the pool's whole timeout: the service is overloaded, not
        # broken, and the request changed nothing; a client retries (with its Idempotency-Key) after a pause
        log.warning("database pool exhausted", extra={"event": "pool_timeout", "path": request.url.path})
        return problem(503, "busy", "the service is busy: try again in a moment (服务繁忙，请稍后重试)",
                       instance=request.url.path, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal_error", "the server failed to handle the request",
                       instance=request.url.path)
