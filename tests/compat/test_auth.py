"""Authorization (`--api-keys-file`, Uhrwerk only), over TLS as in production: API keys stored
hashed in a YAML file with Temporal's permissions, and client certificate subjects (under mTLS)
mapped to permissions in the same file; every call needs the role Temporal's default authorizer
requires (reads a reader, starts, signals, polls and completions a writer, search attribute and
namespace administration an admin, cluster-wide calls a system role), in the namespace it names,
with Uhrwerk's one addition: the worker role may call the worker APIs (polls, task completions),
so a worker-only key or certificate runs an SDK worker and does nothing else; ListNamespaces shows
a caller without a system role the namespaces it may read; no key and an unknown key get
PERMISSION_DENIED "Request unauthorized."; the SDK, the CLI (`--api-key`) and the HTTP API follow
the same rules; no key reaches the log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetClusterInfoRequest,
    ListNamespacesRequest,
    PollActivityTaskQueueRequest,
    RegisterNamespaceRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import free_port, temporal_cli
from compat_util import eventually, secret
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


async def namespace_names(client: Client) -> set[str]:
    """Every namespace ListNamespaces shows the client, page by page."""
    names: set[str] = set()
    token = b""
    while True:
        page = await client.workflow_service.list_namespaces(ListNamespacesRequest(page_size=100,
                                                                                   next_page_token=token))
        names.update(ns.namespace_info.name for ns in page.namespaces)
        if not page.next_page_token:
            return names
        token = page.next_page_token


async def denied(call) -> RPCError:
    with pytest.raises(RPCError) as raised:
        await call
    assert raised.value.status == RPCStatusCode.PERMISSION_DENIED, raised.value
    assert raised.value.message == "Request unauthorized.", raised.value.message
    return raised.value


def http_get(url: str, key: str | None, context: ssl.SSLContext) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


async def test_api_keys_and_temporals_roles(server_factory, test_dir: Path, uhrwerk_only) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    secrets = {name: secret(f"uw-{name}-{uuid.uuid4().hex}") for name in KEYS}
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
    async with Worker(writer, task_queue=task_queue, workflows=[AuthHello],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        wid = f"auth-{uuid.uuid4()}"
        assert await writer.execute_workflow(AuthHello.run, "writer", id=wid, task_queue=task_queue) == "hello writer"
    # ... but administers nothing, and the namespace list shows it only its own namespace.
    add = AddSearchAttributesRequest(namespace="default",
                                     search_attributes={"AuthAttr": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    await denied(writer.operator_service.add_search_attributes(add))
    assert await namespace_names(writer) == {"default"}

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

    # The HTTP API, served with the frontend's TLS, follows the same rules.
    url = f"https://127.0.0.1:{http_port}/api/v1/namespaces/default/workflows"
    context = ssl.create_default_context(cafile=str(ca[0]))
    statuses = await asyncio.gather(*(asyncio.to_thread(http_get, url, k, context)
                                      for k in (None, "uw-not-a-key", secrets["reader"], secrets["other-admin"])))
    assert statuses == [403, 403, 200, 403], statuses

    assert srv.terminate() == 0
    log = srv.log_file.read_text(errors="replace")
    for name, value in secrets.items():
        assert value not in log, f"the {name} key appears in the server log"


# --- Helpers for the tests below: a TLS server with a keys file (and, under mTLS, client certificates).


@dataclass
class AuthServer:
    srv: Any
    certs: Path
    ca: tuple[Path, Path]
    secrets: dict[str, str]

    def tls(self, cert: str | None = None) -> TLSConfig:
        """Trusts the server; with `cert`, presents the client certificate made under that CN."""
        trust = self.ca[0].read_bytes()
        if cert is None:
            return TLSConfig(server_root_ca_cert=trust, domain="localhost")
        return TLSConfig(server_root_ca_cert=trust, domain="localhost",
                         client_cert=(self.certs / f"{cert}.pem").read_bytes(),
                         client_private_key=(self.certs / f"{cert}.key").read_bytes())

    async def connect(self, key: str | None = None, *, namespace: str = "default", cert: str | None = None) -> Client:
        """A client sending the named key (or, for a name not in the file, the string itself)."""
        api_key = None if key is None else self.secrets.get(key, key)
        return await Client.connect(self.srv.address, tls=self.tls(cert), api_key=api_key, namespace=namespace)


async def start_authorized(server_factory, test_dir: Path, keys: dict[str, tuple[str, ...]], *,
                           certificates: dict[str, tuple[str, ...]] | None = None,
                           client_certs: tuple[str, ...] = ()) -> AuthServer:
    """A server with TLS and a keys file; with client certificates (made under those CNs by the
    same CA), mTLS and the file's `certificates:` section."""
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    for cn in client_certs:
        make_leaf(d, cn, ca, server=False)
    secrets = {name: secret(f"uw-{name}-{uuid.uuid4().hex}") for name in keys}
    doc: dict[str, Any] = {"keys": [
        {"name": name, "sha256": hashlib.sha256(secrets[name].encode()).hexdigest(), "permissions": list(perms)}
        for name, perms in keys.items()
    ]}
    if certificates is not None:
        doc["certificates"] = [{"common_name": cn, "permissions": list(perms)} for cn, perms in certificates.items()]
    keys_file = test_dir / "keys.yaml"
    keys_file.write_text(json.dumps(doc))  # JSON is YAML
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--api-keys-file", str(keys_file)]
    if client_certs:
        args += ["--tls-client-ca", str(ca[0])]
    srv = server_factory("auth", extra_args=tuple(args))
    srv.start()
    auth = AuthServer(srv, d, ca, secrets)
    await ready(srv, auth.tls(client_certs[0] if client_certs else None))
    return auth


