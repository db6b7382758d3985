"""A secured cluster (Uhrwerk only, PostgreSQL pass): three nodes, each with a certificate of its
own signed by the cluster CA (`--tls-cert`, `--tls-key`, `--cluster-tls-ca`), mutual TLS on the
frontends with a separate client CA (`--tls-client-ca`) and API keys (`--api-keys-file`).

- An SDK client with a writer key starts workflows through node 0 and an SDK worker with the same
  key runs them through node 1; calls reach the owning node over the internal ports (node 0
  counts forwarded starts), every workflow completes with its result; a client without a key, or
  with an unknown one, is refused with PERMISSION_DENIED "Request unauthorized." on every node,
  for workflows whatever node owns them.
- A node's internal port (the port of `--advertise-address`) takes TLS only from holders of a
  certificate signed by the cluster CA: plaintext, TLS without a client certificate and TLS with
  a certificate of another CA (the client CA, which the frontends trust) are refused; a
  certificate of the cluster CA completes the handshake (ALPN h2, the node's own certificate
  presented, HTTP/2 spoken) and is served without a key, as calls forwarded by nodes are.
- A cluster node refuses to start with TLS but no `--cluster-tls-ca`, and with authorization
  (`--api-keys-file`, `--jwt-jwks`) but no TLS between the nodes.

Certificates are made with the openssl CLI (test_tls.py's helpers); each test starts what it
needs on a fresh database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, TLSConfig
from temporalio.worker import Worker

import compat_server
from compat_cluster import Cluster, free_ports, fresh_database
from compat_limits import Sample, parse_metrics
from compat_server import uhrwerk_binary
from test_auth import denied
from test_tls import make_ca, make_leaf, openssl, ready

pytestmark = [
    pytest.mark.skipif(
        not compat_server.on_postgres(),
        reason="a cluster needs PostgreSQL: the PostgreSQL pass sets UHRWERK_COMPAT_DATABASE_URL (./scripts/test)",
    ),
    pytest.mark.skipif("config.getoption('--reference-server')", reason="the cluster mode is Uhrwerk's own"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make certificates"),
    pytest.mark.needs_managed_server,
    pytest.mark.timeout(180),
]

NODES = 3
SHARDS = 16
WORKFLOWS = 12

# --- certificates -----------------------------------------------------------------------------------


def make_node_cert(d: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A node's certificate (as make_leaf): server and client use, since nodes also connect to
    each other presenting it, for 127.0.0.1 (the advertise host) and localhost (what SDK clients
    name)."""
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}"]
    openssl("req", *new_key, "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    signed_by = ["-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial", "-days", "2"]
    openssl("x509", "-req", "-in", str(csr), *signed_by, "-extfile", str(ext), "-out", str(cert))
    return cert, key


@dataclass
class Pki:
    """The cluster CA (signs the nodes), the client CA (signs the frontends' clients), node i's
    certificate `node<i>`, a client certificate `client` of the client CA."""

    dir: Path
    cluster_ca: tuple[Path, Path]
    client_ca: tuple[Path, Path]
    nodes: list[tuple[Path, Path]]
    client: tuple[Path, Path]

    def tls(self) -> TLSConfig:
        """What SDK clients use: the nodes' CA as server root, the client certificate (mTLS)."""
        return TLSConfig(
            server_root_ca_cert=self.cluster_ca[0].read_bytes(),
            domain="localhost",
            client_cert=self.client[0].read_bytes(),
            client_private_key=self.client[1].read_bytes(),
        )

    def https(self) -> ssl.SSLContext:
        """For the nodes' metrics endpoints, served with the frontend's TLS (mTLS included)."""
        context = ssl.create_default_context(cafile=str(self.cluster_ca[0]))
        context.load_cert_chain(str(self.client[0]), str(self.client[1]))
        return context


def make_pki(d: Path, nodes: int) -> Pki:
    d.mkdir(exist_ok=True)
    cluster_ca, client_ca = make_ca(d, "cluster-ca"), make_ca(d, "client-ca")
    return Pki(
        d,
        cluster_ca,
        client_ca,
        [make_node_cert(d, f"node{i}", cluster_ca) for i in range(nodes)],
        make_leaf(d, "client", client_ca, server=False),
    )


def keys_file(d: Path, keys: dict[str, tuple[str, ...]]) -> tuple[Path, dict[str, str]]:
    """A keys file with a fresh secret per name; the file and the secrets."""
    secrets = {name: f"uw-{name}-{uuid.uuid4().hex}" for name in keys}
    doc = {
        "keys": [
            {"name": name, "sha256": hashlib.sha256(secrets[name].encode()).hexdigest(), "permissions": list(perms)}
            for name, perms in keys.items()
        ]
    }
    path = d / "keys.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path, secrets


# --- a cluster with TLS everywhere ------------------------------------------------------------------


class SecureCluster(Cluster):
    """compat_cluster.Cluster whose node i runs with its own certificate, the cluster CA, the
    client CA and the keys file; readiness and metrics over TLS."""

    def __init__(self, directory: Path, size: int, pki: Pki, keys: Path):
        super().__init__(directory, size, shards=SHARDS)
        self.pki = pki
        for i, node in enumerate(self.nodes):
            cert, key = pki.nodes[i]
            tls = ["--tls-cert", str(cert), "--tls-key", str(key), "--cluster-tls-ca", str(pki.cluster_ca[0])]
            node.extra_args = (*tls, "--tls-client-ca", str(pki.client_ca[0]), "--api-keys-file", str(keys))
        self._https = pki.https()

    async def wait_node(self, i: int, deadline_s: float = 60.0) -> None:
        await ready(self.nodes[i], self.pki.tls())  # GetSystemInfo, which needs no key

    def samples(self, i: int) -> list[Sample]:
        node = self.nodes[i]
        assert not node.stopped, f"node {i} is paused"
        url = f"https://127.0.0.1:{node.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5, context=self._https) as resp:
            return parse_metrics(resp.read().decode())

    async def connect(self, i: int, namespace: str = "default", **kwargs) -> Client:
        return await Client.connect(self.address(i), namespace=namespace, tls=self.pki.tls(), **kwargs)


@asynccontextmanager
async def secure_cluster(test_dir: Path, size: int) -> AsyncIterator[tuple[SecureCluster, dict[str, str]]]:
    """`size` nodes, settled; at the end every node must exit 0 on SIGTERM, no log may hold a panic
    and no log a key."""
    pki = make_pki(test_dir / "certs", size)
    keys, secrets = keys_file(test_dir, {"writer": ("default:write",)})
    c = SecureCluster(test_dir, size, pki, keys)
    try:
        c.start()
        await c.wait_ready(deadline_s=60)
    except BaseException:
        c.close()
        raise
    try:
        yield c, secrets
    finally:
        codes = c.close()
    assert not c.panics(), f"node logs in {test_dir} contain panics: {c.panics()[:5]}"
    assert all(code == 0 for code in codes.values()), f"nodes did not exit 0 on SIGTERM: {codes}; logs in {test_dir}"
    for i in range(size):
        assert secrets["writer"] not in c.log(i), f"the writer key appears in node {i}'s log"


# --- 1. clients with keys through the nodes, calls forwarded -----------------------------------------


@activity.defn(name="secure_cluster_double")
async def secure_cluster_double(n: int) -> int:
    return 2 * n


@workflow.defn(name="SecureClusterFlow", sandboxed=False)
class SecureClusterFlow:
    @workflow.run
    async def run(self, n: int) -> str:
        doubled = await workflow.execute_activity(
            secure_cluster_double, n, start_to_close_timeout=timedelta(seconds=30)
        )
        return f"{n} doubled is {doubled}"


async def test_keys_and_mtls_across_nodes_with_forwarded_calls(test_dir: Path, task_queue: str, new_id) -> None:
    async with secure_cluster(test_dir, NODES) as (cluster, secrets):
        starter = await cluster.connect(0, api_key=secrets["writer"])
        polling = await cluster.connect(1, api_key=secrets["writer"])
        ids = [new_id("secure") for _ in range(WORKFLOWS)]
        async with Worker(
            polling,
            task_queue=task_queue,
            workflows=[SecureClusterFlow],
            activities=[secure_cluster_double],
            identity="secure-worker-on-node1",
        ):
            handles = [
                await starter.start_workflow(SecureClusterFlow.run, n, id=wid, task_queue=task_queue)
                for n, wid in enumerate(ids)
            ]
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
        assert results == [f"{n} doubled is {2 * n}" for n in range(WORKFLOWS)]

        # Node 0 passed starts of workflows it does not own to their nodes (over the internal
        # ports, with the nodes' certificates); all of them owned by node 0 has odds of ~1e-6.
        before = await forwarded_calls(cluster)
        assert before[0].get("StartWorkflowExecution", 0) >= 1, before
        print(
            f"node 0 forwarded {before[0]['StartWorkflowExecution']:.0f} of {WORKFLOWS} starts; "
            f"forwarded calls per node: {before}"
        )

        # No key, or an unknown key: refused on every node, for every workflow wherever it lives,
        # and starts too; refused where the call arrives, so never forwarded.
        for i in range(NODES):
            for api_key in (None, "uw-not-a-key"):
                stranger = await cluster.connect(i, api_key=api_key)
                await denied(
                    stranger.start_workflow(SecureClusterFlow.run, 0, id=new_id("denied"), task_queue=task_queue)
                )
                await denied(stranger.list_workflows().__anext__())
                for wid in ids:
                    await denied(stranger.get_workflow_handle(wid).describe())
        assert await forwarded_calls(cluster) == before

        # The writer's key works through every node, each forwarding describes of the workflows
        # others own (each node owning all 12 has odds of ~1e-6).
        for i in range(NODES):
            writer = await cluster.connect(i, api_key=secrets["writer"])
            for wid in ids:
                assert (await writer.get_workflow_handle(wid).describe()).id == wid
        after = await forwarded_calls(cluster)
        assert all(after[i].get("DescribeWorkflowExecution", 0) >= 1 for i in range(NODES)), after


async def forwarded_calls(cluster: SecureCluster) -> dict[int, dict[str, float]]:
    """uhrwerk_cluster_forwarded_calls_total of each node, by method."""
    out = {}
    for i in range(cluster.size):
        samples = await asyncio.to_thread(cluster.samples, i)
        out[i] = {
            s.labels.get("method", ""): s.value for s in samples if s.name == "uhrwerk_cluster_forwarded_calls_total"
        }
    return out


# --- 2. the internal port takes nodes only ------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


@dataclass
class Attempt:
    """What a connection to the internal port got: `refused` (and how), or the handshake done with
    the ALPN protocol, the CN the node presented and the first frame header it sent."""

    refused: str | None = None
    alpn: str | None = None
    peer_cn: str | None = None
    first_frame: bytes = b""

    @property
    def speaks_h2(self) -> bool:
        # An HTTP/2 server's first frame is SETTINGS: 3 bytes of length, type 4, flags, stream 0.
        return len(self.first_frame) == 9 and self.first_frame[3] == 0x04 and self.first_frame[5:] == b"\x00" * 4


def read_exactly(sock: socket.socket | ssl.SSLSocket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def try_tls(port: int, ca: Path, cert: tuple[Path, Path] | None) -> Attempt:
    """TLS to 127.0.0.1:port trusting `ca` (name checked) with ALPN h2, presenting `cert`; then the
    HTTP/2 preface, and the first frame header read back. Under TLS 1.3 the client finishes its
    handshake before the server judges its certificate: a refusal may come at the first read."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, OSError) as e:
            return Attempt(refused=f"handshake: {e}")
        with tls:
            subject = dict(kv for rdn in tls.getpeercert().get("subject", ()) for kv in rdn)
            attempt = Attempt(alpn=tls.selected_alpn_protocol(), peer_cn=subject.get("commonName"))
            try:
                tls.sendall(H2_PREFACE)
                attempt.first_frame = read_exactly(tls, 9)
            except (ssl.SSLError, OSError) as e:
                attempt.refused = f"first read: {e}"
                return attempt
            if not attempt.first_frame:
                attempt.refused = "first read: closed"
            return attempt


def try_plaintext(port: int) -> Attempt:
    """The HTTP/2 preface in plaintext, and what comes back until the node closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            raw.sendall(H2_PREFACE)
            got = read_exactly(raw, 9)
        except OSError as e:
            return Attempt(refused=f"plaintext: {e}")
        if not got:
            return Attempt(refused="plaintext: closed")
        return Attempt(first_frame=got, refused=None if got[:1] != b"\x15" else f"plaintext: TLS alert {got!r}")


async def test_the_internal_port_takes_only_certificates_of_the_cluster_ca(test_dir: Path) -> None:
    async with secure_cluster(test_dir, 2) as (cluster, _):
        pki = cluster.pki
        intruder = make_leaf(pki.dir, "intruder", make_ca(pki.dir, "stranger-ca"), server=False)
        member = make_leaf(pki.dir, "cluster-signed", pki.cluster_ca, server=False)
        for i, node in enumerate(cluster.nodes):
            port = node.internal_port
            plain = await asyncio.to_thread(try_plaintext, port)
            assert plain.refused and not plain.speaks_h2, (i, plain)
            anonymous = await asyncio.to_thread(try_tls, port, pki.cluster_ca[0], None)
            assert anonymous.refused and not anonymous.speaks_h2, (i, anonymous)
            # Certificates of other CAs: a stranger's, and the client CA's, which opens the
            # frontends (mTLS) but not the internal port.
            for cert in (intruder, pki.client):
                other_ca = await asyncio.to_thread(try_tls, port, pki.cluster_ca[0], cert)
                assert other_ca.refused and not other_ca.speaks_h2, (i, cert[0].name, other_ca)
            # A certificate of the cluster CA gets in; the node presents its own certificate.
            accepted = await asyncio.to_thread(try_tls, port, pki.cluster_ca[0], member)
            assert accepted.refused is None, (i, accepted)
            assert (accepted.alpn, accepted.peer_cn, accepted.speaks_h2) == ("h2", f"node{i}", True), (i, accepted)
            print(
                f"node {i} internal port {port}: plaintext {plain.refused!r}; no certificate "
                f"{anonymous.refused!r}; client CA's {other_ca.refused!r}; cluster CA's: ALPN {accepted.alpn}"
            )

            # Calls there are served without a key (forwarded calls were authorized where they
            # arrived): the certificate is the internal port's only gate.
            inside = await Client.connect(
                f"127.0.0.1:{port}",
                tls=TLSConfig(
                    server_root_ca_cert=pki.cluster_ca[0].read_bytes(),
                    domain="localhost",
                    client_cert=member[0].read_bytes(),
                    client_private_key=member[1].read_bytes(),
                ),
            )
            described = await inside.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
            assert described.namespace_info.name == "default"
            # ... while the same call through the node's frontend needs one.
            await denied(
                (await cluster.connect(i)).workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default")
                )
            )


# --- 3. what a cluster node refuses to start with ------------------------------------------------------

TLS_NEEDS_CA = "TLS in a cluster needs --cluster-tls-ca, the CA that signs the nodes' certificates"
AUTH_NEEDS_TLS = "authorization in a cluster needs TLS between the nodes"


def node_command(database_url: str, *args: str, metrics_port: int = 0) -> list[str]:
    """`uhrwerk server start` as a node of a cluster on `database_url` (free ports), with `args`."""
    binary = uhrwerk_binary()
    assert binary is not None and binary.exists(), "uhrwerk binary not found"
    port, internal = free_ports(2)
    cmd = [str(binary), "server", "start", "--headless", "--database-url", database_url, "--ip", "127.0.0.1"]
    cmd += ["--port", str(port), "--metrics-port", str(metrics_port), "--advertise-address", f"127.0.0.1:{internal}"]
    return [*cmd, "--cluster-shards", str(SHARDS), "--shard-lease", "2s", *args]


def refused_start(database_url: str, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    """A node started with `args`, expected to exit by itself within `timeout_s`."""
    cmd = node_command(database_url, *args)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"the node did not exit within {timeout_s}s: {cmd}\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


async def test_a_node_refuses_tls_or_authorization_without_the_cluster_ca(test_dir: Path) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "cluster-ca")
    cert, key = make_node_cert(d, "node0", ca)
    keys, _ = keys_file(test_dir, {"writer": ("default:write",)})
    jwks = test_dir / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    database_url = fresh_database()
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    cases = {
        "TLS without --cluster-tls-ca": ((*tls,), TLS_NEEDS_CA),
        "API keys without TLS": (("--api-keys-file", str(keys)), AUTH_NEEDS_TLS),
        "API keys and TLS without --cluster-tls-ca": ((*tls, "--api-keys-file", str(keys)), AUTH_NEEDS_TLS),
        "a JWKS without TLS": (("--jwt-jwks", str(jwks)), AUTH_NEEDS_TLS),
    }
    runs = await asyncio.gather(*(asyncio.to_thread(refused_start, database_url, *args) for args, _ in cases.values()))
    for (name, (_, message)), run in zip(cases.items(), runs, strict=True):
        assert run.returncode != 0, (name, run.returncode, run.stderr)
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), (name, run.stderr)
        assert "panicked" not in run.stderr, (name, run.stderr)
    print(f"refused starts, exit codes {[r.returncode for r in runs]}: {[r.stderr.strip()[:90] for r in runs]}")

    # The same node with the cluster CA starts (so the refusals were about the flags): it answers
    # over TLS with its certificate and authorizes.
    log = test_dir / "node-with-ca.log"
    cmd = node_command(database_url, *tls, "--cluster-tls-ca", str(ca[0]), "--api-keys-file", str(keys))
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        node = _Proc(proc, f"127.0.0.1:{cmd[cmd.index('--port') + 1]}", log)
        client = await ready(node, TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost"))
        await denied(client.list_workflows().__anext__())
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(f"the node did not exit within 30s of SIGTERM; see {log}") from None
    assert code == 0, f"the node exited with {code} on SIGTERM; see {log}"
    assert "panicked" not in log.read_text(errors="replace"), f"the node panicked; see {log}"


@dataclass
class _Proc:
    """What test_tls.ready needs of a server."""

    proc: subprocess.Popen[bytes]
    address: str
    log_file: Path
