"""The HTTP routes: thin functions that hand an authenticated caller to ``gates`` and
``linkpages`` (run in worker threads: the store does blocking file I/O)."""

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from ..errors import InvalidInput, UnknownGate
from ..text import scrub
from .asgi import Authenticate, SafeJSONResponse, bearer, client_of
from .gates import Gates
from .linkpages import LinkPages
from .pages import PAGE_POLICY, Page, render
from .schemas import DecisionBody, GateDetail, GateList, GateView, HookDecisionBody, Me, Problem
from .security import Caller, MethodNotAllowed, UnsupportedMediaType, known_id
from .views import MEDIA_TYPES, TEXT

ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "not a decision request (not JSON, not an object, wrong members)",
        401: "no or wrong credentials",
        403: "not an approver, or self-approval",
        404: "no such gate (or artifact)",
        409: "already decided (or the artifact changed since the gate was asked)",
        413: "request body over the server's limit",
        415: "a body that is not sent as Content-Type: application/json",
        422: "an invalid value; the message names the field",
        429: "too many failed authentications from this client; see Retry-After",
    }
    return {s: {"model": Problem, "description": meaning[s]} for s in statuses}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """Document a body that the route reads raw (signatures cover the exact bytes)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _html(page: Page) -> HTMLResponse:
    html = scrub(render(page))  # a record written before text was checked: shown, not fatal
    return HTMLResponse(html, page.status, headers={"Content-Security-Policy": PAGE_POLICY})


def api_router(gates: Gates, auth: Authenticate) -> APIRouter:
    def refuse_query(request: Request, caller: Caller, *allowed: str) -> None:
        """Refuse (422, audited) query parameters the route does not take."""
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            error = InvalidInput(f"unknown query parameter {unknown[0][:100]!r}")
            gate = known_id(request.path_params.get("gate_id", ""))
            raise gates.guard.refuse(error, caller, gate)

    def query(*allowed: str) -> Any:
        """A dependency: an authenticated caller, and no query parameters but ``allowed``."""

        async def check(request: Request, caller: Annotated[Caller, Depends(auth)]) -> None:
            if set(request.query_params) - set(allowed):
                await run_in_threadpool(refuse_query, request, caller, *allowed)

        return Depends(check)

    async def decision(request: Request, decide: Callable[[Caller, bytes], Any]) -> Response:
        """Authenticate and decide in one trip to a worker thread; the answer as it is
        (the tests check it against the schema)."""

        def work(caller: Caller, raw: bytes) -> Any:
            refuse_query(request, caller)
            media = request.headers.get("content-type", "").partition(";")[0].strip()
            if media.lower() != "application/json":
                error = UnsupportedMediaType(
                    f"the body must be sent as Content-Type: application/json, not "
                    f"{media[:100] or 'without a Content-Type'}"
                )
                gate = known_id(request.path_params.get("gate_id", ""))
                raise gates.guard.refuse(error, caller, gate)
            return decide(caller, raw)

        return SafeJSONResponse(await auth.then(request, work))

    router = APIRouter()
    decide = _problems(400, 401, 403, 404, 409, 413, 415, 422, 429)

    @router.get(
        "/api/me",
        dependencies=[query()],
        response_model=Me,
        responses=_problems(401, 422, 429),
        summary="Who the caller is",
    )
    async def me(caller: Annotated[Caller, Depends(auth)]) -> dict[str, str]:
        return {"user": caller.user}

    @router.get(
        "/api/gates",
        dependencies=[query("status")],
        response_model=GateList,
        responses=_problems(401, 422, 429),
        summary="Gates: pending (default), decided, or all (pending and decided in 7 days)",
    )
    def list_gates(
        caller: Annotated[Caller, Depends(auth)],
        status: Literal["pending", "decided", "all"] = "pending",
    ) -> dict[str, Any]:
        return gates.list(caller, status)

    @router.get(
        "/api/gates/{gate_id}",
        dependencies=[query()],
        response_model=GateDetail,
        responses=_problems(401, 404, 422, 429),
        summary="One gate, with its audit history",
    )
    def get_gate(gate_id: str, caller: Annotated[Caller, Depends(auth)]) -> dict[str, Any]:
        return gates.detail(caller, gate_id)

    @router.get(
        "/api/gates/{gate_id}/artifacts/{index}",
        dependencies=[query()],
        response_class=Response,
        responses={
            200: {
                "description": "the file as the gate recorded it (X-Gate-Artifact-Sha256)",
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in sorted(
                        {t.split(";")[0] for t in MEDIA_TYPES.values()}
                        | {TEXT.split(";")[0], "application/octet-stream"}
                    )
                },
            },
            **_problems(401, 404, 409, 422, 429),
        },
        summary="An artifact (recorded input) of a gate, by index",
    )
    def get_artifact(
        gate_id: str, index: int, caller: Annotated[Caller, Depends(auth)]
    ) -> Response:
        artifact = gates.artifact(caller, gate_id, index)
        disposition = "inline" if artifact.inline else "attachment"
        return Response(
            artifact.data,
            media_type=artifact.media_type,
            headers={
                "X-Gate-Artifact-Sha256": artifact.sha256,
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(artifact.name)}",
                "Content-Security-Policy": ARTIFACT_POLICY,
                "X-Content-Type-Options": "nosniff",
            },
        )

    @router.post(
        "/api/gates/{gate_id}/decision",
        dependencies=[Depends(bearer)],
        response_model=GateView,
        responses=decide,
        openapi_extra=_json_body(DecisionBody),
        summary="Answer a gate (a vote, when its quorum is over one)",
    )
    async def post_decision(gate_id: str, request: Request) -> Response:
        return await decision(request, lambda caller, raw: gates.decide(caller, gate_id, raw))

    @router.post(
        "/hooks/decision",
        dependencies=[Depends(bearer)],
        response_model=GateView,
        responses=decide,
        openapi_extra=_json_body(HookDecisionBody),
        summary="Answer a gate named in the body (for webhook senders)",
    )
    async def post_hook(request: Request) -> Response:
        return await decision(request, gates.decide_named)

    @router.api_route("/api/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    @router.api_route("/hooks/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    def unmatched(request: Request, caller: Annotated[Caller, Depends(auth)]) -> None:
        """Nothing here: 404, or 405 when the path exists for other methods (audited)."""
        allowed = _allowed_methods(router.routes, request.scope)
        if allowed:
            wrong = MethodNotAllowed(f"{request.method} is not allowed here: use {allowed}")
            headers = {"Allow": allowed}
            raise gates.guard.refuse(wrong, caller, headers=headers, path=request.url.path[:200])
        missing = UnknownGate(f"nothing at {request.url.path[:200]}")
        raise gates.guard.refuse(
            missing, caller, reason="no such path", path=request.url.path[:200]
        )

    return router


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The methods of the routes whose path matches (none: nothing is here)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute) and "{rest:path}" not in route.path:
            match, _ = route.matches(scope)
            if match is Match.PARTIAL:
                methods |= route.methods or set()
    return ", ".join(sorted(methods))


def link_router(links: LinkPages) -> APIRouter:
    router = APIRouter()
    pages: dict[int | str, dict[str, Any]] = {
        s: {"description": d, "content": {"text/html": {}}}
        for s, d in {
            200: "what the link does, and a button",
            403: "not a valid link",
            404: "the gate is gone",
            409: "the gate is already decided",
            410: "the link expired or was used",
            422: "the gate needs field values: use the dashboard",
            429: "too many failed attempts from this client",
        }.items()
    }

    @router.get(
        "/l/{token}",
        response_class=HTMLResponse,
        responses=pages,
        summary="One-click link: a confirmation page (spends nothing)",
    )
    def show_link(token: str, request: Request) -> HTMLResponse:
        return _html(links.show(token, client_of(request)))

    @router.post(
        "/l/{token}",
        response_class=HTMLResponse,
        responses={**pages, 200: {"description": "recorded", "content": {"text/html": {}}}},
        summary="One-click link: act (once)",
    )
    def use_link(token: str, request: Request) -> HTMLResponse:
        return _html(links.act(token, client_of(request)))

    return router
