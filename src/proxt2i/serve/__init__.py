"""`proxt2i serve`: an HTTP API (OpenAI images shape) with dynamic batching, Prometheus metrics and a web page.

Modules: `requests` (parsing and validating a generation request into one-line errors), `worker` (the
queue and the batcher that runs compatible requests as one fixed-shape network batch), `metrics`
(Prometheus collectors, one registry per app), `page` (the self-contained HTML page at /), `app`
(`create_app`, the FastAPI app). FastAPI, uvicorn and prometheus-client are the `serve` extra.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    """See serve.app.create_app; imported lazily so `import proxt2i.serve` needs no extra."""
    from .app import create_app as _create

    return _create(*args, **kwargs)