# --- (a) The authorization matrix.

MATRIX_ROLES = {
    "worker": ("default:worker",),
    "reader": ("default:read",),
    "writer": ("default:write",),
    "admin": ("default:admin",),
    "system-reader": ("temporal-system:read",),
    "system-admin": ("temporal-system:admin",),
}

# What each role may call, as Temporal's default authorizer decides
# (common/authorization/default_authorizer.go: a call is allowed when the caller's role is at least
# the one the method's Access needs, read-only a reader, write a writer, admin an admin; the role
# is the system role for a cluster-scope method, the system role OR'ed with the role in the
# request's namespace for a namespace-scope one; roles compare as numbers, worker < reader <
# writer < admin), with each method's Scope and Access from common/api/metadata.go:
#   DescribeWorkflowExecution      namespace, read-only
#   StartWorkflowExecution         namespace, write
#   SignalWorkflowExecution        namespace, write
#   TerminateWorkflowExecution     namespace, write
#   PollActivityTaskQueue          namespace, write
#   AddSearchAttributes (operator) namespace, admin
#   GetClusterInfo                 cluster,   read-only
# and Uhrwerk's one addition: the worker role, which allows nothing in Temporal's authorizer,
# allows the worker APIs (PollActivityTaskQueue here) in its namespace.
MATRIX = """
role           describe  start  signal  terminate  poll_activity  add_search_attribute  cluster_info
worker         -         -      -       -          yes            -                     -
reader         yes       -      -       -          -              -                     -
writer         yes       yes    yes     yes        yes            -                     -
admin          yes       yes    yes     yes        yes            yes                   -
system-reader  yes       -      -       -          -              -                     yes
system-admin   yes       yes    yes     yes        yes            yes                   yes
"""


def parse_matrix(text: str) -> dict[str, dict[str, str]]:
    rows = [line.split() for line in text.strip().splitlines()]
    header = rows[0][1:]
    return {row[0]: dict(zip(header, row[1:], strict=True)) for row in rows[1:]}


async def outcome(call: Awaitable[Any], *, long_poll: bool = False) -> str:
    """"yes" when the call is allowed, "-" when refused as unauthorized, otherwise what happened.
    A long poll is allowed when it is not refused (it may end at its deadline)."""
    try:
        await asyncio.wait_for(call, 20)
    except RPCError as err:
        if err.status == RPCStatusCode.PERMISSION_DENIED:
            return "-" if err.message == "Request unauthorized." else f"PERMISSION_DENIED {err.message!r}"
        return "yes" if long_poll else f"{err.status.name} {err.message!r}"
    return "yes"


