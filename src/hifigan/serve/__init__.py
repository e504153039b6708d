"""``hifigan serve``: vocoding over HTTP and WebSocket, with a web page.

Needs the optional dependencies of ``pip install 'hifigan[serve]'`` (Starlette, uvicorn,
websockets). The pieces:

* :mod:`.app`: the Starlette application (routes, API key, metrics, lifespan);
* :mod:`.service`: configuration and the loaded models, each with its own thread;
* :mod:`.batching`: dynamic batching of concurrent requests into one exact batched call;
* :mod:`.stream`: the WebSocket streaming endpoint;
* :mod:`.payload`: safe ``.npy`` parsing, audio decoding, wav encoding;
* :mod:`.metrics`: the Prometheus text format.

>>> from hifigan.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(models=["lj-v1"]))     # any ASGI server can run it

Endpoints and examples: ``docs/serving.md``.
"""

from __future__ import annotations

from .service import ServeConfig

SERVE_EXTRA = "serve"
INSTALL_HINT = f"pip install 'hifigan[{SERVE_EXTRA}]'"


def create_app(*args, **kwargs):
    """The Starlette application (see :func:`hifigan.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["INSTALL_HINT", "ServeConfig", "create_app"]
