"""The gate server's ASGI application: ``create_app(store_dir, ...)``.

Routes (see ``routes``): ``/api/...`` (bearer token or signed request), ``/hooks/decision``
(the same, gate named in the body), ``/l/TOKEN`` (one-click links), ``/openapi.json``,
and the dashboard: ``/`` and ``/static/``.
"""

import os
from importlib import metadata
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..auth import FailureLimiter, TokenStore
from ..links import LinkSigner
from ..signatures import DEFAULT_WINDOW
from ..store import GateStore
from ..storefs import UnsafeFile
from ..webhooks import WebhookSecrets
from .asgi import (
    Authenticate,
    SafeJSONResponse,
    SecurityHeaders,
    on_http_error,
    on_refused,
    on_unsafe_file,
    validation_handler,
)
from .gates import Gates
from .linkpages import LinkPages
from .routes import api_router, link_router
from .security import Guard, Refused

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_MAX_FAILURES = 20
DEFAULT_FAILURE_WINDOW = 60.0


def _version() -> str:
    try:
        return metadata.version("snakemake-executor-plugin-hybrid")
    except metadata.PackageNotFoundError:
        return "0"


def create_app(
    store_dir: str | os.PathLike[str],
    *,
    public_url: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_failures: int = DEFAULT_MAX_FAILURES,
    failure_window: float = DEFAULT_FAILURE_WINDOW,
    signature_window: float = DEFAULT_WINDOW,
    accept_v1_signatures: bool = False,
) -> FastAPI:
    """The server over the gate store at ``store_dir`` (created if missing).
    ``accept_v1_signatures``: signed requests of the old form (not bound to the path)
    count on ``POST /hooks/decision``, while senders move to ``v2``."""
    store = GateStore(Path(store_dir))
    guard = Guard(
        store,
        TokenStore(store.root, store.share),
        WebhookSecrets(store.root, store.share),
        FailureLimiter(max_failures, failure_window),
        signature_window,
        accept_v1_signatures,
    )
    gates = Gates(store, guard, public_url)
    links = LinkPages(store, guard, LinkSigner(store.root, store.share), public_url)

    app = FastAPI(
        title="snakemake-gate",
        version=_version(),
        description="Human gates of Snakemake workflows: list, inspect and decide them.",
        docs_url=None,  # Swagger UI would load scripts from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        default_response_class=SafeJSONResponse,
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(RequestValidationError, validation_handler(guard))
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(UnsafeFile, on_unsafe_file)
    app.include_router(api_router(gates, Authenticate(guard, max_body)))
    app.include_router(link_router(links))
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            raise HTTPException(404, "no dashboard installed")
        return FileResponse(index, media_type="text/html")

    return app
