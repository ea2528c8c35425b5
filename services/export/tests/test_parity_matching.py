"""Detection matching of the parity gate (numpy only; the rest runs in the integration tests)."""

from __future__ import annotations

import numpy as np

from vtp_export.child.parity import class_decisions, match, verdict

TOL = {"box_px": 0.05, "score": 1e-3, "min_iou": 0.99, "score_diff": 0.005, "class_agreement": 1.0, "metric": 0.01}


def test_same_box_in_two_classes_matches_by_class():
    ref = np.array([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.8, 1]], dtype=float)
    got = np.array([[0, 0, 10, 10, 0.8, 1], [0, 0, 10, 10, 0.9, 0]], dtype=float)
    m = match(ref, got, conf=0.001, margin=0.02)
    assert m["same_class"] == [True, True] and m["unmatched"] == 0 and min(m["ious"]) > 0.999


def test_a_missing_detection_counts_only_when_clearly_above_the_threshold():
    ref = np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.0105, 0]], dtype=float)
    got = np.array([[0, 0, 10, 10, 0.9, 0]], dtype=float)
    assert match(ref, got, conf=0.01, margin=0.02)["unmatched"] == 0
    assert match(ref[:1], np.zeros((0, 6)), conf=0.01, margin=0.02)["unmatched"] == 1


def test_verdict_names_each_exceeded_tolerance():
    raw = {
        "max_box_diff_px": 5.0,
        "max_score_diff_raw": 0.0,
        "min_iou": 0.5,
        "max_score_diff": 0.0,
        "class_agreement": 1.0,
        "unmatched": 0,
    }
    failures = verdict(raw, 0.5, 0.4, TOL)
    assert len(failures) == 3 and "px" in failures[0] and "IoU" in failures[1] and "mAP50-95" in failures[2]
    clean = {**raw, "max_box_diff_px": 0.001, "min_iou": 1.0}
    assert verdict(clean, 0.5, 0.5, TOL) == []


def test_class_agreement_counts_only_clear_decisions():
    # 3 classes, 3 anchors: a clear class 0, a near tie (flips in the export), a clear class 2.
    a = np.zeros((1, 7, 3), dtype=np.float32)
    a[0, 4:, 0] = [0.9, 0.1, 0.0]
    a[0, 4:, 1] = [0.5000, 0.5001, 0.0]
    a[0, 4:, 2] = [0.0, 0.2, 0.8]
    b = a.copy()
    b[0, 4:, 1] = [0.5001, 0.5000, 0.0]
    assert class_decisions(a, b, conf=0.001, margin=1e-3) == (2, 2)
    b[0, 4:, 2] = [0.0, 0.9, 0.8]
    assert class_decisions(a, b, conf=0.001, margin=1e-3) == (2, 1)
