"""The Starlette application: routes, API-key check, metrics, and the batchers' lifetime.

Endpoints (details in ``docs/serving.md``):

====================  =====================================================================
``GET /``             the web page (``static/``)
``GET /health``       200 ``{"status": "ok", ...}`` once every model is loaded and running
``GET /v1/models``    the served models: rate, bands, hop, mel convention, stream latency
``GET /metrics``      Prometheus text format
``POST /v1/vocode``   ``.npy`` mel or audio file -> 16-bit wav (``?format=f32``: raw float32)
``POST /v1/mel``      audio file -> the model's mel (``.npy``; ``?format=json`` for drawing)
``GET /v1/demo-clip`` the bundled demo recording (FLAC)
``WS /v1/stream``     float32 mel frames in, float32 samples out as soon as they are final
====================  =====================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from importlib import resources
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hifigan import HiFiGANError
from hifigan.cli.demo import DEMO_CLIP

from .metrics import CONTENT_TYPE, Metrics
from .payload import (
    RequestError,
    decode_audio,
    f32_bytes,
    is_npy,
    parse_mel,
    wav_bytes,
    without_path,
)
from .service import ModelSlot, ServeConfig, load_slots

log = logging.getLogger("hifigan.serve")

STATIC = Path(__file__).resolve().parent / "static"
OPEN_PATHS = ("/health", "/")  # and /static/: the page itself holds no secret
ENDPOINTS = frozenset(
    (
        "/",
        "/health",
        "/metrics",
        "/v1/models",
        "/v1/vocode",
        "/v1/mel",
        "/v1/demo-clip",
        "/v1/stream",
    )
)
RETRY_AFTER_S = 1
DISCARD_FACTOR = 4  # an oversized body is read and dropped up to this many limits, then cut


class Service:
    """Shared state of one process: configuration, metrics and the loaded models."""

    def __init__(self, config: ServeConfig, slots: list[ModelSlot], metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.slots = {slot.name: slot for slot in slots}
        self.default = slots[0].name
        self.running = False

    def slot(self, name: str | None) -> ModelSlot:
        if name is None or name == "":
            return self.slots[self.default]
        slot = self.slots.get(name)
        if slot is None:
            raise RequestError(
                404, f"unknown model {name!r} (served here: {', '.join(self.slots)})"
            )
        return slot


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def endpoint_label(path: str) -> str:
    if path.startswith("/static/"):
        return "/static"
    return path if path in ENDPOINTS else "other"  # bounded label values


# ---------------------------------------------------------------------- middleware
class ServiceMiddleware:
    """API-key check and request metrics for every HTTP request and WebSocket session."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    def _authorized(self, scope: Scope) -> bool:
        key = self.service.config.api_key
        path = scope["path"]
        if key is None or path in OPEN_PATHS or path.startswith("/static/"):
            return True
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope["headers"]}
        given = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given.encode(), key.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_label(scope["path"])
        start = time.perf_counter()
        status = {"code": "500"}

        async def send_recording(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status["code"] = str(message["status"])
            elif kind == "websocket.accept":
                status["code"] = "101"
            elif kind == "websocket.close":
                status["code"] = str(message.get("code", 1000))
            await send(message)

        try:
            if not self._authorized(scope):
                await self._deny(scope, receive, send_recording)
            else:
                await self.app(scope, receive, send_recording)
        finally:
            metrics = self.service.metrics
            metrics.requests.inc(endpoint=endpoint, status=status["code"])
            metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)

    async def _deny(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        response = error_response(401, message, {"WWW-Authenticate": "Bearer"})
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})


# ---------------------------------------------------------------------- request helpers
async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; 413 beyond (400 when empty)."""
    too_large = RequestError(
        413, f"request body is over this server's limit of {limit / 2**20:g} MB"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DISCARD_FACTOR * limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DISCARD_FACTOR * limit:
            raise too_large
    if size > limit:
        raise too_large  # read to the end, so that the client sees the answer
    if size == 0:
        raise RequestError(400, "empty request body: send a mel (.npy) or an audio file")
    return b"".join(chunks)


class ClientGoneError(Exception):
    """The client disconnected before its answer was ready."""


async def unless_disconnected(request: Request, work: Awaitable):
    """Await ``work``, but cancel it (freeing its queue slot) if the client disconnects."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ClientGoneError
    return task.result()


def query_format(request: Request, allowed: tuple[str, ...]) -> str:
    fmt = request.query_params.get("format", allowed[0])
    if fmt not in allowed:
        raise RequestError(400, f"unknown format {fmt!r} (available: {', '.join(allowed)})")
    return fmt


async def body_to_mel(service: Service, slot: ModelSlot, body: bytes) -> np.ndarray:
    """A ``.npy`` mel or an audio file (copy synthesis through the model's own mel) ->
    checked float32 ``(n_mels, frames)``."""
    v, limit = slot.vocoder, service.config.max_seconds
    if is_npy(body):
        return await run_in_threadpool(
            parse_mel, body, v.n_mels, v.hop_length, v.sample_rate, limit
        )
    audio = await run_in_threadpool(decode_audio, body, v.sample_rate, limit)
    try:
        return await asyncio.get_running_loop().run_in_executor(slot.executor, slot.mel, audio)
    except HiFiGANError as e:
        raise RequestError(400, without_path(e)) from None


