"""``WS /v1/stream``: exact streaming synthesis over a WebSocket.

The client sends binary messages of little-endian float32 mel frames, frame-major
(``frames x n_mels`` values, whole frames, any number per message), then the text message
``end``. The server answers each message with the samples that became final (binary float32
little-endian; nothing while the first :attr:`~hifigan.Vocoder.latency_frames` frames are held
back), then the tail, then closes with code 1000. The concatenation equals offline synthesis
to float rounding (:meth:`hifigan.Vocoder.streamer`).

Errors are one JSON text message ``{"error": "..."}`` followed by a close with the code of
:data:`CLOSE_CODES`.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import torch
from starlette.websockets import WebSocket, WebSocketDisconnect

from hifigan import HiFiGANError

from .payload import RequestError, f32_bytes, without_path

END = "end"
CLOSE_CODES = {
    "invalid data": 1007,  # not whole frames, NaN, text other than "end"
    "too big": 1009,  # over --max-body-mb per message or --max-seconds per stream
    "internal": 1011,
    "unknown model": 4404,
}


class StreamError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def frames_of(data: bytes, n_mels: int) -> np.ndarray:
    """A binary message -> ``(n_mels, c)`` float32 frames, or :class:`StreamError`."""
    frame_bytes = 4 * n_mels
    if len(data) % frame_bytes:
        raise StreamError(
            CLOSE_CODES["invalid data"],
            f"message of {len(data)} bytes is not a whole number of frames (a frame is "
            f"{frame_bytes} bytes: {n_mels} float32 values)",
        )
    frames = np.frombuffer(data, dtype="<f4").reshape(-1, n_mels)
    if not np.isfinite(frames).all():
        bad = int((~np.isfinite(frames)).sum())
        raise StreamError(CLOSE_CODES["invalid data"], f"mel contains {bad} NaN or infinite values")
    return np.array(frames.T, dtype=np.float32, order="C")  # a writable copy, for torch


async def stream(websocket: WebSocket) -> None:
    """One streamed utterance per connection."""
    service = websocket.app.state.service
    await websocket.accept()
    try:
        slot = service.slot(websocket.query_params.get("model"))
    except RequestError as e:
        await close_with_error(websocket, CLOSE_CODES["unknown model"], e.message)
        return
    service.metrics.streams.inc(model=slot.name)
    try:
        await run_stream(websocket, service, slot)
    except StreamError as e:
        await close_with_error(websocket, e.code, e.message)
    except HiFiGANError as e:
        await close_with_error(websocket, CLOSE_CODES["invalid data"], without_path(e))
    except (WebSocketDisconnect, OSError):
        pass  # the client left: its stream state is dropped with this call
    except Exception as e:
        await close_with_error(websocket, CLOSE_CODES["internal"], f"internal error ({e})")
    finally:
        service.metrics.streams.inc(-1, model=slot.name)


async def run_stream(websocket: WebSocket, service, slot) -> None:
    loop = asyncio.get_running_loop()
    vocoder = slot.vocoder
    streamer = vocoder.streamer()
    limit_frames = int(service.config.max_seconds * vocoder.sample_rate / vocoder.hop_length)
    received = 0

    def push(frames: np.ndarray) -> np.ndarray:
        return streamer.push(torch.from_numpy(frames))[0].cpu().numpy()

    def finish() -> np.ndarray:
        audio = streamer.finish()
        return audio[0].cpu().numpy() if audio.shape[1] else np.zeros(0, np.float32)

    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > service.config.max_body_bytes:
                raise StreamError(
                    CLOSE_CODES["too big"],
                    f"message of {len(data)} bytes is over this server's limit of "
                    f"{service.config.max_body_mb:g} MB",
                )
            frames = frames_of(data, vocoder.n_mels)
            received += frames.shape[1]
            if received > limit_frames:
                raise StreamError(
                    CLOSE_CODES["too big"],
                    f"stream is over this server's limit of {service.config.max_seconds:g} s "
                    f"({limit_frames} frames)",
                )
            if frames.shape[1]:
                audio = await loop.run_in_executor(slot.executor, push, frames)
                if audio.size:
                    await websocket.send_bytes(f32_bytes(audio))
                    service.metrics.audio_seconds.inc(
                        audio.size / vocoder.sample_rate, model=slot.name
                    )
        elif text is not None and text.strip() == END:
            if received == 0:
                raise StreamError(CLOSE_CODES["invalid data"], "mel has no frames")
            audio = await loop.run_in_executor(slot.executor, finish)
            if audio.size:
                await websocket.send_bytes(f32_bytes(audio))
                service.metrics.audio_seconds.inc(audio.size / vocoder.sample_rate, model=slot.name)
            await websocket.close(1000)
            return
        else:
            raise StreamError(
                CLOSE_CODES["invalid data"],
                f"unexpected text message {str(text)[:40]!r}: send binary float32 frames, "
                f"then {END!r}",
            )


async def close_with_error(websocket: WebSocket, code: int, message: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        await websocket.send_json({"error": message})
        await websocket.close(code, reason=message[:100])


__all__ = ["CLOSE_CODES", "END", "stream"]
