"""Prometheus metrics: in process and served from the file, scraped from 127.0.0.1, parsed
with prometheus_client's parser; counts equal the store's.  The Grafana dashboard only
queries metrics the exporter really emits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from lc_observe import ObsHandler, Queue, TraceStore  # noqa: E402
from lc_observe.demo_drift import PRICES, Knobs, build_graph, run_tickets  # noqa: E402
from lc_observe.sinks.prometheus import METRICS, OTHER, PREFIX, Metrics  # noqa: E402

from .loopback import free_port_url  # noqa: E402

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """``/metrics`` parsed: sample name -> {sorted label items: value}."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples, name: str, **match: str) -> float:
    return sum(
        value
        for labels, value in samples.get(name, {}).items()
        if all(dict(labels).get(k) == v for k, v in match.items())
    )


def check_against_store(samples, store: TraceStore) -> None:
    """Every count the exporter reports equals what the store holds."""
    spans = [s for s in store.spans() if s.status != "running"]
    assert total(samples, "lc_observe_runs_total") == len(spans)
    for kind in {s.kind for s in spans}:
        want = sum(s.kind == kind for s in spans)
        assert total(samples, "lc_observe_runs_total", kind=kind) == want
    errors = [s for s in spans if s.status == "error"]
    assert total(samples, "lc_observe_errors_total") == len(errors)
    for error_type in {s.error.type for s in errors}:
        want = sum(s.error.type == error_type for s in errors)
        assert total(samples, "lc_observe_errors_total", error_type=error_type) == want
    traces = list(store)
    assert total(samples, "lc_observe_traces_total") == len(traces)
    assert total(samples, "lc_observe_traces_total", status="error") == sum(
        t.status == "error" for t in traces
    )
    assert total(samples, "lc_observe_trace_latency_seconds_count") == len(traces)
    for row in store.stats(by="model"):
        assert total(samples, "lc_observe_model_calls_total", model=row.group) == row.count
        for field, kind in (("input_tokens", "input"), ("output_tokens", "output")):
            got = total(samples, "lc_observe_tokens_total", model=row.group, type=kind)
            assert got == getattr(row, field)
        assert total(samples, "lc_observe_cost_usd_total", model=row.group) == pytest.approx(
            row.cost_usd
        )
    ttfts = sum(s.ttft_ms is not None for s in spans)
    assert ttfts > 0 and total(samples, "lc_observe_ttft_seconds_count") == ttfts
    nodes = store.stats(by="graph_node")
    for row in nodes:
        assert total(samples, "lc_observe_node_runs_total", node=row.group) == row.count
    stats = store.branch_stats()
    assert stats
    for stat in stats:
        got = total(
            samples, "lc_observe_branch_decisions_total", source=stat.source,
            destination=stat.destination or "?",
        )  # fmt: skip
        assert got == stat.count
    for name, values in samples.items():  # bounded labels: never an id
        for labels in values:
            assert not any(UUID.match(str(v)) for _, v in labels), (name, labels)


def _tickets(db: str, **handler_args) -> ObsHandler:
    knobs = Knobs(seed=8, error_rate=0.2, review_rate=0.3)
    handler = ObsHandler(db, prices=PRICES, **handler_args, queue=Queue(handle_sigterm=False))
    run_tickets(build_graph(knobs), handler, 40)
    knobs.summarize = True
    run_tickets(build_graph(knobs), handler, 20)
    return handler


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("prom") / "prom.db")
    registry = prometheus_client.CollectorRegistry()
    handler = _tickets(db, prometheus=registry)
    handler.close()
    server, _thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        host, port = server.server_address[:2]
        yield db, scrape(f"http://{host}:{port}")
    finally:
        server.shutdown()
        server.server_close()


def test_in_process_metrics_equal_the_store(in_process) -> None:
    db, samples = in_process
    with TraceStore(db) as store:
        check_against_store(samples, store)


@pytest.mark.slow
def test_metrics_served_from_the_file_equal_the_store_while_it_grows(tmp_path) -> None:
    db = str(tmp_path / "file.db")
    _tickets(db).close()
    url = free_port_url()
    port = url.rsplit(":", 1)[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "lc_observe.cli", "metrics", "--db", db, "--port", port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()  # printed once the port is bound
        assert "Serving Prometheus metrics" in line, server.stderr.read()
        with TraceStore(db) as store:
            check_against_store(scrape(url), store)
        # A writer keeps writing while the exporter reads (WAL: no lock either way).
        handler = _tickets(db)
        assert handler.flush(60)
        with TraceStore(db) as store:
            check_against_store(scrape(url), store)
        handler.close()
    finally:
        server.terminate()
        server.wait(30)


def test_labels_stay_bounded() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry, max_label_values=3)
    for i in range(10):
        metrics.branch("router", [f"node{i}"])
    samples = {
        dict(s.labels)["destination"]: s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "lc_observe_branch_decisions_total"
    }
    assert samples == {"node0": 1, "node1": 1, "node2": 1, OTHER: 7}


def test_handlers_sharing_a_registry_share_the_metrics(tmp_path) -> None:
    registry = prometheus_client.CollectorRegistry()
    first = ObsHandler(tmp_path / "a.db", prometheus=registry)
    second = ObsHandler(tmp_path / "b.db", prometheus=registry)  # no "Duplicated timeseries"
    first.close()
    second.close()


def emitted_names() -> set[str]:
    names = set()
    for name, (kind, _, _) in METRICS.items():
        if kind == "counter":
            names.add(PREFIX + name + "_total")
        else:
            names.update(PREFIX + name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_the_exporter_emits_every_metric_it_declares(in_process) -> None:
    _, samples = in_process
    assert emitted_names() <= set(samples), emitted_names() - set(samples)


def test_grafana_dashboard_queries_only_emitted_metrics(in_process) -> None:
    _, samples = in_process
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    used = set()
    for expr in exprs:
        names = set(re.findall(r"\b(lc_observe_[a-z_]+)", expr))
        assert names, f"panel query uses no lc_observe metric: {expr}"
        used |= names
    assert used <= set(samples), f"queried but never emitted: {used - set(samples)}"
    labels = defaultdict(set)
    for name, values in samples.items():
        for label_items in values:
            labels[name].update(k for k, _ in label_items)
    for expr in exprs:  # every label a query groups by exists on its metric
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            for label in (x.strip() for x in grouping.split(",")):
                metric = re.findall(r"\b(lc_observe_[a-z_]+)", expr)[0]
                assert label in labels[metric] | {"le"}, (expr, label)
    assert {"tokens_total", "branch_decisions_total", "ttft_seconds_bucket"} <= {
        name[len(PREFIX) :] for name in used
    }


def test_metrics_command_explains_a_missing_file(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lc_observe.cli", "metrics", "--db", str(tmp_path / "no.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "no lc_observe database" in done.stderr


def test_prometheus_true_counts_in_the_default_registry(tmp_path) -> None:
    registry = prometheus_client.REGISTRY
    labels = {"kind": "chat_model", "status": "ok"}
    before = registry.get_sample_value("lc_observe_runs_total", labels) or 0.0
    handler = ObsHandler(tmp_path / "default.db", prices=PRICES, prometheus=True)
    run_tickets(build_graph(Knobs(seed=12, error_rate=0.0, review_rate=0.0)), handler, 3)
    handler.close()
    assert registry.get_sample_value("lc_observe_runs_total", labels) - before == 6
