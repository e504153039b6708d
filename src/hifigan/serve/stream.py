"""``WS /v1/stream``: exact streaming synthesis over a WebSocket.

The client sends binary messages of little-endian float32 mel frames, frame-major
(``frames x n_mels`` values, whole frames, any number per message), then the text message
``end``. The server sends the samples that became final as binary float32 little-endian
messages (nothing while the first :attr:`~hifigan.Vocoder.latency_frames` frames are held
back), then the tail, then closes with code 1000. The concatenation equals offline synthesis
to float rounding (:meth:`hifigan.Vocoder.streamer`). With ``?mel_convention=NAME`` (or the
server's default) the frames are that convention's, converted as they arrive
(:class:`~hifigan.conventions.MelConverter`, which holds back the few frames a change of framing
interpolates from).

Receiving and synthesis are decoupled: a receive task reads and checks every message as it
arrives, so the connection (its keepalive pings included) is served while the model works;
the compute loop takes all the frames that arrived during the previous synthesis as one chunk
(coalescing), so a client that sends one frame per message costs a few large syntheses rather
than one per frame, each of which would recompute the model's whole receptive field. Each
synthesis is one job in the stream's own lane of the model's thread
(:class:`~hifigan.serve.batching.ModelThread`), which takes turns with the batches of
``/v1/vocode``, the mels of uploads and the other streams, and is at most
:data:`MAX_CHUNK_SECONDS` of audio long.

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
from hifigan.conventions import MelConverter
from hifigan.frontend import MelFrontEnd
from hifigan.inference.inputs import raw_frames

from .conventions import QUERY
from .payload import RequestError, f32_bytes, without_path

END = "end"
CLOSE_CODES = {
    "invalid data": 1007,  # not whole frames, NaN, text other than "end"
    "too big": 1009,  # over --max-body-mb per message or --max-seconds per stream
    "internal": 1011,
    "unknown model": 4404,
}
DEPARTURE_WAIT_S = 2.0
"""How long a stream whose client left waits for the client's closing message."""
MAX_CHUNK_SECONDS = 2.0
"""Most audio one synthesis job of a stream computes; a longer backlog is split into jobs of
this size, so that the batches and other streams sharing the model's thread wait at most
about one such job."""


class StreamError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def frames_of(data: bytes, n_mels: int) -> np.ndarray:
    """A binary message -> ``(n_mels, c)`` float32 frames (a writable copy, for torch), or
    :class:`StreamError`."""
    try:
        return raw_frames(data, n_mels)
    except HiFiGANError as e:
        raise StreamError(CLOSE_CODES["invalid data"], str(e)) from None


async def stream(websocket: WebSocket) -> None:
    """One streamed utterance per connection."""
    service = websocket.app.state.service
    await websocket.accept()
    try:
        slot = service.slot(websocket.query_params.get("model"))
    except RequestError as e:
        await close_with_error(websocket, CLOSE_CODES["unknown model"], e.message)
        return
    try:
        converter = websocket.app.state.conventions.stream_converter(
            websocket.query_params.get(QUERY), slot.name
        )
    except RequestError as e:
        await close_with_error(websocket, CLOSE_CODES["invalid data"], e.message)
        return
    service.metrics.streams.inc(model=slot.name)
    try:
        await run_stream(websocket, service, slot, converter)
    except StreamError as e:
        await close_with_error(websocket, e.code, e.message)
    except HiFiGANError as e:
        await close_with_error(websocket, CLOSE_CODES["invalid data"], without_path(e))
    except (WebSocketDisconnect, ClientGone, OSError):
        # the client left: its stream state is dropped with this call
        await take_departure(websocket)
    except Exception as e:
        await close_with_error(websocket, CLOSE_CODES["internal"], f"internal error ({e})")
    finally:
        service.metrics.streams.inc(-1, model=slot.name)


class ClientGone(Exception):
    """The client closed the connection (or it dropped) before the end of the stream."""


class Inbox:
    """Frames received and not yet synthesized, filled by the receive task.

    The receive task never waits for synthesis: it reads every message as soon as it arrives
    (so that the connection, its pings included, is served while a chunk is computed) and
    appends its frames here. The compute loop takes everything gathered so far as one chunk.
    """

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []  # (n_mels, c) each, in order
        self.ended = False
        self.failure: BaseException | None = None
        self._changed = asyncio.Event()

    def put(self, frames: np.ndarray) -> None:
        self.frames.append(frames)
        self._changed.set()

    def end(self) -> None:
        self.ended = True
        self._changed.set()

    def fail(self, error: BaseException) -> None:
        self.failure = error
        self._changed.set()

    async def take(self) -> tuple[np.ndarray | None, bool]:
        """Wait for frames, the end or a failure; return ``((n_mels, c) or None, ended)``.

        A failure (a bad message, the client gone) is raised here, before frames that came
        earlier: the stream is over either way.
        """
        while not (self.frames or self.ended or self.failure):
            self._changed.clear()
            await self._changed.wait()
        if self.failure is not None:
            raise self.failure
        frames = None
        if self.frames:
            frames = self.frames[0] if len(self.frames) == 1 else np.concatenate(self.frames, 1)
            self.frames = []
        return frames, self.ended


