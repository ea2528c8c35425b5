"""SSRF rules: internal addresses are refused unless allow-listed, also at connect time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import pytest

from vtp_notifier.adapters.guarded_network import GuardedBackend, SocketOption
from vtp_notifier.domain.targets import TargetNotAllowed, TargetPolicy, parse_target

STRICT = TargetPolicy()
LOCAL = TargetPolicy.from_cidrs(["127.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",  # private
        "127.0.0.1",
        "::1",  # loopback
        "169.254.169.254",
        "fe80::1",  # link-local (cloud metadata lives here)
        "0.0.0.0",
        "::",  # unspecified
        "224.0.0.1",
        "ff02::1",  # multicast
        "240.0.0.1",  # reserved
        "100.64.0.1",  # carrier-grade NAT
        "fc00::1",  # unique local
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)
def test_internal_addresses_are_refused(address: str):
    assert not STRICT.allows(address)
    with pytest.raises(TargetNotAllowed):
        STRICT.check([address])


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str):
    assert STRICT.allows(address)


def test_allow_list_admits_its_ranges_only():
    assert LOCAL.allows("127.0.0.1") and LOCAL.allows("127.9.9.9") and LOCAL.allows("::1")
    assert LOCAL.allows("::ffff:127.0.0.1")  # the same loopback, IPv6-mapped
    assert not LOCAL.allows("10.0.0.1") and not LOCAL.allows("169.254.169.254")


def test_one_internal_address_among_public_ones_refuses_the_target():
    with pytest.raises(TargetNotAllowed, match=r"10\.0\.0\.1"):
        STRICT.check(["8.8.8.8", "10.0.0.1"])
    with pytest.raises(TargetNotAllowed):
        STRICT.check([])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://",
        "https://user:pw@example.com/",
        "example.com/hook",
        "http://example.com:99999/",
        "http://example.com/#frag",
    ],
)
def test_malformed_urls_are_invalid(url: str):
    target, problems = parse_target(url)
    assert target is None and [p.code for p in problems] == ["invalid_url"]


def test_url_target_defaults_its_port():
    assert parse_target("https://Example.com/hook?x=1")[0] == (parse_target("https://example.com:443/")[0])
    target = parse_target("http://[::1]:8080/x")[0]
    assert target is not None and (target.host, target.port) == ("::1", 8080)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the real network: remembers where it was asked to connect."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> Any:
        self.connected.append((host, port))
        return object()


async def test_guarded_backend_connects_to_the_checked_address():
    inner = RecordingBackend()
    await GuardedBackend(LOCAL, inner).connect_tcp("localhost", 8080)
    assert inner.connected and all(host in ("127.0.0.1", "::1") for host, _ in inner.connected[:1])


async def test_guarded_backend_refuses_internal_names_before_connecting():
    inner = RecordingBackend()
    with pytest.raises(TargetNotAllowed):
        await GuardedBackend(STRICT, inner).connect_tcp("localhost", 8080)
    with pytest.raises(TargetNotAllowed):
        await GuardedBackend(STRICT, inner).connect_tcp("169.254.169.254", 80)
    with pytest.raises(TargetNotAllowed):
        await GuardedBackend(LOCAL, inner).connect_unix_socket("/var/run/docker.sock")
    assert inner.connected == []