async def test_authorization_matrix(server_factory, test_dir: Path, uhrwerk_only) -> None:
    auth = await start_authorized(server_factory, test_dir, MATRIX_ROLES)
    expected = parse_matrix(MATRIX)
    assert set(expected) == set(MATRIX_ROLES)
    task_queue = f"matrix-{uuid.uuid4().hex[:8]}"  # nobody polls its workflow tasks
    admin = await auth.connect("system-admin")
    # One running workflow per role to describe, signal and terminate.
    targets = {role: (await admin.start_workflow("AuthHello", role, id=f"matrix-{role}-{uuid.uuid4()}",
                                                 task_queue=task_queue)).id for role in MATRIX_ROLES}

    async def row(role: str) -> dict[str, str]:
        client = await auth.connect(role)
        ws, ns, identity = client.workflow_service, "default", f"matrix-{role}"
        target = WorkflowExecution(workflow_id=targets[role])
        attribute = "Matrix" + role.title().replace("-", "")
        got = {}
        got["describe"] = await outcome(ws.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=ns, execution=target)))
        got["start"] = await outcome(ws.start_workflow_execution(StartWorkflowExecutionRequest(
            namespace=ns, workflow_id=f"matrix-start-{role}-{uuid.uuid4()}",
            workflow_type=WorkflowType(name="AuthHello"), task_queue=TaskQueue(name=task_queue),
            request_id=str(uuid.uuid4()), identity=identity)))
        got["signal"] = await outcome(ws.signal_workflow_execution(SignalWorkflowExecutionRequest(
            namespace=ns, workflow_execution=target, signal_name="poke", request_id=str(uuid.uuid4()),
            identity=identity)))
        got["poll_activity"] = await outcome(ws.poll_activity_task_queue(
            PollActivityTaskQueueRequest(namespace=ns, task_queue=TaskQueue(name=task_queue), identity=identity),
            timeout=timedelta(seconds=2)), long_poll=True)
        got["add_search_attribute"] = await outcome(client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=ns,
                                       search_attributes={attribute: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})))
        got["cluster_info"] = await outcome(ws.get_cluster_info(GetClusterInfoRequest()))
        got["terminate"] = await outcome(ws.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
            namespace=ns, workflow_execution=target, reason="matrix", identity=identity)))
        return got

    rows = await asyncio.gather(*(row(role) for role in MATRIX_ROLES))
    actual = dict(zip(MATRIX_ROLES, rows, strict=True))
    mismatches = [f"{role} {rpc}: expected {want}, got {actual[role][rpc]}"
                  for role, wants in expected.items() for rpc, want in wants.items() if actual[role][rpc] != want]
    assert not mismatches, "\n".join(mismatches)


# --- (b) A worker-only key runs an SDK worker and nothing else.


@activity.defn(name="auth_shout")
async def auth_shout(text: str) -> str:
    return text.upper()


@workflow.defn(name="AuthWorkerFlow")
class AuthWorkerFlow:
    def __init__(self) -> None:
        self.stage = "started"
        self.finished = False

    @workflow.run
    async def run(self, text: str) -> str:
        shouted = await workflow.execute_activity(auth_shout, text, start_to_close_timeout=timedelta(seconds=20))
        self.stage = "waiting"
        await workflow.wait_condition(lambda: self.finished)
        return shouted

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.query
    def state(self) -> str:
        return self.stage


