"""Load benchmark of `proxt2i serve` (a command, not a test): python -m proxt2i.serve.bench [--clients 32] ...

For each mode (batching on: --max-batch B, --max-wait-ms W; batching off: max batch 1) it starts the app on
uvicorn on 127.0.0.1 (a port the OS picks), runs N concurrent clients that each ask for one image at a time
until --requests answers or --duration seconds, and reports throughput, latency percentiles, status counts and
the mean batch size; then the offline throughput of the same pipeline called with batches of B (what
`proxt2i generate --batch-size B` does), on the same cores. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import threading
import time

PROMPTS = ["a smiling woman with long red hair", "a sad man with a beard", "a person wearing glasses and a cap",
           "a surprised young man with short black hair"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Served:
    """The app on uvicorn in a thread, bound to a loopback port before it starts."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))  # keep the host process's logging as it is
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


async def load(url: str, clients: int, requests: int, duration: float, steps: int) -> dict:
    import httpx

    latencies, codes = [], {}
    issued = 0
    stop_at = time.perf_counter() + duration

    async def client(index: int, http):
        nonlocal issued
        while issued < requests and time.perf_counter() < stop_at:
            issued += 1
            ask = {"prompt": PROMPTS[issued % len(PROMPTS)], "n": 1, "steps": steps, "seed": issued}
            start = time.perf_counter()
            try:
                r = await http.post(f"{url}/v1/images/generations", json=ask)
                code = str(r.status_code)
            except httpx.HTTPError as err:
                code = type(err).__name__
            codes[code] = codes.get(code, 0) + 1
            if code == "200":
                latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        began = time.perf_counter()
        await asyncio.gather(*[client(i, http) for i in range(clients)])
        wall = time.perf_counter() - began
    return {"answered": sum(codes.values()), "ok": len(latencies), "codes": codes, "wall_s": round(wall, 3),
            "images_per_s": round(len(latencies) / wall, 3),
            "p50_ms": round(1000 * percentile(latencies, 50), 1), "p95_ms": round(1000 * percentile(latencies, 95), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1),
            "errors_5xx": sum(n for c, n in codes.items() if c.startswith("5")),
            "errors_other": sum(n for c, n in codes.items() if c != "200" and not c.startswith("5"))}


def serve_mode(pipe, model: str, args, max_batch: int, max_wait_ms: float) -> dict:
    from .app import create_app

    app = create_app(model, pipeline=pipe, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max(64, 2 * args.clients),
                     timeout_s=300)
    with Served(app) as served:
        result = asyncio.run(load(served.url, args.clients, args.requests, args.duration, args.steps))
    registry = app.state.metrics.registry
    batches = registry.get_sample_value("proxt2i_batch_images_count") or 0
    images = registry.get_sample_value("proxt2i_batch_images_sum") or 0
    return {"max_batch": max_batch, "max_wait_ms": max_wait_ms, **result, "batches": int(batches),
            "mean_batch_images": round(images / batches, 2) if batches else 0}


def offline(pipe, args) -> dict:
    """Images per second of the pipeline itself, batches of --max-batch, for about the same work."""
    done, began = 0, time.perf_counter()
    while done < args.requests and time.perf_counter() - began < args.duration:
        prompts = [PROMPTS[(done + i) % len(PROMPTS)] for i in range(args.max_batch)]
        pipe(prompts, num_steps=args.steps, seed=done, batch_size=args.max_batch, output_type="tensor")
        done += len(prompts)
    wall = time.perf_counter() - began
    return {"batch_size": args.max_batch, "images": done, "wall_s": round(wall, 3), "images_per_s": round(done / wall, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxt2i.serve.bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--model", default="synthfaces-prox")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=256, help="answers per mode at most (default 256)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per mode at most (default 60)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=20.0)
    p.add_argument("--modes", default="on,off", help="comma list of on, off (default both)")
    args = p.parse_args(argv)
    if min(args.clients, args.requests, args.steps, args.max_batch) < 1 or args.duration <= 0:
        p.error("--clients, --requests, --steps and --max-batch must be >= 1 and --duration > 0")
    import torch

    from ..pipeline import ProxT2IPipeline

    pipe = ProxT2IPipeline.from_pretrained(args.model)
    pipe(PROMPTS[:2], num_steps=args.steps, output_type="tensor")  # warm-up: first-call allocations are not serving
    out = {"model": args.model, "clients": args.clients, "steps": args.steps, "torch_threads": torch.get_num_threads(),
           "cpus": os.cpu_count(), "offline": offline(pipe, args)}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "on" in modes:
        out["batching_on"] = serve_mode(pipe, args.model, args, args.max_batch, args.max_wait_ms)
        out["served_over_offline"] = round(out["batching_on"]["images_per_s"] / out["offline"]["images_per_s"], 3)
    if "off" in modes:
        out["batching_off"] = serve_mode(pipe, args.model, args, 1, 0.0)
    if "on" in modes and "off" in modes and out["batching_off"]["images_per_s"]:
        out["on_over_off"] = round(out["batching_on"]["images_per_s"] / out["batching_off"]["images_per_s"], 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
