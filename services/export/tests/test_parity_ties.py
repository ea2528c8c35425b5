"""Near ties in the detect parity gate: hand-made raw outputs through the platform's NMS."""

from __future__ import annotations

import numpy as np

from vtp_export.child.package import pair_rows
from vtp_export.child.parity import compare_detections, verdict

TOL = {"box_px": 0.05, "score": 1e-3, "min_iou": 0.99, "score_diff": 0.005, "class_agreement": 1.0, "metric": 0.01}
IMGSZ = 64


def _raw(anchors: list[tuple[float, float, float, float, float, int]], classes: int = 2) -> np.ndarray:
    """[1, 4 + classes, anchors] from (cx, cy, w, h, score, class) rows, other classes at 0."""
    raw = np.zeros((1, 4 + classes, len(anchors)), dtype=np.float32)
    for k, (cx, cy, w, h, score, cls) in enumerate(anchors):
        raw[0, :4, k] = [cx, cy, w, h]
        raw[0, 4 + cls, k] = score
    return raw


def _gate(a: np.ndarray, b: np.ndarray, conf: float = 0.001) -> tuple[dict, list[str]]:
    _, _, m = compare_detections(a, b, IMGSZ, (IMGSZ, IMGSZ), conf, TOL["score"], TOL["min_iou"])
    raw = {
        "max_box_diff_px": float(np.abs(a[:, :4] - b[:, :4]).max()),
        "max_score_diff_raw": float(np.abs(a[:, 4:] - b[:, 4:]).max()),
        "min_iou": min(m["ious"]) if m["ious"] else None,
        "max_score_diff": max(m["score_diffs"]) if m["score_diffs"] else None,
        "class_agreement": None,
        "unmatched": m["unmatched"],
    }
    return m, verdict(raw, 0.5, 0.5, TOL)


def test_overlapping_candidates_tied_in_score_are_counted_not_failed():
    # Two anchors of one class overlapping (IoU ~0.8): NMS keeps the first in score order; the
    # export swaps their order by 2e-4. A third, clear detection matches exactly.
    a = _raw([(20, 20, 20, 20, 0.5001, 0), (21, 21, 20, 20, 0.4999, 0), (50, 50, 10, 10, 0.9, 1)])
    b = a.copy()
    b[0, 4, 0], b[0, 4, 1] = 0.4999, 0.5001
    m, failures = _gate(a, b)
    assert (m["tied"], m["tied_export"], len(m["ious"]), m["unmatched"]) == (1, 1, 1, 0)
    assert failures == []


def test_a_tie_ripples_to_what_the_kept_candidate_suppresses():
    # A and B tie; B (not A) overlaps C beyond the NMS IoU. The checkpoint keeps A and C; the
    # export keeps B, which suppresses C although C scores far less: C is explained by B's tie.
    a = _raw([(20, 20, 20, 20, 0.5001, 0), (23, 20, 20, 20, 0.4999, 0), (26, 20, 20, 20, 0.3, 0)])
    b = a.copy()
    b[0, 4, 0], b[0, 4, 1] = 0.4999, 0.5001
    m, failures = _gate(a, b)
    assert (m["tied"], m["tied_export"], m["unmatched"]) == (2, 1, 0) and failures == []


def test_candidate_at_the_confidence_threshold_is_counted_not_failed():
    a = _raw([(20, 20, 10, 10, 0.2504, 0), (50, 50, 10, 10, 0.9, 1)])
    b = a.copy()
    b[0, 4, 0] = 0.2498  # out of the export's detections at conf 0.25, by 6e-4
    m, failures = _gate(a, b, conf=0.25)
    assert (m["tied"], m["tied_export"], len(m["ious"])) == (1, 0, 1) and failures == []


def test_a_class_flip_between_near_equal_class_scores_is_counted_not_failed():
    a = _raw([(20, 20, 10, 10, 0.5001, 0), (50, 50, 10, 10, 0.9, 1)])
    a[0, 5, 0] = 0.4999
    b = a.copy()
    b[0, 4, 0], b[0, 5, 0] = 0.4999, 0.5001
    m, failures = _gate(a, b)
    assert (m["tied"], m["tied_export"], len(m["ious"])) == (1, 1, 1) and failures == []
    b[0, 5, 0] = 0.9  # the other class now clearly ahead: a genuine difference
    m, failures = _gate(a, b)
    assert m["tied"] == 0 and failures != []


def test_genuine_differences_still_fail():
    a = _raw([(20, 20, 20, 20, 0.9, 0), (50, 50, 10, 10, 0.8, 1)])
    moved = a.copy()
    moved[0, 0, 0] += 5.0  # a box moved by 5 px: no candidate on the other side explains it
    m, failures = _gate(a, moved)
    assert m["tied"] == 0 and m["tied_export"] == 0 and any("IoU" in f for f in failures)
    lost = a.copy()
    lost[0, 5, 1] = 0.3  # a clear detection's score drops: not a tie, it is missing
    m, failures = _gate(a, lost)
    assert m["tied"] == 0 and any("score" in f for f in failures)
    gone = a.copy()
    gone[0, 5, 1] = 0.0  # a clear detection disappears
    m, failures = _gate(a, gone)
    assert m["tied"] == 0 and m["unmatched"] == 1 and any("only one model" in f for f in failures)


def test_a_score_tie_does_not_excuse_a_moved_box():
    # The same swap as the tie test, but the export's winner has also moved by 3 px.
    a = _raw([(20, 20, 20, 20, 0.5001, 0), (21, 21, 20, 20, 0.4999, 0)])
    b = a.copy()
    b[0, 4, 0], b[0, 4, 1] = 0.4999, 0.5001
    b[0, 0, 1] += 3.0
    m, _ = _gate(a, b)
    assert m["tied_export"] == 0


def test_predictor_check_pairs_equal_scores_by_box_not_by_order():
    want = np.array([[0, 0, 10, 10, 0.5, 0], [30, 30, 40, 40, 0.5, 0], [5, 5, 9, 9, 0.7, 1]], dtype=float)
    got = want[[1, 2, 0]]
    pairs = pair_rows(got, want)
    assert len(pairs) == 3 and all(np.array_equal(g, w) for g, w in pairs)
