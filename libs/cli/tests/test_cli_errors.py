"""Expected failures: one line plus the problem table, never a traceback, and the documented exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_fakes import JOB_ID, FakeClient, not_found, problem_422

from vtp_cli.errors import ExitCode, exit_code
from vtp_client.errors import ApiError, ConnectionFailed, FeedError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ApiError(401, "unauthorized", "Authentication required"), ExitCode.AUTH),
        (ApiError(403, "forbidden", "Forbidden"), ExitCode.AUTH),
        (FeedError(401, "token_revoked", "the token was revoked", close_code=4401), ExitCode.AUTH),
        (ApiError(404, "job_not_found", "Job not found"), ExitCode.NOT_FOUND),
        (ApiError(409, "job_finished", "The job has already finished"), ExitCode.FAILED),
        (ApiError(422, "validation_failed", "Validation failed"), ExitCode.FAILED),
        (ApiError(429, "rate_limited", "Too many requests", retry_after=2), ExitCode.FAILED),
        (ApiError(503, "unavailable", "Service unavailable"), ExitCode.FAILED),
        (ConnectionFailed("http://x", "refused", 4), ExitCode.FAILED),
    ],
)
def test_exit_codes(error: Exception, code: ExitCode) -> None:
    assert exit_code(error) == code


def test_not_found_exits_3_with_one_line(fake: FakeClient, vtp: Any) -> None:
    fake.fail["jobs.get"] = not_found("job")
    result = vtp("jobs", "show", JOB_ID)
    assert result.exit_code == 3
    assert result.stderr.strip() == "error: Job not found: no such id (job_not_found, HTTP 404)"
    assert "Traceback" not in result.output


def test_auth_failure_exits_4_with_a_hint(fake: FakeClient, vtp: Any) -> None:
    fake.fail["jobs.list"] = ApiError(401, "unauthorized", "Authentication required", "token revoked")
    result = vtp("jobs", "ls")
    assert result.exit_code == 4
    assert "vtp login" in result.stderr


def test_rate_limited_says_when_to_retry(fake: FakeClient, vtp: Any) -> None:
    fake.fail["deployments.list"] = ApiError(429, "rate_limited", "Too many requests", retry_after=3)
    result = vtp("deployments", "ls")
    assert result.exit_code == 1
    assert "retry after 3 s" in result.stderr


def test_unreachable_gateway_exits_1(fake: FakeClient, vtp: Any) -> None:
    fake.fail["datasets.list"] = ConnectionFailed("http://gateway.test", "ConnectError: refused", 4)
    result = vtp("data", "ls")
    assert result.exit_code == 1
    assert "cannot reach http://gateway.test" in result.stderr


def test_a_bad_id_is_a_usage_error(fake: FakeClient, vtp: Any) -> None:
    result = vtp("jobs", "show", "not-an-id")
    assert result.exit_code == 2
    assert not fake.calls


def test_no_token_exits_4(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, vtp: Any) -> None:
    monkeypatch.delenv("VTP_TOKEN", raising=False)
    monkeypatch.setenv("VTP_CONFIG", str(tmp_path / "none.json"))
    result = vtp("jobs", "ls")
    assert result.exit_code == 4
    assert "no token: log in first" in result.stderr


def test_problems_are_one_table_and_json_mode_prints_the_problem_document(
    fake: FakeClient, vtp: Any, tmp_path: Any
) -> None:
    fake.fail["datasets.upload"] = problem_422(
        "dataset_invalid",
        {"file": "annotations_detection.json", "pointer": "/images/0/annotations/0/bbox",
         "code": "bbox_out_of_bounds", "message": "box outside the image"},
        {"file": "images/cat/001.jpg", "code": "image_undecodable", "message": "not an image"},
    )  # fmt: skip
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"PK")
    result = vtp("data", "upload", str(archive))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]  # the rest: the upload bar, the table
    assert errors == ["error: The dataset is not valid: 2 problem(s) (dataset_invalid, HTTP 422)"]
    header = next(line for line in lines if "pointer" in line)
    assert [c.strip() for c in header.strip("┃│ ").split("┃")] == ["file", "pointer", "code", "message"]
    row = next(line for line in lines if "bbox_out_of_bounds" in line)
    assert "annotations_detection.json" in row and "/images/0/annotations/0/bbox" in row
    assert any("images/cat/001.jpg" in line and "image_undecodable" in line for line in lines)

    result = vtp("data", "upload", str(archive), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == "dataset_invalid"


def test_an_unexpected_exception_is_not_swallowed(fake: FakeClient, vtp: Any) -> None:
    fake.fail["jobs.get"] = RuntimeError("a bug")
    result = vtp("jobs", "show", JOB_ID)
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_human_figures() -> None:
    from vtp_cli.output import counts, duration, pairs

    assert [duration(s) for s in (3, 59.6, 200, 46392)] == ["3 s", "1 min", "3 min 20 s", "12 h 53 min"]
    assert pairs({"dynamic": False, "opset": None, "imgsz": 64}) == "dynamic=false, imgsz=64"
    assert counts({"val": 5, "test": 0, "train": 19}) == "train 19, val 5, test 0"
