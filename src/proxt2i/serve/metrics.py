"""Prometheus collectors of one app, on their own registry (two apps in one process, as in the tests, do not clash)."""

from __future__ import annotations


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.queue_depth = Gauge("proxt2i_queue_depth", "requests waiting for a batch", registry=self.registry)
        self.batch_size = Histogram("proxt2i_batch_images", "images per network batch (real rows, not padding)",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.latency = Histogram("proxt2i_request_seconds", "time from arrival to answer of a generation request",
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry)
        self.requests = Counter("proxt2i_requests", "generation requests answered, by status code", ["code"], registry=self.registry)
        self.errors = Counter("proxt2i_errors", "requests refused or failed, by kind", ["kind"], registry=self.registry)
        self.dropped = Counter("proxt2i_dropped", "requests dropped before their batch ran (client left or timed out)",
                               registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
