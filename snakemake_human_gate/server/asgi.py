"""What sits between HTTP and the gate operations: reading the body within a limit,
the authentication dependency, security headers, and refusals as answers."""

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidInput
from ..signatures import Target
from ..text import scrub
from .security import Caller, Guard, Refused, known_id

T = TypeVar("T")
logger = logging.getLogger(__name__)
DRAIN_FACTOR = 16  # an oversized body is read (and dropped) up to this many times the limit
DASHBOARD_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # link tokens are in URLs: never pass them on
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": DASHBOARD_POLICY,
}
bearer = HTTPBearer(auto_error=False, description="a token from 'snakemake-gate token create'")


def target_of(request: Request) -> Target:
    """What a signature of this request must cover: its method, its path as sent
    (percent-encoded) and its query."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    return Target(request.method, raw.decode("latin-1"), query.decode("latin-1"))


def client_of(request: Request) -> str:
    """The client's address (the proxy's, unless the server trusts its forwarded headers)."""
    return request.client.host if request.client else "unknown"


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes.

    A body a little over the limit is still read (and dropped) so that the client sees
    the 413 rather than a reset connection; a much larger one is not.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit * DRAIN_FACTOR:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * DRAIN_FACTOR:
            break
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


class Authenticate:
    """The dependency that names the caller (bearer token or signed request) or refuses."""

    def __init__(self, guard: Guard, max_body: int) -> None:
        self.guard = guard
        self.max_body = max_body

    async def __call__(self, request: Request, _: Annotated[Any, Depends(bearer)]) -> Caller:
        body = await read_body(request, self.max_body)
        return await run_in_threadpool(self._authenticate, request, body)

    async def then(self, request: Request, work: Callable[[Caller, bytes], T]) -> T:
        """Authenticate, then ``work(caller, body)``, in one trip to a worker thread (the
        decision routes: the fewer hand-overs between threads, the more decisions/s)."""
        body = await read_body(request, self.max_body)

        def both() -> T:
            return work(self._authenticate(request, body), body or b"")

        return await run_in_threadpool(both)

    def _authenticate(self, request: Request, body: bytes | None) -> Caller:
        caller = self.guard.authenticate(
            request.headers, body, client_of(request), target_of(request)
        )
        request.state.caller = caller  # for refusals audited after authentication
        return caller


class SafeJSONResponse(JSONResponse):
    """JSON as UTF-8; a lone surrogate in the content (text stored by an earlier version,
    which could not be encoded) is sent as U+FFFD instead of failing the answer."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return super().render(scrub(content))


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Any:
    return SafeJSONResponse({"detail": detail, "reason": code}, status, headers=headers)


async def on_refused(request: Request, error: Exception) -> Any:
    if not isinstance(error, Refused):
        raise error
    return problem(error.status, error.code, error.detail, error.headers)


def describe(error: RequestValidationError) -> str:
    """'query parameter status: Input should be ...' for the first error."""
    first = error.errors()[0] if error.errors() else {}
    where = [str(part) for part in first.get("loc", ())]
    place = f"{where[0]} parameter {'.'.join(where[1:])}" if where else "request"
    return f"{place}: {first.get('msg', 'invalid')}"


def validation_handler(guard: Guard) -> Any:
    async def on_invalid(request: Request, error: Exception) -> Any:
        if not isinstance(error, RequestValidationError):
            raise error
        detail = describe(error)
        caller = getattr(request.state, "caller", None)
        if isinstance(caller, Caller):  # authenticated, then refused: audit it
            gate = known_id(str(request.path_params.get("gate_id", "")))
            await run_in_threadpool(guard.audit, InvalidInput(detail), caller, gate)
        return problem(422, "invalid", detail)

    return on_invalid


async def on_unsafe_file(request: Request, error: Exception) -> Any:
    """A link, a FIFO or a device found in the store: a fault of the store, not of the
    request. Nothing was done; the server's log names the file (the answer does not)."""
    logger.error("%s", error)
    return problem(
        500, "unsafe-store-file", "the store holds a file the server refuses: see its log"
    )


async def on_http_error(request: Request, error: Exception) -> Any:
    """Starlette's own 404/405 (paths outside /api, /hooks and /l) as problems too."""
    if not isinstance(error, HTTPException):
        raise error
    headers = dict(error.headers) if error.headers else None
    return problem(error.status_code, "not-found", str(error.detail), headers)


class SecurityHeaders:
    """Headers every answer carries unless it sets its own (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
