"""Domain and library errors as problem+json."""

from __future__ import annotations

from vtp_datasets.domain.model import (
    DatasetNameTaken,
    DatasetNotFound,
    DatasetsError,
    LayoutNotPossible,
    SnapshotNotFound,
    TaskNotInDataset,
    TaskRequired,
    VersionTagTaken,
)
from vtp_dice.format import DatasetRejected
from vtp_dice.splits import SplitError
from vtp_runtime.http.problems import ProblemError

_DOMAIN: dict[type[DatasetsError], tuple[int, str, str]] = {
    DatasetNotFound: (404, "dataset_not_found", "Dataset not found"),
    SnapshotNotFound: (404, "snapshot_not_found", "Snapshot not found"),
    DatasetNameTaken: (409, "dataset_name_taken", "A dataset with this name exists in the project"),
    VersionTagTaken: (409, "version_tag_taken", "This version tag is taken"),
    TaskNotInDataset: (422, "task_not_in_snapshot", "The snapshot has no annotations for this task"),
    LayoutNotPossible: (422, "format_not_possible", "The snapshot cannot be written in this format"),
}


def as_problem(exc: Exception) -> ProblemError:
    """The problem document for an error raised by a handler."""
    if isinstance(exc, DatasetRejected):
        code = "archive_rejected" if exc.kind == "archive" else "dataset_invalid"
        title = "The archive is unsafe or unreadable" if exc.kind == "archive" else "The dataset is not valid"
        errors = [p.as_dict() for p in exc.problems]
        return ProblemError(422, code, title, f"{len(errors)} problem(s); nothing was stored.", errors)
    if isinstance(exc, SplitError):
        errors = [p.as_dict() for p in exc.problems]
        return ProblemError(422, "split_invalid", "The split cannot be applied", f"{len(errors)} problem(s).", errors)
    if isinstance(exc, TaskRequired):  # the choices also machine-readable, on the `task` parameter
        choice = {"pointer": "#/query/task", "code": "task_required", "message": f"one of: {', '.join(exc.tasks)}"}
        return ProblemError(
            422, "task_required", "Choose the task to download", str(exc), [choice | {"allowed": exc.tasks}]
        )
    status, code, title = _DOMAIN[type(exc)]  # type: ignore[index]
    return ProblemError(status, code, title, str(exc) or None)


HANDLED = (DatasetsError, DatasetRejected, SplitError)
