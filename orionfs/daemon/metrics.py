"""The Prometheus endpoint of a mount process (``--metrics ADDR``; off unless asked for).

``ADDR`` is ``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT``; without a host it binds 127.0.0.1 (loopback
unless told otherwise; port 0 picks a free one, logged and shown by ``orionfs status``). Metrics, all
``orionfs_*``, in a registry of the mount's own (not prometheus_client's global one):

- ``orionfs_http_requests_total{method,route,status}``,
  ``orionfs_http_request_duration_seconds{method,route}`` (until the answer's headers), and
  ``orionfs_http_sent_bytes_total`` / ``orionfs_http_received_bytes_total`` (bodies, as the
  Content-Length headers say): every answer the session gets, observed through requests' response
  hooks; a route is the URL path with each number as ``{id}``. A request retried by the transport
  counts once, with its final answer; a failure without an answer (timeout, refused) is not seen.
- ``orionfs_fuse_operations_total{operation}``, ``orionfs_fuse_operation_errors_total{operation}``,
  ``orionfs_fuse_operation_duration_seconds{operation}`` (a summary: count and sum),
  ``orionfs_fuse_calls_in_flight``, ``orionfs_fuse_workers`` (libfuse threads that served a
  call): from the mount's call registry (orionfs.fuse.calls).
- ``orionfs_cache_hits_total``, ``orionfs_cache_misses_total``, ``orionfs_cache_entries{kind}``,
  ``orionfs_cache_requests_total{method}``, ``orionfs_data_cache_bytes``.
- ``orionfs_uploads_in_flight``, ``orionfs_uploads_pending``, ``orionfs_uploads_retrying``,
  ``orionfs_uploads_failed_total``, ``orionfs_uploads_total``, ``orionfs_recovery_files``.
- ``orionfs_log_messages_total{level}``, ``orionfs_uptime_seconds``, ``orionfs_mount_info``.

A number without a source in this mount (no data cache, no upload queue) is left out, not zero.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from orionfs.daemon import MountError
from orionfs.daemon.probe import MountProbe

logger = logging.getLogger(__name__)

#: The host ``--metrics PORT`` binds.
DEFAULT_METRICS_HOST = "127.0.0.1"
#: Buckets (seconds) of the request latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_NUMBER_SEGMENT = re.compile(r"/\d+(?=/|$)")


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of ``PORT``, ``:PORT``, ``HOST:PORT`` or ``[IPV6]:PORT``; MountError if it
    is not one."""
    value = text.strip()
    host, port = DEFAULT_METRICS_HOST, value
    if value.startswith("["):
        inner, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise MountError(f"--metrics: not an address: {text!r} (e.g. 9101, 127.0.0.1:9101)")
        host, port = inner, rest[1:]
    elif ":" in value:
        host, _, port = value.rpartition(":")
        host = host or DEFAULT_METRICS_HOST
    if not port.isdigit() or int(port) > 65535:
        raise MountError(f"--metrics: not an address: {text!r} (e.g. 9101, 127.0.0.1:9101)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def route_of(url: str) -> str:
    """The route label of a request URL: its path, each number segment as ``{id}``."""
    path = urllib.parse.urlsplit(url).path or "/"
    return _NUMBER_SEGMENT.sub("/{id}", path)


class HttpMetrics:
    """Request counts, latency and bytes, fed by requests' response hooks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "orionfs_http_requests",
            "Requests to the Orion server, by method, route and status (final answers)",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "orionfs_http_request_duration_seconds",
            "Seconds until the answer's headers, by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sent = Counter(
            "orionfs_http_sent_bytes", "Request body bytes sent (Content-Length)", registry=registry
        )
        self.received = Counter(
            "orionfs_http_received_bytes",
            "Answer body bytes received (Content-Length)",
            registry=registry,
        )

    def observe(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A requests response hook: count one answer (returns it unchanged)."""
        try:
            request = response.request
            method = request.method or "GET"
            route = route_of(request.url or "")
            self.requests.labels(method, route, str(response.status_code)).inc()
            self.latency.labels(method, route).observe(response.elapsed.total_seconds())
            self.sent.inc(_length(request.headers))
            self.received.inc(_length(response.headers))
        except Exception:  # noqa: BLE001 - metrics never break a request
            logger.debug("request not counted", exc_info=True)
        return response

    def attach(self, session: Any) -> None:
        """Observe every answer ``session`` (an OrionSession) gets, on both of its connection
        pools: the retrying one and the one for streamed bodies (never retried)."""
        # The pools are the session's own attributes; the client has no public hook for them.
        for name in ("_http", "_http_once"):
            http = getattr(session, name, None)
            if http is not None:
                http.hooks.setdefault("response", []).append(self.observe)


def _length(headers: Mapping[str, str]) -> int:
    try:
        return max(0, int(headers.get("Content-Length") or 0))
    except ValueError:
        return 0


class MountCollector(Collector):
    """The mount's numbers, read from its probe at each scrape."""

    def __init__(self, probe: MountProbe, labels: Mapping[str, str]) -> None:
        self.probe = probe
        self.labels = dict(labels)

    def collect(self) -> Iterator[Any]:  # noqa: C901 - one family after another
        snap = self.probe.snapshot()
        info = GaugeMetricFamily(
            "orionfs_mount_info", "The mount (value 1)", labels=list(self.labels)
        )
        info.add_metric(list(self.labels.values()), 1)
        yield info
        yield GaugeMetricFamily("orionfs_uptime_seconds", "Seconds since the mount started",
                                value=snap.uptime)  # fmt: skip

        calls = CounterMetricFamily(
            "orionfs_fuse_operations", "FUSE calls by operation", labels=["operation"]
        )
        errors = CounterMetricFamily(
            "orionfs_fuse_operation_errors",
            "FUSE calls answered with an errno, by operation",
            labels=["operation"],
        )
        seconds = SummaryMetricFamily(
            "orionfs_fuse_operation_duration_seconds",
            "Seconds spent in FUSE calls, by operation",
            labels=["operation"],
        )
        for name, (count, failed, spent) in sorted(snap.operations.items()):
            calls.add_metric([name], count)
            errors.add_metric([name], failed)
            seconds.add_metric([name], count_value=count, sum_value=spent)
        yield calls
        yield errors
        yield seconds
        yield GaugeMetricFamily(
            "orionfs_fuse_calls_in_flight", "FUSE calls being served", value=snap.in_flight
        )
        yield GaugeMetricFamily(
            "orionfs_fuse_workers", "libfuse worker threads that served a call", value=snap.workers
        )

        cache = snap.cache
        yield CounterMetricFamily(
            "orionfs_cache_hits", "Metadata lookups and listings answered by the cache",
            value=int(cache.get("hits", 0)),
        )  # fmt: skip
        yield CounterMetricFamily(
            "orionfs_cache_misses", "Metadata lookups and listings that needed the server",
            value=int(cache.get("misses", 0)),
        )  # fmt: skip
        entries = GaugeMetricFamily(
            "orionfs_cache_entries", "Entries in the metadata cache, by kind", labels=["kind"]
        )
        for kind, key in (("stat", "stat_entries"), ("listing", "listings"),
                          ("listed", "listed_entries")):  # fmt: skip
            entries.add_metric([kind], int(cache.get(key, 0)))
        yield entries
        by_method = CounterMetricFamily(
            "orionfs_cache_requests",
            "Requests the cache made, by session method (a listing of any size counts once)",
            labels=["method"],
        )
        for method, count in sorted(dict(cache.get("requests", {})).items()):
            by_method.add_metric([method], int(count))
        yield by_method
        if snap.data_cache_bytes is not None:
            yield GaugeMetricFamily(
                "orionfs_data_cache_bytes", "Bytes in the data cache on disk",
                value=snap.data_cache_bytes,
            )  # fmt: skip

        if snap.uploads is not None:
            up = snap.uploads
            yield GaugeMetricFamily(
                "orionfs_uploads_in_flight", "Uploads running now (queued and streamed)",
                value=int(up.get("uploading", 0)) + int(up.get("streaming", 0)),
            )  # fmt: skip
            yield GaugeMetricFamily(
                "orionfs_uploads_pending", "Closed files waiting for their upload",
                value=int(up.get("queued", 0)),
            )  # fmt: skip
            yield GaugeMetricFamily(
                "orionfs_uploads_pending_bytes", "Bytes of the files waiting for their upload",
                value=int(up.get("queued_bytes", 0)),
            )  # fmt: skip
            yield GaugeMetricFamily(
                "orionfs_uploads_retrying", "Queued uploads whose last attempt failed",
                value=int(up.get("retrying", 0)),
            )  # fmt: skip
            yield CounterMetricFamily(
                "orionfs_uploads_failed", "Queued uploads given up (data in the recovery folder)",
                value=int(up.get("failed", 0)),
            )  # fmt: skip
            yield CounterMetricFamily(
                "orionfs_uploads", "Queued uploads done", value=int(up.get("uploaded", 0))
            )
        if snap.recovery_files is not None:
            yield GaugeMetricFamily(
                "orionfs_recovery_files",
                "Files in the recovery folder (data whose upload finally failed)",
                value=snap.recovery_files,
            )
        logs = CounterMetricFamily(
            "orionfs_log_messages", "Log records by level (WARNING and above)", labels=["level"]
        )
        for level, count in sorted(snap.log_counts.items()):
            logs.add_metric([level.lower()], count)
        yield logs


class MetricsServer:
    """The endpoint: a registry with the mount's collector and the HTTP metrics, served on a
    thread of prometheus_client's."""

    def __init__(self, probe: MountProbe, labels: Mapping[str, str]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = HttpMetrics(self.registry)
        self.registry.register(MountCollector(probe, labels))
        self.address: tuple[str, int] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, address: str) -> tuple[str, int]:
        """Serve on ``address`` (see ``parse_address``); returns the bound (host, port).
        MountError if it cannot bind."""
        host, port = parse_address(address)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise MountError(f"--metrics: cannot listen on {address}: {error.strerror}") from error
        bound = self._server.server_address
        self.address = (host, int(bound[1]))
        if not is_loopback(host):
            logger.warning("metrics served on %s:%s, beyond this machine", host, bound[1])
        return self.address

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