async def worker_runs_what_another_starts(worker_client: Client, starter: Client) -> None:
    """`worker_client` runs an SDK worker (polls, workflow and activity task completions, a query
    answered) for a workflow `starter` starts, queries and signals; `worker_client` itself may
    neither start, describe, signal nor terminate a workflow."""
    task_queue = f"auth-worker-{uuid.uuid4().hex[:8]}"
    async with Worker(worker_client, task_queue=task_queue, workflows=[AuthWorkerFlow], activities=[auth_shout],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await starter.start_workflow(AuthWorkerFlow.run, "done by a worker", id=f"auth-{uuid.uuid4()}",
                                              task_queue=task_queue)

        async def stage() -> str:
            try:
                return await handle.query(AuthWorkerFlow.state, rpc_timeout=timedelta(seconds=5))
            except Exception as err:  # noqa: BLE001 - not ready yet, retried until the deadline
                return repr(err)

        await eventually(stage, lambda s: s == "waiting", timeout=30, what="the worker ran the activity")
        mine = worker_client.get_workflow_handle(handle.id)
        await denied(worker_client.start_workflow(AuthWorkerFlow.run, "no", id=f"auth-{uuid.uuid4()}",
                                                  task_queue=task_queue))
        await denied(mine.describe())
        await denied(mine.signal(AuthWorkerFlow.finish))
        await denied(mine.terminate())
        await handle.signal(AuthWorkerFlow.finish)
        assert await asyncio.wait_for(handle.result(), 30) == "DONE BY A WORKER"


async def test_a_worker_only_key_runs_a_worker_and_nothing_else(server_factory, test_dir: Path,
                                                                uhrwerk_only) -> None:
    auth = await start_authorized(server_factory, test_dir, {"worker": ("default:worker",),
                                                             "writer": ("default:write",)})
    await worker_runs_what_another_starts(await auth.connect("worker"), await auth.connect("writer"))
    assert auth.srv.terminate() == 0


# --- (c) ListNamespaces shows each caller the namespaces it may read; visibility stays per namespace.


async def test_list_namespaces_shows_what_the_caller_may_read(server_factory, test_dir: Path, uhrwerk_only) -> None:
    auth = await start_authorized(server_factory, test_dir, {
        "system-admin": ("temporal-system:admin",),
        "system-reader": ("temporal-system:read",),
        "reader": ("default:read",),
        "other-admin": ("other:admin",),
        "mixed": ("other:read", "third:worker"),
        "worker": ("default:worker",),
    })
    admin = await auth.connect("system-admin")
    for ns in ("other", "third"):
        await admin.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=ns, workflow_execution_retention_period=Duration(seconds=86400)))
    everything = await eventually(lambda: namespace_names(admin), lambda names: {"other", "third"} <= names,
                                  timeout=10, what="the registered namespaces are listed")
    assert "default" in everything

    # A system role sees every namespace; the others what they may read, or nothing.
    assert await namespace_names(await auth.connect("system-reader")) == everything
    assert await namespace_names(await auth.connect("reader")) == {"default"}
    assert await namespace_names(await auth.connect("other-admin")) == {"other"}
    assert await namespace_names(await auth.connect("mixed")) == {"other"}  # a worker role reads nothing
    assert await namespace_names(await auth.connect("worker")) == set()

    # Listing workflows is decided in the namespace listed.
    wid = (await admin.start_workflow("AuthHello", "x", id=f"auth-{uuid.uuid4()}", task_queue="auth-nobody")).id
    reader = await auth.connect("reader")
    await eventually(lambda: workflow_ids(reader), lambda ids: wid in ids, timeout=10,
                     what="the reader lists the workflow in its namespace")
    await denied((await auth.connect("reader", namespace="other")).list_workflows().__anext__())
    other = await auth.connect("other-admin", namespace="other")
    assert await workflow_ids(other) == set()
    await denied((await auth.connect("other-admin")).list_workflows().__anext__())
    assert auth.srv.terminate() == 0


async def workflow_ids(client: Client) -> set[str]:
    return {w.id async for w in client.list_workflows()}


# --- (d) mTLS client certificates mapped to permissions.


async def test_client_certificate_identities(server_factory, test_dir: Path, uhrwerk_only) -> None:
    auth = await start_authorized(
        server_factory, test_dir, {"reader": ("default:read",), "writer": ("default:write",)},
        certificates={"orders-worker": ("default:worker",), "ops": ("default:write",)},
        client_certs=("ops", "orders-worker", "stranger"))

    # CN=orders-worker (worker role) runs a worker but starts nothing; CN=ops (writer) starts.
    ops = await auth.connect(cert="ops")
    await worker_runs_what_another_starts(await auth.connect(cert="orders-worker"), ops)

    # A certificate whose CN the file does not list carries no permissions.
    stranger = await auth.connect(cert="stranger")
    await denied(stranger.start_workflow(AuthWorkerFlow.run, "s", id=f"auth-{uuid.uuid4()}", task_queue="auth-x"))
    await denied(stranger.list_workflows().__anext__())

    # A bearer key on the same mTLS connection replaces the certificate's permissions.
    handle = await ops.start_workflow(AuthWorkerFlow.run, "o", id=f"auth-{uuid.uuid4()}", task_queue="auth-nobody")
    ops_as_reader = await auth.connect("reader", cert="ops")
    assert (await ops_as_reader.get_workflow_handle(handle.id).describe()).id == handle.id
    await denied(ops_as_reader.start_workflow(AuthWorkerFlow.run, "r", id=f"auth-{uuid.uuid4()}",
                                              task_queue="auth-nobody"))
    await denied((await auth.connect("uw-not-a-key", cert="ops")).get_workflow_handle(handle.id).describe())
    worker_as_writer = await auth.connect("writer", cert="orders-worker")
    started = await worker_as_writer.start_workflow(AuthWorkerFlow.run, "w", id=f"auth-{uuid.uuid4()}",
                                                    task_queue="auth-nobody")
    await started.terminate()
    await handle.terminate()
    assert auth.srv.terminate() == 0


