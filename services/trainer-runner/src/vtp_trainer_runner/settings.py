"""Settings of the trainer runner (environment, prefix ``VTP_``)."""

import os
import socket

from pydantic import Field

from vtp_runtime.settings import ServiceSettings


class TrainerRunnerSettings(ServiceSettings):
    service_name: str = "trainer-runner"
    http_port: int = 8104
    runner_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", description="Names this runner in events."
    )
    gpus: str = Field("", description="Comma-separated GPU indices this runner owns, e.g. `0,1`; empty: CPU only.")
    gpus_per_job: int = Field(1, ge=1, description="GPUs one job uses; slots = GPUs // gpus_per_job.")
    cpu_slots: int = Field(1, ge=1, description="Concurrent jobs on a machine without GPUs.")
    work_dir: str = Field(".vtp/data/runner", description="Attempts' working directories and the dataset cache.")
    cache_max_bytes: int = Field(50 << 30, description="LRU limit of the materialised-dataset cache.")
    heartbeat_seconds: float = Field(3.0, gt=0, description="How often a running job's heartbeat is sent.")
    log_flush_seconds: float = Field(1.0, gt=0, description="Trainer log lines are batched this long.")
    prewarm_children: bool = Field(
        True, description="Keep one trainer child per free slot started, its framework imported, waiting for a job."
    )
    handback_timeout_seconds: float = Field(60.0, gt=0, description="On SIGTERM: time for jobs to checkpoint.")
    consumer_group: str = Field("trainer-runners", description="Kafka consumer group shared by all runners.")
    cancel_memory_hours: float = Field(
        168.0, gt=0, description="How long a cancellation is remembered (a command older than this no longer waits)."
    )
    finished_memory_hours: float = Field(
        168.0,
        gt=0,
        description="How long a finished attempt is remembered (at most 10,000): its redelivered command is skipped.",
    )

    def gpu_list(self) -> list[int]:
        return [int(g) for g in self.gpus.split(",") if g.strip()]
