"""Where the stages run: `local` (one process, in order) or `ray` (Ray Data: each stage a map over batches of
one part, CPU stages as task pools of `workers`, model stages as actor pools of `model_workers`, each
actor with `num_gpus`). Both take the same rows and stages (stages.py) and yield the same results; Ray's
come in completion order, and the caller keys them by part.

A UsageError raised inside a Ray worker (a model folder that will not load) comes back as itself: one line.
Ray's own log lines stay off the terminal (warnings and errors go to its session logs under /tmp/ray).
A worker that dies (kill -9, a lost node) has its part retried by Ray Data (its defaults: tasks and actors
are retried on system failures, not on exceptions raised by the stage).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterator

from ..errors import UsageError
from ..extras import require
from .config import CurateConfig

@dataclass
class Stage:
    """fn(row, **kwargs) -> row; with actor=True, fn is a class built once per worker as fn(**kwargs). model: the
    stage holds a model (an actor pool of `model_workers`, each with `num_gpus`); other actor stages are CPU stages
    kept in `workers` long-lived processes, each with the next part already queued (no gap between parts)."""

    fn: Callable
    kwargs: dict = field(default_factory=dict)
    actor: bool = False
    model: bool = False
    name: str = ""


class LocalEngine:
    """The stages in this process, part after part."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, rows: list[dict], stages: list[Stage]) -> Iterator[dict]:
        calls = [s.fn(**s.kwargs) if s.actor else partial(s.fn, **s.kwargs) for s in stages]
        for row in rows:
            for call in calls:
                row = call(row)
            yield row


def _guarded(call: Callable, row: dict) -> dict:
    """call(row); a UsageError becomes a row {"usage_error": message}: Ray Data passes only the text of a stage's
    exception back, wrapped in its own, and this keeps the one line."""
    if "usage_error" in row:
        return row  # an earlier stage failed: pass its message on
    try:
        return call(row)
    except UsageError as err:
        return {"usage_error": str(err)}


def _apply(batch: dict, fn: Callable, kwargs: dict) -> dict:
    return {"row": [pickle.dumps(_guarded(partial(fn, **kwargs), pickle.loads(r))) for r in batch["row"]]}


class _ActorAdapter:
    """A Ray Data callable class around a stage class, built once per actor (made per stage by actor_class: Ray Data
    keeps constructor arguments in the object store, where an actor restarted after a kill may not find them)."""

    stage_class: type
    stage_kwargs: dict

    def __init__(self):
        self.stage = _guarded(lambda _: self.stage_class(**self.stage_kwargs), {})  # a model that will not load: reported per row

    def __call__(self, batch: dict) -> dict:
        rows = [pickle.loads(r) for r in batch["row"]]
        if isinstance(self.stage, dict):
            return {"row": [pickle.dumps(self.stage) for _ in rows]}
        return {"row": [pickle.dumps(_guarded(self.stage, r)) for r in rows]}


def actor_class(cls: type, kwargs: dict) -> type:
    return type(f"{cls.__name__}Actor", (_ActorAdapter,), {"stage_class": cls, "stage_kwargs": kwargs})


class RayEngine:
    """The stages on Ray Data: a local Ray on this machine, or the cluster at `address`. Rows travel pickled
    (between this project's own processes only) so that parts of any shape pass Arrow unchanged."""

    def __init__(self, cfg: CurateConfig, model_stages: int):
        self.cfg, self.model_stages = cfg, model_stages
        self.started = False

    def __enter__(self):
        ray = require("ray", "curate", "--engine ray")
        require("ray.data", "curate", "--engine ray")
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # failures reach the user as this project's one-line errors
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.CRITICAL}
            if self.cfg.address:
                ray.init(address=self.cfg.address, **kwargs)
            else:
                # logical CPUs: the stages stream into one another, so each holds its workers at once (the scan's
                # actors stay up into the write pass, beside its tasks); at least the cores
                needed = 2 * (self.cfg.workers or 1) + self.model_stages * self.cfg.model_workers
                ray.init(num_cpus=max(os.cpu_count() or 1, needed), **kwargs)
            self.started = True
        import ray.data

        # Ray prints cluster notices ("(raylet) A worker died ...") to sys.stdout; keep stdout for --json
        self.stdout = contextlib.redirect_stdout(sys.stderr)
        self.stdout.__enter__()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        return self

    def __exit__(self, *exc):
        if self.started:
            import ray

            ray.shutdown()
        self.stdout.__exit__(*exc)
        return False

    def workers(self) -> int:
        import ray

        return self.cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) - self.model_stages * self.cfg.model_workers)

    def run(self, rows: list[dict], stages: list[Stage]) -> Iterator[dict]:
        import ray.data as rd

        if not rows:
            return
        ds = rd.from_items([{"row": pickle.dumps(r)} for r in rows], override_num_blocks=len(rows))
        for s in stages:
            if s.actor:
                size = self.cfg.model_workers if s.model else self.workers()
                ds = ds.map_batches(actor_class(s.fn, s.kwargs), batch_size=1,
                                    compute=rd.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2), num_cpus=1,
                                    num_gpus=(self.cfg.num_gpus or None) if s.model else None)
            else:
                ds = ds.map_batches(_apply, fn_kwargs={"fn": s.fn, "kwargs": s.kwargs}, batch_size=1,
                                    compute=rd.TaskPoolStrategy(size=self.workers()), num_cpus=1)
        for r in ds.iter_rows():
            row = pickle.loads(r["row"])
            if "usage_error" in row:
                raise UsageError(row["usage_error"])
            yield row


def make_engine(cfg: CurateConfig, model_stages: int):
    return RayEngine(cfg, model_stages) if cfg.engine == "ray" else LocalEngine()
