"""`make demo`: the whole journey on the local stack, one `vtp` command per step.

A project and its token, a local webhook receiver subscribed to every event, a generated dataset
uploaded and snapshotted, a short CPU training followed live, an ONNX export with its parity report,
a deployment, predictions on Ultralytics' own photos and on the dataset's validation images (drawn
and saved), every webhook of the chain verified, the deployment's usage, and what to try next. Each
step prints the command it runs, its output, and how long it took. What the CLI does not do
(creating a project and its token, which needs the admin token; the receiver; looking up the ids
the commands printed) goes through the Python client, `vtp_client`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from demo_webhooks import Receiver

from vtp_client import ApiError, Client
from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.config import StackConfig

EPOCHS, IMGSZ = 15, 128  # about a minute on two CPU cores
VAL_IMAGES = 8
DEPLOYMENT = "demo-shapes"
VTP = str(Path(sys.executable).with_name("vtp"))


class Journey:
    """Runs the steps, prints each command and its output, and keeps each step's duration."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.timings: list[tuple[str, float]] = []

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        print(f"\n\033[1m== {len(self.timings) + 1}. {title}\033[0m", flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            self.timings.append((title, seconds))
            print(f"   ({seconds:.1f} s)", flush=True)

    def vtp(self, *args: str, capture: bool = False) -> str:
        """Run `vtp ARGS`, its output going to the terminal as it comes (and returned when `capture`)."""
        print(f"$ vtp {shlex.join(_masked(args))}", flush=True)
        if not capture:  # the terminal itself, so progress bars draw as they would for a user
            # Ctrl-C is the command's to answer (vtp train asks: cancel the job or stop watching?).
            # A Python handler, not SIG_IGN: handlers are reset in the child, an ignored signal would stay ignored.
            previous = signal.signal(signal.SIGINT, lambda number, frame: None)
            try:
                code = subprocess.call([VTP, *args], env=self.env)
            finally:
                signal.signal(signal.SIGINT, previous)
            output = ""
        else:
            wide = self.env | {"COLUMNS": "200"}  # a long line (a secret) must not be wrapped
            done = subprocess.run([VTP, *args], env=wide, capture_output=True, text=True)
            code, output = done.returncode, done.stdout + done.stderr
            print(output, end="", flush=True)
        if code != 0:
            raise SystemExit(f"`vtp {shlex.join(args)}` exited with {code}")
        return output


def _masked(args: tuple[str, ...]) -> list[str]:
    """The command as printed: a token after `--token` shortened to its prefix."""
    return [f"{a[:12]}..." if i and args[i - 1] == "--token" else a for i, a in enumerate(args)]


def health(admin: Client) -> None:
    report = admin.health()
    print(f"platform health: {report.status}")
    for name, service in sorted(report.services.items()):
        checks = ", ".join(f"{dep} {r['status']}" for dep, r in service.get("checks", {}).items())
        print(f"  {name:<15} {service['status']:<5} {checks}")


def validation_images(vtp: Client, dataset_id: str, root: Path, out: Path, count: int) -> list[Path]:
    """The first `count` images the snapshot put in `val`, copied from the generated dataset."""
    snapshot = vtp.datasets.snapshots(dataset_id)[-1]
    splits: dict[str, str] = vtp.datasets.manifest(dataset_id, snapshot.id)["splits"]
    names = sorted(name for name, split in splits.items() if split == "val")[:count]
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in names:
        copy = out / Path(name).name
        shutil.copyfile(root / "images" / name, copy)
        copies.append(copy)
    return copies


def ultralytics_photos() -> list[Path]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    return [assets / "bus.jpg", assets / "zidane.jpg"]


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def usage_written(vtp: Client, deployment_id: str) -> None:
    """Wait until the predictions are counted: the inference service writes usage every few seconds."""

    def counted() -> bool:
        return vtp.usage.deployment(deployment_id, granularity="minute").total.images > 0

    wait_for(counted, 30)


def next_steps(workdir: Path, dataset_id: str, job_id: str, export_id: str) -> None:
    config = workdir / "config.json"
    print(
        f"""
What to try next (the demo's login is in {config}; `vtp login URL --token ...` makes your own):
  export VTP_CONFIG={config}
  vtp jobs show {job_id}                 # the result table
  vtp jobs metrics {job_id} --plot       # the curves in the terminal
  vtp train data={dataset_id} model={job_id} epochs=10 imgsz={IMGSZ}   # fine-tune from this job's best
  vtp export {job_id} --format openvino  # another format, with its own parity report
  vtp deployments ls
  vtp keys create {DEPLOYMENT} --name app --per-second 5   # an API key that may only call predict
  vtp predict {DEPLOYMENT} your-photos/ --save out/
  vtp exports download {export_id}       # the package: model, metadata.json, predict.py
  vtp hooks ls
  make status   # every endpoint; the API is browsable at /api/docs"""
    )


def main() -> int:
    cfg = StackConfig()
    workdir = cfg.run_path / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # The demo logs in with its own config file, never touching the user's saved login.
    env = {k: v for k, v in os.environ.items() if k not in ("VTP_URL", "VTP_TOKEN")}
    env["VTP_CONFIG"] = str(workdir / "config.json")
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "120")  # a log or a pipe: tables as wide as a usual terminal
    journey = Journey(workdir, env)
    admin_token = (cfg.run_path / "admin-token").read_text().strip()
    receiver = Receiver().start()
    started = time.monotonic()
    try:
        with Client(cfg.gateway_url, admin_token) as admin:
            with journey.step("The platform"):
                health(admin)
            with journey.step("A project and its token (admin, through the Python client), then `vtp login`"):
                project = admin.projects.create(f"Demo {uuid.uuid4().hex[:6]}")
                issued = admin.tokens.create(project.id, "demo")
                print(f"created project {project.slug} and token {issued.prefix}... (shown once; stored hashed)")
                journey.vtp("login", cfg.gateway_url, "--token", issued.token)
                journey.vtp("whoami")
        with Client(cfg.gateway_url, issued.token) as vtp:
            journey_steps(journey, vtp, receiver, cfg)
    except (ApiError, SystemExit) as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        receiver.stop()
    print("\nstep timings:")
    for title, seconds in journey.timings:
        print(f"  {seconds:>6.1f} s  {title}")
    print(f"  {time.monotonic() - started:>6.1f} s  in all")
    print(f"\nGateway: {cfg.gateway_url}   admin token: {cfg.run_path / 'admin-token'}")
    return 0


