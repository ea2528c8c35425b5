"""Free loopback ports, and a stack configuration that uses only free ones (tests, benches)."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

from vtp_localstack.config import SERVICE_PORT_OFFSETS, StackConfig


def free_port() -> int:
    """A port the kernel says is free now (from its ephemeral range)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(size: int = len(SERVICE_PORT_OFFSETS) + 1) -> int:
    """A base port whose `size` successors are all free (services take base+1 .. base+size).

    Chosen below Linux's ephemeral range (32768+), where free_port() and clients' sockets land,
    so the block cannot collide with the stack's own infrastructure ports.
    """
    for _ in range(200):
        base = random.randrange(20000, 32000, 10)
        try:
            for offset in range(1, size + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free block of service ports")


def isolated_config(run_dir: Path, **overrides: Any) -> StackConfig:
    """A stack in `run_dir` on free ports, beside any other stack on the machine."""
    ports = {
        "gateway_port": free_port(),
        "kafka_port": free_port(),
        "postgres_port": free_port(),
        "redis_port": free_port(),
        "inference_grpc_port": free_port(),
        "triton_port": free_port(),
        "service_port_base": free_port_block(),
        "replica_port_base": free_port_block(10 * len(SERVICE_PORT_OFFSETS) + 9),  # extra replicas (replicas=)
    }
    return StackConfig(run_dir=run_dir, **(ports | overrides))
