"""The FastAPI app: create_app(model=...) loads the model once and serves it through one Batcher.

Endpoints: POST /v1/images/generations (OpenAI images shape + steps, guidance, sampler, seed, time_grid),
GET /v1/models, GET /healthz, GET /metrics (Prometheus), GET / (the page). Every error is JSON
{"error": {"message": ONE LINE, "type": KIND}} with a 4xx code (5xx only for a failure of the server itself).
"""


# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (fastapi.Request) at run time
import asyncio
import hmac
import time
from contextlib import asynccontextmanager

from ..extras import require
from .errors import ApiError, error_body
from .metrics import Metrics
from .validation import parse_generation, parse_json

MAX_BODY_BYTES = 64 * 1024  # a prompt is at most 2000 characters; anything near this is not a real request


def create_app(model=None, *, max_batch: int = 8, max_wait_ms: float = 10.0, max_queue: int = 64, api_key: str | None = None,
               timeout_s: float = 60.0, pad_batches: bool = True, pipeline=None, device=None, dtype=None):
    """The app serving `model` (a shipped name or a model folder; None: the default model) on `device` in
    `dtype` (ProxT2IPipeline.from_pretrained's), or an already loaded `pipeline`. api_key: every request but / and /healthz needs `Authorization: Bearer KEY`."""
    fastapi = require("fastapi", "serve", "proxt2i serve")
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from ..pipeline import ProxT2IPipeline
    from ..shipped import DEFAULT_MODEL
    from .page import page_html
    from .worker import Batcher

    pipe = pipeline or ProxT2IPipeline.from_pretrained(model, device=device, torch_dtype=dtype)  # a missing or corrupt model fails here, before serving
    model_id = str(model or DEFAULT_MODEL) if pipeline is None else str(model or pipe.path or "model")
    metrics = Metrics()
    state = {}

    @asynccontextmanager
    async def lifespan(app):
        batcher = Batcher(pipe, metrics, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, pad_batches=pad_batches)
        batcher.start()
        state["batcher"] = app.state.batcher = batcher
        yield
        await batcher.stop()

    app = fastapi.FastAPI(title="proxt2i", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics, app.state.pipeline = metrics, pipe

    def error(err: ApiError):
        metrics.errors.labels(kind=err.kind).inc()
        return JSONResponse(error_body(err.message, err.kind), status_code=err.status, headers=err.headers)

    @app.exception_handler(ApiError)
    async def on_api_error(request, err: ApiError):
        return error(err)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request, err):  # 404, 405: the same JSON shape as every other error
        kind = "not_found" if err.status_code == 404 else "invalid_request_error"
        return error(ApiError(err.status_code, str(err.detail), kind))

    @app.exception_handler(Exception)
    async def on_bug(request, err):  # never a traceback to the client; the log keeps it
        return error(ApiError(500, f"internal error: {type(err).__name__}", "server_error"))

    def check_key(request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'", "authentication_error",
                           headers={"WWW-Authenticate": "Bearer"})

    async def read_body(request) -> bytes:
        """The body, refused with 413 past MAX_BODY_BYTES without reading the rest."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body of {declared} bytes is too large (at most {MAX_BODY_BYTES})")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, f"request body is too large (at most {MAX_BODY_BYTES} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.post("/v1/images/generations")
    async def generations(request: fastapi.Request):
        start = time.perf_counter()
        code = 200
        try:
            check_key(request)
            data = parse_json(await read_body(request))
            gen = parse_generation(data, objective=pipe.objective, image_size=pipe.image_size,
                                   default_guidance=pipe.guidance_or_default(None), default_sampler=pipe.default_sampler)
            future = state["batcher"].submit(gen, request.is_disconnected)
            try:
                images = await asyncio.wait_for(future, timeout_s)
            except asyncio.TimeoutError:
                raise ApiError(504, f"generation took longer than {timeout_s:g} s", "timeout") from None
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and not getattr(task, "cancelling", lambda: 0)():  # dropped by the worker: the client has gone
                    raise ApiError(499, "client closed the request", "cancelled") from None
                raise
            body = {"created": int(time.time()), "data": [{"b64_json": b, "revised_prompt": gen.prompt} for b in images],
                    "model": model_id, "seed": gen.seed, "steps": gen.steps, "sampler": gen.sampler}
            unseen = pipe.unseen_words_message(gen.prompt)
            if unseen:
                body["warnings"] = [unseen]
            return JSONResponse(body)
        except ApiError as err:
            code = err.status
            raise
        finally:
            metrics.requests.labels(code=str(code)).inc()
            metrics.latency.observe(time.perf_counter() - start)

    @app.get("/v1/models")
    async def models(request: fastapi.Request):
        check_key(request)
        return {"object": "list", "data": [{"id": model_id, "object": "model", "owned_by": "proxt2i",
                                            "size": f"{pipe.image_size}x{pipe.image_size}", "objective": pipe.objective}]}

    @app.get("/v1/progress/{progress_id}")
    async def progress(progress_id: str, request: fastapi.Request):
        """How far the request sent with this progress_id is: {"state", "step", "steps"} (the page polls it)."""
        check_key(request)
        batcher = state.get("batcher")
        entry = batcher.progress.get(progress_id) if batcher else None
        if entry is None:
            raise ApiError(404, f"no request with progress_id {progress_id[:64]!r} (not sent yet, or long finished)", "not_found")
        return dict(entry)

    @app.get("/healthz")
    async def healthz():
        batcher = state.get("batcher")
        return {"status": "ok", "model": model_id, "queue_depth": batcher.depth if batcher else 0}

    @app.get("/metrics")
    async def prometheus(request: fastapi.Request):
        check_key(request)
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/")
    async def index():
        return HTMLResponse(page_html(model_id, pipe.image_size, max_images=8, needs_key=api_key is not None,
                                      guidance=pipe.guidance_or_default(None)))

    return app
