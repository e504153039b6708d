"""hifigan serve [--model NAME|PATH|NAME=PATH ...]: vocoding over HTTP and WebSocket.

Serves the listed models (the first is the default of requests that name none) at
http://127.0.0.1:8000/ (a web page), with the API:

  GET  /health, /v1/models, /v1/conventions, /metrics (Prometheus)
  POST /v1/vocode?model=NAME   a .npy mel or an audio file -> 16-bit wav (?format=f32: raw);
                               ?mel_convention=NAME|auto: the mel's convention, converted
  POST /v1/mel?model=NAME      an audio file -> the model's mel (.npy, or ?format=json)
  POST /v1/mel-check           a .npy mel -> hifigan mel-check's verdict (JSON)
  WS   /v1/stream?model=NAME   float32 mel frames in, float32 samples out as they are final

A TTS model's mels go as they are: --mel-convention NAME sets the default convention of
requests that name none (MODEL=NAME: one model's), --mel-stats the statistics of a
normalised one.

Concurrent /v1/vocode requests for one model are batched (--max-batch, --max-wait-ms,
--max-batch-seconds) into one exact batched synthesis: by default on CUDA, not on the CPU,
where one request already keeps the cores busy. The service listens on loopback only
unless --host says otherwise, answers only requests whose Host names an address it listens on
(--allow-host adds names), and refuses WebSockets and POSTs from pages of other sites
(--allow-origin allows one); with --api-key (or HIFIGAN_API_KEY) every endpoint but /health
and the page needs 'Authorization: Bearer KEY'. Details: docs/serving.md. Needs
pip install 'hifigan[serve]'.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import sys

from ..errors import HiFiGANError
from ..extras import require
from ..pretrained import DEFAULT_MODEL
from ..serve import SERVE_EXTRA, SERVE_MODULES
from ..serve.batching import CPU_MAX_BATCH_SECONDS, CUDA_MAX_BATCH
from ..serve.config import API_KEY_ENV, CONFIG_ENV, ServeConfig, defaults
from ..threads import auto_threads
from .common import add_threads_argument, apply_threads, note_default_model
from .options import (
    add_device_backend_arguments,
    env_value,
    integer,
    number,
    port,
    report_backend,
    token,
)

HELP = "serve vocoding over HTTP and WebSocket, with a web page"
DEFAULTS = defaults()  # the service's own: one source for the options and the library


def add_web_arguments(p: argparse.ArgumentParser) -> None:
    """``--allow-host`` and ``--allow-origin``, shared with ``hifigan listen``."""
    p.add_argument(
        "--allow-host",
        dest="allow_hosts",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also answer requests whose Host header is NAME (any port) or NAME:PORT, e.g. a "
        "reverse proxy's name or an ssh tunnel's localhost:9000 (repeatable; '*': any Host). "
        "By default only the addresses listened on are answered",
    )
    p.add_argument(
        "--allow-origin",
        dest="allow_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages of ORIGIN (https://site.example[:port]) use the service "
        "(repeatable); by default pages of other sites are refused",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        dest="models",
        metavar="NAME|PATH",
        nargs="+",
        action="extend",
        default=None,
        help="models to serve: built-in names (see `hifigan models`), checkpoint paths (served "
        f"under their file name) or NAME=PATH; the first is the default (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--config",
        default=None,
        help="preset name or JSON config for checkpoints that carry none",
    )
    p.add_argument(
        "--host", default=DEFAULTS.host, help="address to listen on (default %(default)s)"
    )
    p.add_argument("--port", type=port(), default=8000, help="port (default 8000)")
    add_device_backend_arguments(p)
    add_threads_argument(p)
    _add_convention_arguments(p.add_argument_group("mel conventions"))
    _add_limit_arguments(p.add_argument_group("batching and limits"))
    add_web_arguments(p)
    p.add_argument(
        "--api-key",
        type=token,
        default=None,
        help="require 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
        "(default: the environment variable HIFIGAN_API_KEY, if set)",
    )
    p.add_argument(
        "--workers", type=integer(1, 256), default=1, help="processes behind the port (default 1)"
    )
    p.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )


def _add_limit_arguments(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--max-batch",
        type=integer(1, 1024),
        default=DEFAULTS.max_batch,
        help="most requests synthesized together (1: no batching; default: 1 on the CPU, "
        f"where batching was slower, {CUDA_MAX_BATCH} on CUDA)",
    )
    limits.add_argument(
        "--max-wait-ms",
        type=number(0, 60_000),
        default=DEFAULTS.max_wait_ms,
        help="how long a batch waits to fill after its first request (0: no wait; default "
        "%(default)s)",
    )
    limits.add_argument(
        "--max-batch-seconds",
        type=number(0, 86_400),
        default=None,
        help="most audio per batch, seconds, counting each request as long as the batch's "
        f"longest (0: no limit; default: {CPU_MAX_BATCH_SECONDS:g} on the CPU, none on CUDA)",
    )
    limits.add_argument(
        "--max-queue",
        type=integer(1, 1_000_000),
        default=DEFAULTS.max_queue,
        help="requests per model in progress before 503 (default %(default)s)",
    )
    limits.add_argument(
        "--max-body-mb",
        type=number(0.001, 4096),
        default=DEFAULTS.max_body_mb,
        help="largest request body or stream message, MB (default %(default)s)",
    )
    limits.add_argument(
        "--max-seconds",
        type=number(0, 86_400, above=True),
        default=DEFAULTS.max_seconds,
        help="longest audio per request or stream, seconds (default %(default)s)",
    )
    limits.add_argument(
        "--max-streams",
        type=integer(1, 100_000),
        default=DEFAULTS.max_streams,
        help="open WebSocket streams per process; one more is closed with 1013 (default "
        "%(default)s)",
    )
    limits.add_argument(
        "--stream-idle-seconds",
        type=number(0, 86_400, above=True),
        default=DEFAULTS.stream_idle_seconds,
        help="close a stream (1001) after this long without a message either way (default "
        "%(default)s)",
    )


def _add_convention_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--mel-convention",
        dest="mel_conventions",
        action="append",
        default=[],
        metavar="[MODEL=]NAME|FILE|auto",
        help="the convention of the mels clients send when a request names none "
        "(?mel_convention=NAME): a named one (hifigan mel-check lists them), a JSON file, or "
        "auto to detect it; MODEL=... sets one model's (repeatable). Default: the model's own",
    )
    group.add_argument(
        "--mel-stats",
        dest="mel_stats",
        action="append",
        default=[],
        metavar="[CONVENTION=]FILE",
        help="the statistics that normalised mels of CONVENTION (stats.h5, feats_stats.npz, "
        ".npy/.npz mean and scale), undone before vocoding; FILE alone: for the normalised "
        "convention of --mel-convention (repeatable)",
    )
    group.add_argument(
        "--edge-padding",
        choices=["authors", "toolkit"],
        default=DEFAULTS.edge_padding,
        help="toolkit: repeat the first and last mel frames as the model's toolkit does "
        "(Coqui, SpeechBrain), as hifigan vocode --edge-padding does (default %(default)s)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` of the parsed options: each field from the option of its name
    (``--api-key`` falls back to the environment variable :data:`API_KEY_ENV`)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServeConfig)}
    given["models"] = args.models or []
    if given["api_key"] is None:
        given["api_key"] = env_value(API_KEY_ENV, token)
    return ServeConfig(**given)


def run(args: argparse.Namespace) -> int:
    require(SERVE_EXTRA, *SERVE_MODULES, purpose="hifigan serve")
    import uvicorn

    from ..serve.app import server_options
    from ..serve.batching import batch_settings
    from ..serve.conventions import MelConventions
    from ..serve.counters import Metrics
    from ..serve.guard import WebPolicy
    from ..serve.slots import load_slots, resolve_sources

    if args.workers < 1:
        raise HiFiGANError(f"--workers must be at least 1, got {args.workers}")
    config = config_from_args(args)
    config.check()
    if config.threads is None and args.workers > 1:  # the workers share the idle cores
        config.threads = max(1, auto_threads() // args.workers)
    threads = apply_threads(config.threads)
    source = "--threads" if args.threads is not None else "the cores idle at start"
    if args.threads is None and args.workers > 1:
        source += f", shared by {args.workers} workers"
    plural = "s" if threads != 1 else ""
    batching = batch_settings(config.device, config.max_batch, config.max_batch_seconds)
    print(f"note: torch uses {threads} CPU thread{plural} per process ({source})", file=sys.stderr)
    print(f"note: {batching.describe()}", file=sys.stderr)
    if not _is_loopback(args.host) and config.api_key is None:
        print(
            f"warning: listening on {args.host} without an API key: anyone who can reach this "
            "port can use the service (set --api-key or HIFIGAN_API_KEY)",
            file=sys.stderr,
        )
    report_backend(args)
    policy = WebPolicy(config.host, config.allow_hosts, config.allow_origins)
    if policy.describe():
        print(f"note: {policy.describe()}", file=sys.stderr)
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        **server_options(config),
    }
    sources = resolve_sources(config.models, config.config)  # fail here, not in a worker
    names = [source.name for source in sources]
    MelConventions.check_options(config.mel_conventions, config.mel_stats, names)
    note_default_model(sources[0])
    if args.workers == 1:
        from ..serve.app import create_app

        # load the models before listening: errors exit here
        app = create_app(config, load_slots(config, Metrics(), sources))
        uvicorn.run(app, **options)
        return 0
    os.environ[CONFIG_ENV] = config.to_env()
    uvicorn.run("hifigan.serve.app:app_from_env", factory=True, workers=args.workers, **options)
    return 0