# --- The tools: `uhrwerk doctor` and `uhrwerk workflow export` take the temporal CLI's TLS and
# API key flags, and read the metrics endpoint over https with them.

async def run_tool(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os

    from compat_server import uhrwerk_binary

    binary = uhrwerk_binary()
    assert binary is not None
    proc = await asyncio.create_subprocess_exec(
        str(binary), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_doctor_and_export_connect_with_tls_and_a_key(server_factory, test_dir: Path, uhrwerk_only) -> None:
    auth = await start_authorized(server_factory, test_dir, {"reader": ("default:read",),
                                                             "writer": ("default:write",)},
                                  client_certs=("tool",))
    writer = await auth.connect("writer", cert="tool")
    task_queue = f"auth-tools-{uuid.uuid4()}"
    async with Worker(writer, task_queue=task_queue, workflows=[AuthHello],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await writer.start_workflow(AuthHello.run, "tools", id=f"auth-tools-{uuid.uuid4()}",
                                             task_queue=task_queue)
        assert await handle.result() == "hello tools"

    ca = str(auth.ca[0])
    client_cert = ["--tls-cert-path", str(auth.certs / "tool.pem"), "--tls-key-path", str(auth.certs / "tool.key")]
    tls = ["--address", auth.srv.address, "--tls-ca-path", ca, "--tls-server-name", "localhost", *client_cert]
    metrics = f"https://localhost:{auth.srv.metrics_port}/metrics"

    # The doctor with a reader key: it scans, and reads the limits from the https endpoint.
    code, out, err = await run_tool("doctor", *tls, "--api-key", auth.secrets["reader"], "--metrics-url", metrics)
    assert code in (0, 1), err
    assert f"read from {metrics}" in out + err, out + err
    # The key from the environment, as the temporal CLI reads it.
    code, out, err = await run_tool("doctor", *tls, "--metrics-url", metrics,
                                    env={"TEMPORAL_API_KEY": auth.secrets["reader"]})
    assert code in (0, 1), err
    # Without a key: refused, said plainly, exit 2.
    code, out, err = await run_tool("doctor", *tls, "--metrics-url", metrics)
    assert code == 2, (out, err)
    assert "PermissionDenied" in err and "Request unauthorized." in err, err
    # Without TLS the server is not reached.
    code, _, err = await run_tool("doctor", "--address", auth.srv.address, "--api-key", auth.secrets["reader"])
    assert code == 2, err

    out_dir = test_dir / "exported"
    code, _, err = await run_tool("workflow", "export", *tls, "--api-key", auth.secrets["reader"],
                                  "--query", f"WorkflowId = '{handle.id}'", "--out", str(out_dir))
    assert code == 0, err
    assert "exported 1 of 1 run(s)" in err, err
    exported = json.loads(next(out_dir.iterdir()).read_text())
    assert exported["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    code, _, err = await run_tool("workflow", "export", *tls, "--query", "WorkflowId = 'x'",
                                  "--out", str(test_dir / "none"))
    assert code != 0 and "Request unauthorized." in err, err

    # No key reached the server's log or the tools' output.
    log = auth.srv.log_file.read_text(errors="replace")
    for value in auth.secrets.values():
        assert value not in log and value not in out + err
    assert auth.srv.terminate() == 0


# --- The README's production configuration: mTLS and per-namespace API keys, from a config file.

async def test_production_configuration_from_a_config_file(server_factory, test_dir: Path, uhrwerk_only) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    worker_cert, worker_key = make_leaf(d, "orders-host", ca, server=False)
    secrets = {name: secret(f"uw-{name}-{uuid.uuid4().hex}") for name in ("orders", "billing")}
    keys_file = test_dir / "keys.yaml"
    keys_file.write_text(
        "keys:\n" + "".join(
            f"  - name: {name}\n    sha256: {hashlib.sha256(value.encode()).hexdigest()}\n"
            f"    permissions: [\"{name}:write\"]\n" for name, value in secrets.items()))
    config = test_dir / "uhrwerk.yaml"
    config.write_text(f"tls-cert: {cert}\ntls-key: {key}\ntls-client-ca: {ca[0]}\napi-keys-file: {keys_file}\n"
                      "namespace: [orders, billing]\n")
    srv = server_factory("production", extra_args=("--config", str(config)))
    srv.start()
    tls = TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost",
                    client_cert=worker_cert.read_bytes(), client_private_key=worker_key.read_bytes())
    await ready(srv, tls)
    orders = await Client.connect(srv.address, tls=tls, api_key=secrets["orders"], namespace="orders")
    task_queue = f"prod-{uuid.uuid4().hex[:8]}"
    async with Worker(orders, task_queue=task_queue, workflows=[AuthHello], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await orders.start_workflow(AuthHello.run, "orders", id=f"prod-{uuid.uuid4()}", task_queue=task_queue)
        assert await handle.result() == "hello orders"
    # The billing key does nothing in orders; without a client certificate nothing connects.
    billing = await Client.connect(srv.address, tls=tls, api_key=secrets["billing"], namespace="orders")
    await denied(billing.get_workflow_handle(handle.id).describe())
    with pytest.raises(RuntimeError):
        await Client.connect(srv.address, tls=TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost"),
                             api_key=secrets["orders"], namespace="orders")
    # The CLI through the same configuration.
    cli = [str(temporal_cli()), "workflow", "describe", "--workflow-id", handle.id, "--namespace", "orders",
           "--address", srv.address, "--tls-ca-path", str(ca[0]), "--tls-server-name", "localhost",
           "--tls-cert-path", str(worker_cert), "--tls-key-path", str(worker_key), "--output", "json"]
    out = subprocess.run([*cli, "--api-key", secrets["orders"]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    out = subprocess.run([*cli, "--api-key", secrets["billing"]], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Request unauthorized." in out.stderr, out.stderr
    assert srv.terminate() == 0

    # A misspelt setting stops the start with its name.
    config.write_text(config.read_text() + "tls-clientca: x\n")
    code, _, err = await run_tool("server", "start-dev", "--headless", "--port", "0", "--config", str(config))
    assert code == 2 and 'unknown setting "tls-clientca"' in err, err


# --- A key removed from the file is refused without a restart; a broken file keeps the keys.

async def test_a_revoked_key_is_refused_without_a_restart(server_factory, test_dir: Path, uhrwerk_only) -> None:
    auth = await start_authorized(server_factory, test_dir, {"kept": ("default:read",), "revoked": ("default:read",)})
    kept, revoked = await auth.connect("kept"), await auth.connect("revoked")
    assert [w async for w in revoked.list_workflows("WorkflowId = 'none'")] == []
    keys_file = test_dir / "keys.yaml"
    doc = json.loads(keys_file.read_text())
    pid = auth.srv.proc.pid

    # A file that does not parse: logged, the keys in use stay.
    keys_file.write_text("keys: [this is not: a key")
    await eventually(lambda: asyncio.to_thread(auth.srv.log_file.read_text),
                     lambda log: "API keys not reloaded" in log, what="the broken file noticed")
    assert [w async for w in revoked.list_workflows("WorkflowId = 'none'")] == []

    # The revoked key leaves the file: refused from the next call on, the other key goes on.
    doc["keys"] = [k for k in doc["keys"] if k["name"] != "revoked"]
    keys_file.write_text(json.dumps(doc))

    async def revoked_refused() -> bool:
        try:
            await revoked.count_workflows("WorkflowId = 'none'")
        except RPCError as e:
            assert e.status == RPCStatusCode.PERMISSION_DENIED and e.message == "Request unauthorized.", e
            return True
        return False

    await eventually(revoked_refused, lambda refused: refused, what="the revoked key refused")
    assert (await kept.count_workflows("WorkflowId = 'none'")).count == 0
    assert auth.srv.proc.pid == pid, "without a restart"
    assert auth.srv.terminate() == 0
