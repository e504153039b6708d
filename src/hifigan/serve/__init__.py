"""``hifigan serve``: vocoding over HTTP and WebSocket, with a web page.

Needs the optional dependencies of ``pip install 'hifigan[serve]'`` (Starlette, uvicorn,
websockets: :data:`SERVE_MODULES`). The pieces:

* :mod:`.app`: the Starlette application (routes, API key, request counters, lifespan);
* :mod:`.service`: :class:`~.service.Service`, the state one process shares between requests;
* :mod:`.config`: :class:`ServeConfig`, what the service was asked for, and its defaults;
* :mod:`.slots`: the loaded models, each with its own thread and batcher;
* :mod:`.batching`: dynamic batching of concurrent requests into one exact batched call;
* :mod:`.stream`: the WebSocket streaming endpoint;
* :mod:`.payload`: safe ``.npy`` parsing, audio decoding, wav encoding;
* :mod:`.guard`: the Host, Origin and body-size checks;
* :mod:`.counters`: request counters and histograms in the Prometheus text format.

>>> from hifigan.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(models=["lj-v1"]))     # any ASGI server can run it

Endpoints and examples: ``docs/serving.md``.
"""

from __future__ import annotations

from ..extras import require
from .config import ServeConfig

SERVE_EXTRA = "serve"
SERVE_MODULES = ("starlette", "uvicorn", "websockets")


def create_app(*args, **kwargs):
    """The Starlette application (see :func:`hifigan.serve.app.create_app`); without the serve
    extra, a one-line :class:`~hifigan.extras.MissingExtraError`."""
    require(SERVE_EXTRA, *SERVE_MODULES, purpose="hifigan.serve.create_app")
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["SERVE_EXTRA", "SERVE_MODULES", "ServeConfig", "create_app"]
