"""`proxt2i serve`: the HTTP API and web page (proxt2i.serve) on uvicorn; loopback only unless asked."""

from __future__ import annotations

import ipaddress
import os

COMMANDS = {"serve": "serve a model over HTTP: OpenAI-style images API with dynamic batching, metrics and a web page"}
API_KEY_ENV = "PROXT2I_API_KEY"


def register(sub) -> None:
    from ..devices import add_device_arguments
    from ..shipped import DEFAULT_MODEL

    p = sub.add_parser("serve", help=COMMANDS["serve"],
                       description=("Serve a model: POST /v1/images/generations, GET /v1/models, /healthz, /metrics and a page at /. "
                                    "Binds 127.0.0.1; another address needs --allow-remote and an API key. Needs the serve extra: "
                                    "pip install 'proxt2i[serve]'. See docs/serving.md."))
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped name or model folder (default {DEFAULT_MODEL})")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-batch", type=int, default=8, help="images per network batch (default 8; 1 = batching off)")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="how long the first request of a batch waits for company (default 10)")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting before new ones get 429 (default 64)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request may wait and run before 504 (default 60)")
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} if set; none on loopback)")
    p.add_argument("--allow-remote", action="store_true", help="allow a --host other than loopback (then an API key is required)")
    p.add_argument("--no-pad-batches", action="store_true",
                   help="run each batch at its real size instead of padding it to --max-batch: less compute when lightly "
                        "loaded, but an image then differs in its last bits with the batch it shares (docs/serving.md)")
    add_device_arguments(p)
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_args(args) -> str | None:
    """Refuse unsafe or impossible settings before the model loads; returns the API key (or None)."""
    from ..errors import UsageError

    key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if not is_loopback(args.host):
        if not args.allow_remote:
            raise UsageError(f"--host {args.host} is not loopback: anyone who can reach it could use the server; "
                             f"pass --allow-remote (and an API key) to serve it anyway")
        if not key:
            raise UsageError(f"--allow-remote needs an API key: --api-key KEY or ${API_KEY_ENV}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    if args.max_batch < 1 or args.max_queue < 1:
        raise UsageError(f"--max-batch and --max-queue must be >= 1, got {args.max_batch} and {args.max_queue}")
    if not 0 <= args.max_wait_ms <= 10_000:
        raise UsageError(f"--max-wait-ms must be in 0..10000, got {args.max_wait_ms:g}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0, got {args.timeout:g}")
    from ..devices import resolve

    resolve(args.device, args.dtype)
    return key


def run(args) -> int:
    from ..extras import require

    key = check_args(args)
    uvicorn = require("uvicorn", "serve", "proxt2i serve")
    require("fastapi", "serve", "proxt2i serve")
    from ..serve import create_app

    app = create_app(args.model, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                     api_key=key, timeout_s=args.timeout, pad_batches=not args.no_pad_batches,
                     device=args.device, dtype=args.dtype)
    print(f"serving {args.model} on http://{args.host}:{args.port}/ (API: /v1/images/generations)", flush=True)
    # uvicorn handles SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then the app's shutdown answers the rest 503
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
