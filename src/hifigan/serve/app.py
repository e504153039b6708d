"""The Starlette application: routes, API-key check, request counters, and the batchers'
lifetime (the shared state is :class:`~hifigan.serve.service.Service`).

Endpoints (details in ``docs/serving.md``):

====================  =====================================================================
``GET /``             the web page (``static/``)
``GET /health``       200 ``{"status": "ok", ...}`` once every model is loaded and running
``GET /v1/models``    the served models: rate, bands, hop_length, mel convention, latency
``GET /metrics``      Prometheus text format
``POST /v1/vocode``   ``.npy`` mel or audio file -> 16-bit wav (``?format=f32``: raw float32)
``POST /v1/mel``      audio file -> the model's mel (``.npy``; ``?format=json`` for drawing)
``GET /v1/demo-clip`` the bundled demo recording (FLAC)
``GET /v1/conventions`` the mel conventions ``?mel_convention`` accepts, each model's default
``POST /v1/mel-check`` ``.npy`` mel -> ``hifigan mel-check``'s verdict on it (JSON)
``GET /favicon.ico``  the page's icon (SVG)
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
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute, websocket_session
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import bundled
from ..errors import HiFiGANError
from ..threads import apply_threads
from .config import ServeConfig
from .conventions import QUERY, MelConventions
from .counters import CONTENT_TYPE, Metrics
from .guard import CLIENT_GONE, WebGuard, deny
from .payload import (
    RequestError,
    decode_audio,
    f32_bytes,
    header_text,
    is_npy,
    parse_mel,
    wav_bytes,
    without_path,
)
from .service import Service
from .slots import ModelSlot, load_slots

log = logging.getLogger("hifigan.serve")

STATIC = Path(__file__).resolve().parent / "static"
OPEN_PATHS = ("/health", "/", "/favicon.ico")  # and /static/: the page itself holds no secret
ENDPOINTS = frozenset(
    (
        "/",
        "/health",
        "/metrics",
        "/v1/models",
        "/v1/vocode",
        "/v1/mel",
        "/v1/demo-clip",
        "/v1/conventions",
        "/v1/mel-check",
        "/favicon.ico",
        "/v1/stream",
    )
)
RETRY_AFTER_S = 1
WS_MESSAGE_FACTOR = 4
"""The WebSocket layer reads messages up to this many ``--max-body-mb``, so that an oversized
one within that reaches the stream and gets its JSON error; a larger one is cut by the
protocol layer (close 1009 without the JSON), before it is read into memory."""
STREAM_CLOSE = {"busy": 1013, "idle": 1001}  # try again later; going away


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def endpoint_label(path: str) -> str:
    if path.startswith("/static/"):
        return "/static"
    return path if path in ENDPOINTS else "other"  # bounded label values


# ---------------------------------------------------------------------- middleware
class ServiceMiddleware:
    """Request metrics for every HTTP request and WebSocket session, around the Host, Origin
    and body checks of :class:`~hifigan.serve.guard.WebGuard`, then the API-key check."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        self.guarded = WebGuard(self._checked, service.policy, log)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._authorized(scope):
            await self.app(scope, receive, send)
        else:
            await self._deny(scope, receive, send)

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

        async def receive_recording() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and status["code"] == "101":
                # the client's close code, or why the connection ended (1006: dropped, 1011:
                # keepalive timeout): a stream the server did not close is not a success
                status["code"] = str(message.get("code", 1005))
            return message

        try:
            await self.guarded(scope, receive_recording, send_recording)
        finally:
            metrics = self.service.metrics
            metrics.requests.inc(endpoint=endpoint, status=status["code"])
            metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)

    async def _deny(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        await deny(scope, receive, send, 401, message, {"WWW-Authenticate": "Bearer"})


class StreamLimits:
    """The ASGI app of ``WS /v1/stream``: at most ``--max-streams`` open streams (one more is
    accepted, told why in JSON and closed with 1013), and each closed with 1001 after
    ``--stream-idle-seconds`` in which neither side sent a message."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service, config = self.service, self.service.config
        if service.open_streams >= config.max_streams:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await close_stream(
                send,
                STREAM_CLOSE["busy"],
                f"this server already has {config.max_streams} open streams; retry later",
            )
            return
        idle = config.stream_idle_seconds
        state = {"last": time.monotonic(), "closed": False}

        async def timed_receive() -> Message:
            pending = asyncio.ensure_future(receive())
            try:
                while True:
                    left = state["last"] + idle - time.monotonic()
                    if left > 0:
                        done, _ = await asyncio.wait({pending}, timeout=left)
                        if done:
                            state["last"] = time.monotonic()
                            return pending.result()
                        continue
                    pending.cancel()
                    if not state["closed"]:
                        state["closed"] = True
                        message = f"stream idle for {idle:g} s (--stream-idle-seconds); closed"
                        await close_stream(send, STREAM_CLOSE["idle"], message)
                    return {"type": "websocket.disconnect", "code": STREAM_CLOSE["idle"]}
            except BaseException:
                pending.cancel()
                raise

        async def timed_send(message: Message) -> None:
            if state["closed"]:
                return  # closed for idleness: the stream's late answers go nowhere
            if message["type"] == "websocket.close":
                state["closed"] = True
            state["last"] = time.monotonic()
            await send(message)

        service.open_streams += 1
        try:
            await self.app(scope, timed_receive, timed_send)
        finally:
            service.open_streams -= 1


async def close_stream(send: Send, code: int, message: str) -> None:
    """The stream protocol's error: one JSON text message, then a close with ``code``."""
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "websocket.send", "text": json.dumps({"error": message})})
        await send({"type": "websocket.close", "code": code, "reason": message[:100]})


