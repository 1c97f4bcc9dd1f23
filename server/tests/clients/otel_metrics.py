#!/usr/bin/env python3
"""Exports metrics to an O11y server with the OpenTelemetry Python SDK's own OTLP exporters.

Two meter providers, one per exporter (gRPC, and HTTP/protobuf with gzip), each with a
resource naming service "demo/pyshop" and its own instance id ("py-grpc", "py-http"), record
the same instruments: a counter, an up-down counter, a gauge and a histogram. The providers
are shut down, which exports everything once. Exits 1 unless every export reported SUCCESS.

usage: otel_metrics.py --grpc HOST:PORT --http http://HOST:PORT/v1/metrics
"""

import argparse
import sys

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

RESULTS = []


def recording(cls):
    """A subclass of an exporter class that records each export's result."""

    class Recording(cls):
        def export(self, metrics_data, *args, **kwargs):
            result = super().export(metrics_data, *args, **kwargs)
            RESULTS.append((cls.__module__, result))
            return result

    return Recording


def record(exporter, instance):
    resource = Resource.create(
        {
            "service.name": "pyshop",
            "service.namespace": "demo",
            "service.instance.id": instance,
            "deployment.environment": "test",
        }
    )
    # A long interval: the only export is the one shutdown() makes.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("o11y.tests.python", "0.1")
    meter.create_counter("orders", unit="{order}").add(5, {"region": "eu"})
    inflight = meter.create_up_down_counter("inflight", unit="{request}")
    inflight.add(3, {"region": "eu"})
    inflight.add(-1, {"region": "eu"})
    meter.create_gauge("temperature", unit="Cel").set(21.5, {"room": "lab"})
    latency = meter.create_histogram("latency", unit="ms")
    for v in (7, 30, 120):
        latency.record(v, {"route": "/pay"})
    provider.shutdown()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--grpc", required=True)
    p.add_argument("--http", required=True)
    a = p.parse_args()
    record(recording(GrpcExporter)(endpoint=a.grpc, insecure=True, timeout=20), "py-grpc")
    record(
        recording(HttpExporter)(endpoint=a.http, compression=Compression.Gzip, timeout=20),
        "py-http",
    )
    print(RESULTS)
    if len(RESULTS) != 2 or any(r != MetricExportResult.SUCCESS for _, r in RESULTS):
        print("an export failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
