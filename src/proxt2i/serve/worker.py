"""The batching worker: a bounded queue of requests and one task that runs compatible ones together.

Requests with the same batch key (steps, sampler, guidance, time grid) are grouped into one network batch
of up to `max_batch` images, waiting at most `max_wait_ms` for company after the first one arrives. The
network runs in one worker thread (run_in_executor), so the event loop keeps answering health checks,
metrics and new requests while a batch runs; one thread because the model is not thread-safe and two
batches at once would only split the same cores.

Every batch is padded to exactly `max_batch` rows. The pipeline seeds every image on its own, but CPU
kernels (matmul blocking) round differently for different batch sizes, so an image computed in a batch of
3 differs in the last bits from the same image alone; at one fixed shape the rows are computed bit-identically
whatever their neighbours are (tests/test_serve.py checks the PNG bytes). The price: a lone request costs a
full batch of compute, which is what a loaded server runs anyway.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from ..errors import UsageError
from .errors import ApiError
from .validation import Generation


@dataclass
class Job:
    """One queued request: what to generate, where the answer goes, how to tell its client left."""

    request: Generation
    future: asyncio.Future
    disconnected: Callable[[], Awaitable[bool]] | None = None
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    def __init__(self, pipe, metrics, *, max_batch: int = 8, max_wait_ms: float = 10.0, max_queue: int = 64,
                 pad_batches: bool = True):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise UsageError(f"max_batch and max_queue must be >= 1 and max_wait_ms >= 0, got {max_batch}, {max_queue}, {max_wait_ms}")
        self.pipe, self.metrics = pipe, metrics
        self.max_batch, self.max_wait, self.max_queue, self.pad_batches = max_batch, max_wait_ms / 1000, max_queue, pad_batches
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._held: deque[Job] = deque()  # taken off the queue while filling a batch, but for another key
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proxt2i-batch")
        self._task: asyncio.Task | None = None
        self.batches_run = 0
        # progress_id -> {"state": queued | running | done | failed | cancelled, "step": steps done, "steps": steps in all};
        # written by the worker thread (whole-value assignments), read by GET /v1/progress/ID
        self.progress: OrderedDict[str, dict] = OrderedDict()

    @property
    def depth(self) -> int:
        """Requests waiting (queued or held), not counting the batch that runs."""
        return self._queue.qsize() + len(self._held)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop taking batches; requests still waiting are answered 503, the running batch finishes."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in list(self._held) + [self._queue.get_nowait() for _ in range(self._queue.qsize())]:
            if not job.future.done():
                job.future.set_exception(ApiError(503, "the server is shutting down", "unavailable"))
        self._held.clear()
        self._executor.shutdown(wait=True)

    def submit(self, request: Generation, disconnected=None) -> asyncio.Future:
        """Queue a request; its future gets a list of base64 PNGs. ApiError 429 when the queue is full."""
        if self.depth >= self.max_queue:
            raise ApiError(429, f"the queue is full ({self.max_queue} requests waiting); retry shortly", "rate_limit_error",
                           headers={"Retry-After": "1"})
        job = Job(request, asyncio.get_running_loop().create_future(), disconnected)
        if request.progress_id:
            self._set_progress([request], "queued", 0, request.steps)
        self._queue.put_nowait(job)
        self.metrics.queue_depth.set(self.depth)
        return job.future

    async def _next_job(self, timeout: float | None) -> Job | None:
        try:
            if timeout is None:
                return await self._queue.get()
            if timeout <= 0:
                return self._queue.get_nowait()
            return await asyncio.wait_for(self._queue.get(), timeout)
        except (asyncio.TimeoutError, asyncio.QueueEmpty):
            return None

    async def _collect(self) -> list[Job]:
        """The next batch: the oldest waiting request and compatible ones that fit, within max_wait."""
        first = self._held.popleft() if self._held else await self._next_job(None)
        batch, count = [first], first.request.n
        key = first.request.batch_key
        for job in list(self._held):  # older requests first
            if job.request.batch_key == key and count + job.request.n <= self.max_batch:
                self._held.remove(job)
                batch.append(job)
                count += job.request.n
        deadline = time.perf_counter() + self.max_wait
        while count < self.max_batch:
            job = await self._next_job(deadline - time.perf_counter())
            if job is None:
                break
            if job.request.batch_key == key and count + job.request.n <= self.max_batch:
                batch.append(job)
                count += job.request.n
            else:
                self._held.append(job)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = []
            for job in batch:  # a request whose client left or timed out is not computed
                if job.future.done() or await client_gone(job):
                    self.metrics.dropped.inc()
                    self._set_progress([job.request], "cancelled")
                    if not job.future.done():
                        job.future.cancel()
                else:
                    live.append(job)
            self.metrics.queue_depth.set(self.depth)
            if not live:
                continue
            images = sum(job.request.n for job in live)
            self.metrics.batch_size.observe(images)
            self.batches_run += 1
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [job.request for job in live])
            except UsageError as err:
                failure = ApiError(422, str(err))
            except Exception as err:  # noqa: BLE001 - a bug or a broken model: every waiting client gets one line, the loop goes on
                self.metrics.errors.labels(kind="internal").inc()
                failure = ApiError(500, f"generation failed: {type(err).__name__}: {err}", "server_error")
            else:
                failure = None
            self._set_progress([job.request for job in live], "failed" if failure is not None else "done")
            for i, job in enumerate(live):
                if not job.future.done():
                    if failure is not None:
                        job.future.set_exception(failure)
                    else:
                        job.future.set_result(results[i])

    def _run_batch(self, requests: list[Generation]) -> list[list[str]]:
        """In the worker thread: one (or, for n beyond max_batch, a few) fixed-shape batches -> base64 PNGs per request."""
        import torch

        from ..imaging import to_pil

        first = requests[0]
        prompts = [r.prompt for r in requests for _ in range(r.n)]
        seeds = [s for r in requests for s in r.seeds]
        images = []
        chunks = -(-len(prompts) // self.max_batch)
        total = chunks * first.steps
        self._set_progress(requests, "running", 0, total)
        for chunk, lo in enumerate(range(0, len(prompts), self.max_batch)):
            done_before = chunk * first.steps
            step = lambda info, before=done_before: self._set_progress(requests, "running", before + info["i"] + 1, total)
            chunk_p, chunk_s = prompts[lo: lo + self.max_batch], seeds[lo: lo + self.max_batch]
            real = len(chunk_p)
            if self.pad_batches and real < self.max_batch:  # padding rows: their values never reach anyone
                chunk_p = chunk_p + [chunk_p[0]] * (self.max_batch - real)
                chunk_s = chunk_s + [0] * (self.max_batch - real)
            lat = self.pipe.sample_latents(chunk_p, first.steps, first.guidance, first.sampler, chunk_s, None, first.time_grid,
                                           callback=step)
            images.append(self.pipe.decode(lat)[:real])
        encoded = [png_base64(im) for im in to_pil(torch.cat(images))]
        out, at = [], 0
        for r in requests:
            out.append(encoded[at: at + r.n])
            at += r.n
        return out


    MAX_PROGRESS = 1024  # ids remembered; the oldest are forgotten first

    def _set_progress(self, requests: list[Generation], state: str, step: int | None = None, steps: int | None = None) -> None:
        for r in requests:
            if not r.progress_id:
                continue
            old = self.progress.get(r.progress_id, {})
            self.progress[r.progress_id] = {"state": state, "step": old.get("step", 0) if step is None else step,
                                            "steps": old.get("steps", r.steps) if steps is None else steps}
            if state == "done":
                self.progress[r.progress_id]["step"] = self.progress[r.progress_id]["steps"]
        while len(self.progress) > self.MAX_PROGRESS:
            self.progress.popitem(last=False)


async def client_gone(job: Job) -> bool:
    if job.disconnected is None:
        return False
    try:
        return bool(await job.disconnected())
    except Exception:  # noqa: BLE001 - cannot tell: compute it, the answer is simply not read
        return False


def png_base64(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