# ---------------------------------------------------------------------- request helpers
async def read_body(request: Request) -> bytes:
    """The request body (400 when empty). Its size is bounded by :class:`WebGuard`, which
    answers 413 and cuts the body as soon as it passes ``--max-body-mb``."""
    body = await request.body()
    if not body:
        raise RequestError(400, "empty request body: send a mel (.npy) or an audio file")
    return body


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


def requested_model(request: Request) -> tuple[Service, ModelSlot]:
    """The process's service and the model that ``?model=`` names (the default for none;
    404 for one not served)."""
    service: Service = request.app.state.service
    return service, service.slot(request.query_params.get("model"))


def query_format(request: Request, allowed: tuple[str, ...]) -> str:
    fmt = request.query_params.get("format", allowed[0])
    if fmt not in allowed:
        raise RequestError(400, f"unknown format {fmt!r} (available: {', '.join(allowed)})")
    return fmt


async def body_to_mel(
    service: Service, slot: ModelSlot, body: bytes, notes: list[str] | None = None
) -> np.ndarray:
    """A ``.npy`` mel or an audio file (copy synthesis through the model's own mel) ->
    checked float32 ``(n_mels, frames)``; what was done to the audio (mixing, resampling)
    is appended to ``notes``."""
    v, limit = slot.vocoder, service.config.max_seconds
    if is_npy(body):
        return await run_in_threadpool(
            parse_mel, body, v.n_mels, v.hop_length, v.sample_rate, limit
        )
    audio = await run_in_threadpool(decode_audio, body, v.sample_rate, limit, notes)
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
            return Response(status_code=CLIENT_GONE)
        except ClientDisconnect:
            raise  # left during the upload (or cut at the body limit): WebGuard answers
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
    service, slot = requested_model(request)
    fmt = query_format(request, ("wav", "f32"))
    body = await read_body(request)
    if not slot.admit(service.config.max_queue):
        raise RequestError(
            503,
            f"model {slot.name} has {service.config.max_queue} requests waiting; retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    notes: list[str] = []
    conventions: MelConventions = request.app.state.conventions
    try:
        if is_npy(body):
            requested = request.query_params.get(QUERY)
            limit = service.config.max_seconds
            read = await run_in_threadpool(conventions.read_body, body, requested, slot.name, limit)
            spectrogram, applied, how = read.mel, read.convention, read.how
            notes.extend(read.warnings)
        else:  # a recording is always read through the model's own mel
            spectrogram = await body_to_mel(service, slot, body, notes)
            applied, how = slot.vocoder.convention.name, "audio"
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
        "X-Mel-Convention": header_text([applied]),
        "X-Mel-Convention-From": how,
    }
    if notes:
        headers["X-Warnings"] = header_text(notes)
    return Response(content, media_type=media, headers=headers)


@handles_errors
async def mel(request: Request) -> Response:
    service, slot = requested_model(request)
    fmt = query_format(request, ("npy", "json"))
    body = await read_body(request)
    if is_npy(body):
        raise RequestError(400, "send an audio file to /v1/mel (this body is already a mel)")
    notes: list[str] = []
    spectrogram = await body_to_mel(service, slot, body, notes)
    if fmt == "json":
        payload = {
            "model": slot.name,
            "n_mels": int(spectrogram.shape[0]),
            "frames": int(spectrogram.shape[1]),
            "hop_length": slot.vocoder.hop_length,
            "hop": slot.vocoder.hop_length,  # the old name, kept for existing clients
            "sample_rate": slot.vocoder.sample_rate,
            # float64 before rounding: a rounded float32 prints as -5.099999904632568
            "mel": np.round(spectrogram.astype(np.float64), 2).tolist(),
            "warnings": notes,
        }
        return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")
    buffer = io.BytesIO()
    np.save(buffer, spectrogram, allow_pickle=False)
    return Response(buffer.getvalue(), media_type="application/octet-stream")


@handles_errors
async def mel_check(request: Request) -> Response:
    service, slot = requested_model(request)
    body = await read_body(request)
    if not is_npy(body):
        raise RequestError(400, "send a mel (.npy) to /v1/mel-check (this body is audio)")
    conventions: MelConventions = request.app.state.conventions
    limit = service.config.max_seconds
    report = await run_in_threadpool(conventions.check, body, slot.name, limit)
    return JSONResponse(report)


async def conventions_list(request: Request) -> Response:
    return JSONResponse(request.app.state.conventions.describe())


async def favicon(request: Request) -> Response:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


async def demo_clip(request: Request) -> Response:
    clip = bundled.demo_clip()
    return FileResponse(str(clip), media_type="audio/flac", filename=bundled.DEMO_CLIP)


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
    vocoders = {slot.name: slot.vocoder for slot in slots}
    conventions = MelConventions.from_options(config.mel_conventions, config.mel_stats, vocoders)

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
        Route("/v1/conventions", conventions_list),
        Route("/v1/mel-check", mel_check, methods=["POST"]),
        Route("/favicon.ico", favicon),
        WebSocketRoute("/v1/stream", StreamLimits(websocket_session(stream), service)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error},
    )
    app.state.service = service
    app.state.conventions = conventions
    app.add_middleware(ServiceMiddleware, service=service)
    return app


def server_options(config: ServeConfig) -> dict:
    """The uvicorn settings that follow from ``config`` (the WebSocket message bound)."""
    return {"ws_max_size": WS_MESSAGE_FACTOR * config.max_body_bytes}


def app_from_env() -> Starlette:
    """The application factory of worker processes (``uvicorn --factory``): the configuration
    comes from the environment, written by ``hifigan serve``."""
    config = ServeConfig.from_env()
    apply_threads(config.threads)
    return create_app(config)
