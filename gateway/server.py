"""The gateway's HTTP app (Starlette): OpenAI's routes, API keys, the dashboard and its JSON.

Routes:

- `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`
  (Bearer key when the config lists any; OpenAI's error objects);
- `GET /dashboard` (the page) and `GET /dashboard/api/{summary,models,workers,validators,requests}`
  (`?limit=N&cursor=C` on the paginated ones), read-only chain data, no key;
- `GET /healthz`: the node's height, 503 when it cannot be reached.

`create_app` receives the `InferenceService` and `DashboardData` (their
chain client is owned by `cli.serve`), so tests build the app around fakes.
A streamed call (`stream: true`) gets its status line only once the answer
is verified, so a refused or timed-out call is a plain OpenAI error (422,
504) even when it asked for a stream.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from chain.client.errors import ClientError
from gateway import dashboard, errors, openai_api
from gateway.calls import Call
from gateway.dashboard.data import DashboardData
from gateway.errors import ApiError
from gateway.inference import InferenceService
from gateway.ratelimit import RateLimiter, retry_after
from worker.logs import EventLog

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def api_key_ok(authorization: str | None, keys: Sequence[str]) -> bool:
    """True when no keys are configured, or the header is `Bearer <one of keys>` (constant-time compare)."""
    if not keys:
        return True
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    given = token.strip().encode()
    ok = False
    for k in keys:  # no early exit: the time taken does not say which key came close
        ok |= hmac.compare_digest(given, k.encode())
    return ok


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers or None)


def _query_int(request: Request, name: str) -> int | None:
    v = request.query_params.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.invalid_request(f"{name} must be an integer", param=name) from None


def create_app(
    service: InferenceService,
    board: DashboardData | None,
    *,
    api_keys: Sequence[str] = (),
    log: EventLog | None = None,
    limiter: RateLimiter | None = None,
) -> Starlette:
    """The ASGI app around `service` (and `board`; None: no dashboard); `limiter` bounds completion calls."""
    log = log or EventLog()

    def authorize(request: Request) -> None:
        if not api_key_ok(request.headers.get("authorization"), api_keys):
            raise errors.invalid_api_key()

    def limit(request: Request) -> None:
        """Per key (per client address without keys); called after authorize, before anything is signed."""
        if limiter is None or not limiter.enabled:
            return
        auth = request.headers.get("authorization") or ""
        key = auth.partition(" ")[2].strip() if api_keys else (request.client.host if request.client else "")
        wait = limiter.take(key)
        if wait > 0:
            log.info("gateway.rate_limited", retry_after_s=round(wait, 3))
            raise errors.rate_limited(retry_after(wait))

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise errors.invalid_request("the body is not valid JSON") from None

    async def complete(request: Request, parse: Callable[[Any], Call]) -> Response:
        authorize(request)
        limit(request)
        call = parse(await body_of(request))
        started = time.monotonic()
        v = await service.run(call)
        created = int(time.time())
        log.info(
            "gateway.response",
            request_id=v.request_id,
            stream=call.stream,
            seconds=round(time.monotonic() - started, 3),
        )
        if not call.stream:
            return JSONResponse(openai_api.response(call, v, created))
        frames = openai_api.stream_bytes(call, v, created)

        async def gen() -> AsyncIterator[bytes]:
            for f in frames:
                yield f

        return StreamingResponse(gen(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def chat_completions(request: Request) -> Response:
        return await complete(request, openai_api.parse_chat)

    async def completions(request: Request) -> Response:
        return await complete(request, openai_api.parse_completion)

    async def models(request: Request) -> Response:
        authorize(request)
        try:
            listed = await service.models()
        except ClientError as e:
            raise errors.chain_unavailable(f"cannot list the models: {e}") from None
        return JSONResponse(openai_api.models_list(listed))

    async def healthz(request: Request) -> Response:
        try:
            st = await service.client.status()
        except ClientError as e:
            return JSONResponse({"status": "chain unreachable", "error": str(e)}, status_code=503)
        return JSONResponse({"status": "ok", "chain_id": st.chain_id, "height": st.latest_height})

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if board is not None:
        routes += dashboard_routes(board)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(errors.not_found(request.url.path))
        return error_response(ApiError(exc.status_code, "invalid_request_error", "http_error", str(exc.detail)))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("gateway.internal_error", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        return error_response(ApiError(500, "server_error", "internal_error", "the gateway failed; see its log"))

    return Starlette(
        routes=routes,
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_crash},
    )


def dashboard_routes(board: DashboardData) -> list[Route]:
    """The page and its JSON endpoints (read-only chain data, no API key)."""
    html = dashboard.page()

    def endpoint(fetch: Callable[[Request], Awaitable[dict[str, Any]]]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                data = await fetch(request)
            except ClientError as e:
                raise errors.chain_unavailable(f"chain query failed: {e}") from None
            return JSONResponse(data, headers={"Cache-Control": "no-store"})

        return handler

    async def page(request: Request) -> Response:
        return HTMLResponse(html)

    async def root(request: Request) -> Response:
        return RedirectResponse("/dashboard")

    return [
        Route("/", root, methods=["GET"]),
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/api/summary", endpoint(lambda r: board.summary()), methods=["GET"]),
        Route("/dashboard/api/models", endpoint(lambda r: board.models()), methods=["GET"]),
        Route(
            "/dashboard/api/workers",
            endpoint(lambda r: board.workers(_query_int(r, "limit"), r.query_params.get("cursor"))),
            methods=["GET"],
        ),
        Route("/dashboard/api/validators", endpoint(lambda r: board.validators()), methods=["GET"]),
        Route(
            "/dashboard/api/requests",
            endpoint(lambda r: board.requests(_query_int(r, "limit"), r.query_params.get("cursor"))),
            methods=["GET"],
        ),
    ]