def journey_steps(journey: Journey, vtp: Client, receiver: Receiver, cfg: StackConfig) -> None:
    workdir = journey.workdir
    with journey.step("A local webhook receiver, subscribed to every event of the project"):
        output = journey.vtp("hooks", "add", receiver.url, "--description", "make demo", capture=True)
        match = re.search(r"whsec_\S+", output)
        assert match, "no signing secret in the output of vtp hooks add"
        receiver.secret = match.group(0)
        print(f"receiver on {receiver.url} verifies each delivery's Standard Webhooks signature")
    with journey.step("A generated dataset (200 images, 3 shapes), uploaded and frozen in a snapshot"):
        root = generate(workdir / "shapes", images=200, seed=0)
        archive = zip_dataset(root, workdir / "shapes.zip")
        journey.vtp("data", "upload", str(archive), "--name", "demo shapes")
        dataset_id = str(vtp.datasets.list(search="demo shapes").items[0].id)
        journey.vtp("data", "snapshot", dataset_id)
    with journey.step(f"Training yolo11n for {EPOCHS} epochs at {IMGSZ} px on the CPU, followed live"):
        journey.vtp(
            "train",
            f"data={dataset_id}",
            "model=yolo11n",
            f"epochs={EPOCHS}",
            f"imgsz={IMGSZ}",
            "batch=16",
            "workers=0",
            "seed=0",
            "--name",
            "demo detector",
        )
        job = vtp.jobs.list(dataset_id=dataset_id, limit=1).items[0]
        job_id = str(job.id)
        if job.status != "completed":  # the user stopped watching (Ctrl-C) or cancelled it
            raise SystemExit(f"job {job_id} is {job.status}; follow it with `vtp jobs watch {job_id}`")
    with journey.step("ONNX export, with its parity report"):
        journey.vtp("export", job_id, "--format", "onnx")
        export_id = str(vtp.exports.list(job_id=job_id, format="onnx").items[0].id)
    with journey.step("A deployment of the export"):
        journey.vtp("deploy", export_id, "--name", DEPLOYMENT)
        deployment_id = str(vtp.deployments.list().items[0].id)
    with journey.step("Predictions: Ultralytics' bus.jpg and zidane.jpg, then the dataset's validation images"):
        print("the model knows only circles, squares and triangles: on street photos it should find next to nothing")
        journey.vtp("predict", DEPLOYMENT, *map(str, ultralytics_photos()), "--save", str(workdir / "predictions"))
        val = validation_images(vtp, dataset_id, root, workdir / "val", VAL_IMAGES)
        saved = workdir / "predictions" / "val"
        journey.vtp("predict", DEPLOYMENT, str(workdir / "val"), "--save", str(saved))
        print(f"drawn predictions: {workdir / 'predictions'} ({len(val)} validation images in {saved})")
    with journey.step("Every signed webhook of the chain, verified by the receiver"):
        chain = ("job.requested.v1", "job.lifecycle.v1", "export.completed.v1", "deployment.changed.v1")
        wait_for(lambda: receiver.types() >= set(chain), 60)
        receiver.report()
        subscription = vtp.subscriptions.list().items[0]
        journey.vtp("hooks", "deliveries", str(subscription.id), "--limit", "6")
    with journey.step("Usage of the deployment"):
        usage_written(vtp, deployment_id)
        journey.vtp("usage", DEPLOYMENT, "--granularity", "minute")
    next_steps(workdir, dataset_id, job_id, export_id)


if __name__ == "__main__":
    sys.exit(main())
