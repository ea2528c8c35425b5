"""The Prometheus text exposition of counters, gauges and fixed-bucket histograms."""

from __future__ import annotations

import threading

from vtp_runtime.metrics import Metrics


def test_histogram_renders_cumulative_buckets_sum_and_count_under_one_type() -> None:
    metrics = Metrics()
    metrics.declare("req_seconds", "histogram", "Request latency.")
    for value in (0.05, 0.1, 0.3, 7.0):  # 0.1 lands in le="0.1": buckets are upper-inclusive
        metrics.observe("req_seconds", value, (0.1, 0.5, 1.0), deployment="d1")
    lines = metrics.render().splitlines()
    assert lines == [
        "# HELP req_seconds Request latency.",
        "# TYPE req_seconds histogram",
        'req_seconds_bucket{deployment="d1",le="0.1"} 2',
        'req_seconds_bucket{deployment="d1",le="0.5"} 3',
        'req_seconds_bucket{deployment="d1",le="1"} 3',
        'req_seconds_bucket{deployment="d1",le="+Inf"} 4',
        f'req_seconds_sum{{deployment="d1"}} {0.05 + 0.1 + 0.3 + 7.0}',
        'req_seconds_count{deployment="d1"} 4',
    ]


def test_histograms_per_label_set_are_separate_series() -> None:
    metrics = Metrics()
    metrics.declare("h", "histogram", "h")
    metrics.observe("h", 1.0, (1.0,), deployment="a")
    metrics.observe("h", 2.0, (1.0,), deployment="b")
    text = metrics.render()
    assert text.count("# TYPE h histogram") == 1
    assert 'h_bucket{deployment="a",le="1"} 1' in text and 'h_bucket{deployment="b",le="1"} 0' in text
    assert 'h_count{deployment="b"} 1' in text


def test_gauge_keeps_the_last_value_and_is_typed() -> None:
    metrics = Metrics()
    metrics.declare("cache_bytes", "gauge", "Bytes loaded.")
    metrics.set("cache_bytes", 100)
    metrics.set("cache_bytes", 42)
    assert metrics.value("cache_bytes") == 42
    assert metrics.render().splitlines() == [
        "# HELP cache_bytes Bytes loaded.",
        "# TYPE cache_bytes gauge",
        "cache_bytes 42",
    ]


def test_counters_stay_as_they_were_and_labels_are_escaped() -> None:
    metrics = Metrics()
    metrics.inc("vtp_dead_letters_total", topic='a"b\\c')
    text = metrics.render()
    assert "# TYPE vtp_dead_letters_total counter" in text
    assert 'vtp_dead_letters_total{topic="a\\"b\\\\c"} 1' in text


def test_updates_from_threads_are_not_lost() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(2000):
            metrics.inc("c")
            metrics.observe("h", 0.01)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metrics.value("c") == 8000
    assert "h_count 8000" in metrics.render()
