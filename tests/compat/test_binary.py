"""The uhrwerk binary's own command line (only when the suite starts uhrwerk itself)."""

from __future__ import annotations

import subprocess

import pytest

from compat_server import uhrwerk_binary


def test_version(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--server") or request.config.getoption("--reference-server"):
        pytest.skip("checks the uhrwerk binary; not started in this mode")
    binary = uhrwerk_binary()
    if binary is None or not binary.exists():
        pytest.fail("uhrwerk binary not found: set UHRWERK_BIN or build target/debug/uhrwerk", pytrace=False)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert any(ch.isdigit() for ch in out.stdout), f"no version number in {out.stdout!r}"


async def test_server_version_is_a_semantic_version(client) -> None:
    """GetSystemInfo and GetClusterInfo report a semantic version (as the dev server's "1.32.0"),
    which SDKs and user interfaces compare; Uhrwerk names itself in the cluster's version notes."""
    import re

    from temporalio.api.workflowservice.v1 import GetClusterInfoRequest, GetSystemInfoRequest

    system = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    cluster = await client.workflow_service.get_cluster_info(GetClusterInfoRequest())
    semver = re.compile(r"^\d+\.\d+\.\d+$")
    assert semver.match(system.server_version), system.server_version
    assert cluster.server_version == system.server_version
