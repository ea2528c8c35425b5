"""``vtp-jobs``: run the jobs service."""

from vtp_jobs.bootstrap import create_app
from vtp_jobs.settings import JobsSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = JobsSettings()
    serve(settings, lambda: create_app(settings))
