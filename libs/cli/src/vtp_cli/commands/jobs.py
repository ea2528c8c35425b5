"""`vtp jobs`: list, show, watch, logs, cancel, restart, metrics."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.commands.train import finish
from vtp_cli.follow import metric_order, val_name
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, items, num, out, print_json, when
from vtp_cli.plot import chart
from vtp_cli.render import job_table

jobs_app = typer.Typer(
    name="jobs", help="Training jobs: list, show, watch, logs, cancel, restart, metrics.", no_args_is_help=True
)
JobArg = Annotated[uuid.UUID, typer.Argument(help="Job id.")]
LOG_PAGE = 1000


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app)


@jobs_app.command("ls")
def ls(
    status: Annotated[str | None, typer.Option("--status", help="queued, running, completed, failed, ...")] = None,
    dataset: Annotated[uuid.UUID | None, typer.Option("--dataset", help="Only jobs of this dataset.")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The project's jobs, newest first."""
    with session.connect() as client:
        page = client.jobs.list(status=status, dataset_id=dataset, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "name", "status", "model", "epoch", "mAP50-95", "created")
    for j in items(page):
        best = j.get("best_metrics") or {}
        epochs = f"{j.get('epoch', 0)}/{j.get('total_epochs') or '-'}"
        created = when((j.get("timings") or {}).get("created_at"))
        table.add_row(str(j["id"]), j["name"], j["status"], j["model"], epochs, num(best.get("mAP50-95")), created)
    out.print(table)


@jobs_app.command("show")
def show(job_id: JobArg, json_out: JsonOpt = False) -> None:
    """One job: status, progress, best metrics, checkpoints, error."""
    with session.connect() as client:
        job = client.jobs.get(job_id)
    if json_out:
        print_json(job)
        return
    out.print(job_table(as_data(job)))


@jobs_app.command("watch")
def watch(job_id: JobArg, json_out: JsonOpt = False) -> None:
    """Follow a job live until it ends (Ctrl-C: cancel it or stop watching); exit 1 unless it completed."""
    with session.connect() as client:
        finish(client, str(job_id), True, json_out)


def _print_lines(lines: list[dict[str, Any]]) -> None:
    styles = {"error": "red", "warning": "yellow", "debug": "dim"}
    for line in lines:
        level = str(line.get("level", "info"))
        out.print(
            f"{when(line.get('time'))} {level:<7} {line.get('message', '')}", style=styles.get(level), markup=False
        )


@jobs_app.command("logs")
def logs(
    job_id: JobArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    level: Annotated[str | None, typer.Option("--level", help="Only this level: debug, info, warning, error.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The job's trainer output (all attempts), oldest first; `-f` follows it live."""
    with session.connect() as client:
        lines: list[dict[str, Any]] = []
        while True:  # every page: a job's log can be longer than one
            page = as_data(client.jobs.logs(job_id, level=level, limit=LOG_PAGE, offset=len(lines)))
            lines += page["lines"]
            if len(page["lines"]) < LOG_PAGE:
                break
        if json_out and not follow:
            print_json({"job_id": str(job_id), "lines": lines})
            return
        if json_out:
            for line in lines:
                print_json(line)
        else:
            _print_lines(lines)
        if not follow:
            return
        seen = max((str(line.get("time")) for line in lines), default="")
        for event in client.feed.follow_job(job_id, types=["log", "job_status", "error"]):
            message = as_data(event)
            if message.get("type") != "log":
                continue
            fresh = [
                line
                for line in message.get("data", {}).get("lines", [])
                if str(line.get("time")) > seen and (level is None or line.get("level") == level)
            ]
            if json_out:
                for line in fresh:
                    print_json(line)
            else:
                _print_lines(fresh)


@jobs_app.command("cancel")
def cancel(
    job_id: JobArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept with the job).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Ask the runner to stop the job (a finished job: exit 1, `job_finished`)."""
    with session.connect() as client:
        job = client.jobs.cancel(job_id, reason=reason)
    if json_out:
        print_json(job)
        return
    out.print(f"cancel requested for job {job_id}; status {as_data(job)['status']}")


@jobs_app.command("restart")
def restart(
    job_id: JobArg,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue from the last checkpoint, or start over.")
    ] = True,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the new attempt live.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a finished job again (a new attempt)."""
    with session.connect() as client:
        job = as_data(client.jobs.restart(job_id, resume=resume))
        if follow:
            finish(client, str(job_id), True, json_out)
            return
    if json_out:
        print_json(job)
        return
    out.print(f"job {job_id} restarted: attempt {job['attempt']}, status {job['status']}")


def metric_series(epochs: list[dict[str, Any]], key: str) -> dict[str, list[tuple[float, float]]]:
    """{metric name: [(epoch, value), ...]} of `train_losses` or `val_metrics`."""
    series: dict[str, list[tuple[float, float]]] = {}
    for e in epochs:
        for name, value in (e.get(key) or {}).items():
            if isinstance(value, int | float):
                series.setdefault(name, []).append((float(e["epoch"]), float(value)))
    return series


@jobs_app.command("metrics")
def metrics(
    job_id: JobArg,
    plot: Annotated[bool, typer.Option("--plot", help="Draw the loss and metric curves in the terminal.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Every epoch's losses and validation metrics (the latest attempt); `--plot` draws the curves."""
    with session.connect() as client:
        data = as_data(client.jobs.metrics(job_id))
    if json_out:
        print_json(data)
        return
    attempts = data.get("attempts") or []
    epochs = attempts[-1]["epochs"] if attempts else []
    if not epochs:
        out.print(f"job {job_id} has no finished epoch yet")
        return
    losses = list(epochs[-1].get("train_losses") or {})
    shown = metric_order(epochs[-1].get("val_metrics") or {})
    title = f"job {job_id}, attempt {attempts[-1]['attempt']}"
    names = [val_name(m, losses) for m in shown]
    table = Table("epoch", *losses, *names, "lr", "seconds", title=title, title_justify="left")
    for e in epochs:
        row = [str(e["epoch"])]
        row += [num((e.get("train_losses") or {}).get(k), 4) for k in losses]
        row += [num((e.get("val_metrics") or {}).get(k), 4) for k in shown]
        row += [num(e.get("learning_rate"), 5), num(e.get("epoch_seconds"), 1)]
        table.add_row(*row)
    out.print(table)
    if plot:
        out.print(chart("training losses", metric_series(epochs, "train_losses")))
        val = metric_series(epochs, "val_metrics")
        scores = [m for m in shown if m in val and m not in losses]  # the 0..1 scores; val losses go with losses
        out.print(chart("validation metrics", {k: val[k] for k in scores}))
