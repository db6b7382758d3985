"""Authorization with API keys (`--api-keys-file`, Uhrwerk only), over TLS as in production: keys
stored hashed in a YAML file with Temporal's permissions; every call needs the role Temporal's
default authorizer requires (reads a reader, starts, signals, polls and completions a writer,
search attribute and namespace administration an admin, cluster-wide calls a system role), in
the namespace it names; no key and an unknown key get PERMISSION_DENIED "Request unauthorized.";
the SDK, the CLI (`--api-key`) and the HTTP API follow the same rules; no key reaches the log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import ListNamespacesRequest
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import free_port, temporal_cli
from test_tls import make_ca, make_leaf, ready

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make certificates")

KEYS = {
    "writer": ("default:write",),
    "reader": ("default:read",),
    "other-admin": ("other:admin",),
    "system": ("temporal-system:admin",),
}


@pytest.fixture
def uhrwerk_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("the dev server has no API key file")


@workflow.defn(name="AuthHello")
class AuthHello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


async def denied(call) -> RPCError:
    with pytest.raises(RPCError) as raised:
        await call
    assert raised.value.status == RPCStatusCode.PERMISSION_DENIED, raised.value
    assert raised.value.message == "Request unauthorized.", raised.value.message
    return raised.value


def http_get(url: str, key: str | None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


async def test_api_keys_and_temporals_roles(server_factory, test_dir: Path, uhrwerk_only) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    secrets = {name: f"uw-{name}-{uuid.uuid4().hex}" for name in KEYS}
    entries = [
        {"name": name, "sha256": hashlib.sha256(secrets[name].encode()).hexdigest(), "permissions": list(perms)}
        for name, perms in KEYS.items()
    ]
    keys_file = test_dir / "keys.yaml"
    keys_file.write_text(json.dumps({"keys": entries}))  # JSON is YAML
    http_port = free_port()
    srv = server_factory("auth", extra_args=("--tls-cert", str(cert), "--tls-key", str(key), "--api-keys-file",
                                             str(keys_file), "--namespace", "other", "--http-port", str(http_port)))
    srv.start()
    tls = TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost")

    async def client(name: str | None, namespace: str = "default") -> Client:
        c = await ready(srv, tls) if name is None else None
        if c is not None:
            return c
        return await Client.connect(srv.address, tls=tls, api_key=secrets[name], namespace=namespace)

    # GetSystemInfo (what connecting calls) needs no key; nothing else does without one.
    anonymous = await client(None)
    await denied(anonymous.list_workflows().__anext__())
    stranger = await Client.connect(srv.address, tls=tls, api_key="uw-not-a-key")
    await denied(stranger.start_workflow(AuthHello.run, "x", id="auth-x", task_queue="q"))

    # A writer runs workflows (its worker polls and completes with the same key).
    writer = await client("writer")
    task_queue = f"auth-{uuid.uuid4().hex[:8]}"
    async with Worker(writer, task_queue=task_queue, workflows=[AuthHello], workflow_runner=UnsandboxedWorkflowRunner()):
        wid = f"auth-{uuid.uuid4()}"
        assert await writer.execute_workflow(AuthHello.run, "writer", id=wid, task_queue=task_queue) == "hello writer"
    # ... but administers nothing and sees no cluster-wide list.
    add = AddSearchAttributesRequest(namespace="default",
                                     search_attributes={"AuthAttr": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    await denied(writer.operator_service.add_search_attributes(add))
    await denied(writer.workflow_service.list_namespaces(ListNamespacesRequest()))

    # A reader reads but does not start or terminate.
    reader = await client("reader")
    assert (await reader.get_workflow_handle(wid).describe()).id == wid
    await denied(reader.start_workflow(AuthHello.run, "r", id=f"auth-{uuid.uuid4()}", task_queue=task_queue))
    await denied(reader.get_workflow_handle(wid).terminate())

    # An admin of another namespace can do nothing in this one, and everything in its own.
    other_in_default = await client("other-admin")
    await denied(other_in_default.get_workflow_handle(wid).describe())
    other = await client("other-admin", namespace="other")
    handle = await other.start_workflow(AuthHello.run, "o", id=f"auth-{uuid.uuid4()}", task_queue=task_queue)
    await handle.terminate()
    await other.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace="other",
                                   search_attributes={"AuthAttr": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))

    # The system admin may do everything, cluster-wide calls included.
    system = await client("system")
    assert any(ns.namespace_info.name == "other"
               for ns in (await system.workflow_service.list_namespaces(ListNamespacesRequest())).namespaces)
    await system.operator_service.add_search_attributes(add)

    # The CLI with --api-key.
    cli = [str(temporal_cli()), "workflow", "describe", "--workflow-id", wid, "--address", srv.address,
           "--tls-ca-path", str(ca[0]), "--tls-server-name", "localhost"]
    out = subprocess.run([*cli, "--api-key", secrets["reader"]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "unauthorized" in (out.stderr + out.stdout).lower(), out.stderr

    # The HTTP API follows the same rules.
    url = f"http://127.0.0.1:{http_port}/api/v1/namespaces/default/workflows"
    statuses = await asyncio.gather(*(asyncio.to_thread(http_get, url, k)
                                      for k in (None, "uw-not-a-key", secrets["reader"], secrets["other-admin"])))
    assert statuses == [403, 403, 200, 403], statuses

    assert srv.terminate() == 0
    log = srv.log_file.read_text(errors="replace")
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} key appears in the server log"