async def receive_messages(websocket: WebSocket, service, form: MelFrontEnd, inbox: Inbox) -> None:
    """Read and check every message as it arrives; the frames (of ``form``'s bands and hop)
    go to ``inbox``."""
    limit_frames = int(service.config.max_seconds * form.sample_rate / form.hop_length)
    received = 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                inbox.fail(ClientGone())
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if len(data) > service.config.max_body_bytes:
                    raise StreamError(
                        CLOSE_CODES["too big"],
                        f"message of {len(data)} bytes is over this server's limit of "
                        f"{service.config.max_body_mb:g} MB",
                    )
                frames = frames_of(data, form.n_mels)
                received += frames.shape[1]
                if received > limit_frames:
                    raise StreamError(
                        CLOSE_CODES["too big"],
                        f"stream is over this server's limit of {service.config.max_seconds:g} "
                        f"s ({limit_frames} frames)",
                    )
                if frames.shape[1]:
                    inbox.put(frames)
            elif text is not None and text.strip() == END:
                if received == 0:
                    raise StreamError(CLOSE_CODES["invalid data"], "mel has no frames")
                inbox.end()
                return
            else:
                raise StreamError(
                    CLOSE_CODES["invalid data"],
                    f"unexpected text message {str(text)[:40]!r}: send binary float32 frames, "
                    f"then {END!r}",
                )
    except Exception as e:  # handed to the compute loop, which closes the connection
        inbox.fail(e)


def chunk_limit(form: MelFrontEnd) -> int:
    """Most frames (of ``form``'s hop) synthesized in one call of the model's thread
    (:data:`MAX_CHUNK_SECONDS`)."""
    return max(1, int(MAX_CHUNK_SECONDS * form.sample_rate / form.hop_length))


async def run_stream(
    websocket: WebSocket, service, slot, converter: MelConverter | None = None
) -> None:
    """Synthesize the frames as they arrive, converted first when ``converter`` is given (the
    client's convention to the model's)."""
    loop = asyncio.get_running_loop()
    vocoder = slot.vocoder
    form = converter.source if converter else vocoder.convention  # what the client sends
    streamer = vocoder.streamer()
    limit = chunk_limit(form)
    lane = slot.executor.lane()  # this stream's turns on the model's thread

    def push(frames: np.ndarray) -> np.ndarray:
        if converter is not None:
            frames = converter.push(frames)
        return streamer.push(torch.from_numpy(frames))[0].cpu().numpy()

    def finish() -> np.ndarray:
        audio = []
        if converter is not None:  # the frames the conversion held back
            audio.append(streamer.push(torch.from_numpy(converter.finish()))[0].cpu().numpy())
        last = streamer.finish()
        audio.append(last[0].cpu().numpy() if last.shape[1] else np.zeros(0, np.float32))
        return np.concatenate(audio)

    async def send(audio: np.ndarray) -> None:
        if audio.size:
            await websocket.send_bytes(f32_bytes(audio))
            service.metrics.audio_seconds.inc(audio.size / vocoder.sample_rate, model=slot.name)

    inbox = Inbox()
    receiver = asyncio.ensure_future(receive_messages(websocket, service, form, inbox))
    try:
        while True:
            frames, ended = await inbox.take()
            if frames is not None:
                # each piece is one job of the model's thread, queued behind the jobs already
                # there (batches, other streams): a long chunk cannot hold the thread for long
                for start in range(0, frames.shape[1], limit):
                    piece = np.ascontiguousarray(frames[:, start : start + limit])
                    await send(await loop.run_in_executor(lane, push, piece))
            if ended:
                await send(await loop.run_in_executor(lane, finish))
                await websocket.close(1000)
                return
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def take_departure(websocket: WebSocket) -> None:
    """Take the client's closing message if nobody has yet (a client that hung up while the
    server was still sending, e.g. right after ``end`` or after a bad message), so that the
    session is counted with
    the client's close code rather than as merely opened. Waits at most
    :data:`DEPARTURE_WAIT_S`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEPARTURE_WAIT_S
    with contextlib.suppress(Exception):  # already taken, or the connection is gone
        while (left := deadline - loop.time()) > 0:
            message = await asyncio.wait_for(websocket.receive(), left)
            if message["type"] == "websocket.disconnect":
                return


async def close_with_error(websocket: WebSocket, code: int, message: str) -> None:
    """Send the JSON error and close with ``code``; if the client has left, take its close."""
    try:
        await websocket.send_json({"error": message})
        await websocket.close(code, reason=message[:100])
    except (WebSocketDisconnect, OSError, RuntimeError):
        await take_departure(websocket)


__all__ = ["CLOSE_CODES", "END", "stream"]
