"""Prometheus metrics for one app instance (its own registry, so several apps in one process stay apart).

Counted as they happen: bytes received, uploads created, deliveries by outcome and their duration,
relays by outcome, Immich errors by kind. Read at scrape time: uploads by state (from the database)
and the delivery queue's length. Served at `/metrics` only when METRICS_TOKEN is set, to
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.bytes_received = Counter("immich_drop_received_bytes", "Upload bytes written to staging", registry=self.registry)
        self.uploads_created = Counter("immich_drop_uploads_created", "tus uploads created", registry=self.registry)
        self.deliveries = Counter("immich_drop_deliveries", "Deliveries to Immich by outcome", ["outcome"],
                                  registry=self.registry)
        self.delivery_seconds = Histogram("immich_drop_delivery_seconds", "Time from claim to Immich's answer",
                                          buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
                                          registry=self.registry)
        self.relays = Counter("immich_drop_relays", "Videos relayed to Immich while arriving, by outcome (sent, abandoned)",
                              ["outcome"], registry=self.registry)
        self.immich_errors = Counter("immich_drop_immich_errors", "Immich errors by kind", ["kind"], registry=self.registry)
        self.uploads = Gauge("immich_drop_uploads", "Uploads by state", ["state"], registry=self.registry)
        self.queue_length = Gauge("immich_drop_delivery_queue_length", "Uploads waiting for a delivery worker",
                                  registry=self.registry)

    def render(self, by_state: dict[str, int], queue_length: int) -> bytes:
        for state, count in by_state.items():
            self.uploads.labels(state=state).set(count)
        self.queue_length.set(queue_length)
        return generate_latest(self.registry)