# ---------------------------------------------------------------------- endpoints
def handles_errors(handler):
    """Turn :class:`RequestError` into its JSON answer, and anything unexpected into a 500
    that does not take the server down."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestError as e:
            return error_response(e.status, e.message, e.headers)
        except HiFiGANError as e:
            return error_response(400, without_path(e))
        except ClientGoneError:
            return Response(status_code=499)
        except Exception as e:
            log.exception("unexpected error in %s", request.url.path)
            return error_response(500, f"internal error ({type(e).__name__})")

    wrapped.__name__ = handler.__name__
    return wrapped


async def http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON, like every other error of the API."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    return error_response(status, f"{detail}: {request.method} {request.url.path}")


async def health(request: Request) -> Response:
    service: Service = request.app.state.service
    status = 200 if service.running else 503
    body = {
        "status": "ok" if service.running else "starting",
        "models": list(service.slots),
        "default": service.default,
    }
    return JSONResponse(body, status_code=status)


async def models(request: Request) -> Response:
    service: Service = request.app.state.service
    return JSONResponse(
        {"default": service.default, "models": [s.info() for s in service.slots.values()]}
    )


async def metrics_text(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


@handles_errors
async def vocode(request: Request) -> Response:
    service: Service = request.app.state.service
    slot = service.slot(request.query_params.get("model"))
    fmt = query_format(request, ("wav", "f32"))
    body = await read_body(request, service.config.max_body_bytes)
    if not slot.admit(service.config.max_queue):
        raise RequestError(
            503,
            f"model {slot.name} has {service.config.max_queue} requests waiting; retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        spectrogram = await body_to_mel(service, slot, body)
        result = await unless_disconnected(request, slot.batcher.submit(spectrogram))
    finally:
        slot.release()
    rate = slot.vocoder.sample_rate
    seconds = result.audio.shape[0] / rate
    service.metrics.audio_seconds.inc(seconds, model=slot.name)
    if fmt == "wav":
        content, media = await run_in_threadpool(wav_bytes, result.audio, rate), "audio/wav"
    else:
        content, media = f32_bytes(result.audio), "application/octet-stream"
    headers = {
        "X-Model": slot.name,
        "X-Sample-Rate": str(rate),
        "X-Audio-Seconds": f"{seconds:.6f}",
        "X-Synthesis-Seconds": f"{result.seconds:.6f}",
        "X-Batch-Size": str(result.batch_size),
    }
    return Response(content, media_type=media, headers=headers)


@handles_errors
async def mel(request: Request) -> Response:
    service: Service = request.app.state.service
    slot = service.slot(request.query_params.get("model"))
    fmt = query_format(request, ("npy", "json"))
    body = await read_body(request, service.config.max_body_bytes)
    if is_npy(body):
        raise RequestError(400, "send an audio file to /v1/mel (this body is already a mel)")
    spectrogram = await body_to_mel(service, slot, body)
    if fmt == "json":
        payload = {
            "model": slot.name,
            "n_mels": int(spectrogram.shape[0]),
            "frames": int(spectrogram.shape[1]),
            "hop": slot.vocoder.hop_length,
            "sample_rate": slot.vocoder.sample_rate,
            "mel": np.round(spectrogram, 2).tolist(),
        }
        return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")
    buffer = io.BytesIO()
    np.save(buffer, spectrogram, allow_pickle=False)
    return Response(buffer.getvalue(), media_type="application/octet-stream")


async def demo_clip(request: Request) -> Response:
    path = resources.files("hifigan") / "data" / DEMO_CLIP
    return FileResponse(str(path), media_type="audio/flac", filename=DEMO_CLIP)


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


# ---------------------------------------------------------------------- application
def create_app(config: ServeConfig, slots: list[ModelSlot] | None = None) -> Starlette:
    """The ASGI application; loads the models of ``config`` unless ``slots`` are given."""
    from .stream import stream

    config.check()
    metrics = slots[0].metrics if slots else Metrics()
    if slots is None:
        slots = load_slots(config, metrics)
    service = Service(config, slots, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for slot in slots:
            slot.batcher.start()
        service.running = True
        try:
            yield
        finally:
            service.running = False
            for slot in slots:
                await slot.batcher.stop()
                slot.executor.shutdown(wait=False, cancel_futures=True)

    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/metrics", metrics_text),
        Route("/v1/models", models),
        Route("/v1/vocode", vocode, methods=["POST"]),
        Route("/v1/mel", mel, methods=["POST"]),
        Route("/v1/demo-clip", demo_clip),
        WebSocketRoute("/v1/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error},
    )
    app.state.service = service
    app.add_middleware(ServiceMiddleware, service=service)
    return app


def app_from_env() -> Starlette:
    """The application factory of worker processes (``uvicorn --factory``): the configuration
    comes from the environment, written by ``hifigan serve``."""
    from hifigan.cli.common import apply_threads

    config = ServeConfig.from_env()
    apply_threads(config.threads)
    return create_app(config)
