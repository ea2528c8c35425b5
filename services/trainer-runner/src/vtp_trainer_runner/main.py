"""``vtp-trainer-runner``: run the trainer runner."""

from vtp_runtime.serve import serve
from vtp_trainer_runner.bootstrap import create_app
from vtp_trainer_runner.settings import TrainerRunnerSettings


def main() -> None:
    settings = TrainerRunnerSettings()
    serve(settings, lambda: create_app(settings))
