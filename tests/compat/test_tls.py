"""TLS and mutual TLS on the gRPC frontend (`--tls-cert`, `--tls-key`, `--tls-client-ca`), with
certificates the test makes with the openssl CLI: the Python SDK and the `temporal` CLI connect
and run a workflow; a client that trusts another CA, a plaintext client, a client without a
certificate under mTLS and one whose certificate another CA signed are refused; a certificate
replaced on disk is served to new connections (after SIGHUP, and by itself when the file
changes) while a long poll opened before goes on and gets its task."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest, PollWorkflowTaskQueueRequest
from temporalio.client import Client, TLSConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import free_port, temporal_cli
from compat_util import eventually, secret

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make certificates")


@pytest.fixture
def uhrwerk_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("the dev server takes its TLS settings from a config file, not these flags")


def openssl(*args: str) -> None:
    out = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    secret_key(key)
    return cert, key


def make_leaf(d: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(csr))
    usage = "serverAuth" if server else "clientAuth"
    ext.write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))
    secret_key(key)
    return cert, key


def secret_key(path: Path) -> None:
    """A private key's material is a secret no server log may hold (conftest.py)."""
    body = "".join(line for line in path.read_text().splitlines() if not line.startswith("-----"))
    secret(body[48:96])  # past the ASN.1 header every P-256 key shares: the private scalar


def make_expired_leaf(d: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A client certificate the CA signed that expired yesterday (openssl's `x509 -req` cannot
    date one in the past; `cryptography` can)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = d / f"{name}.pem", d / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    secret_key(key_path)
    return cert_path, key_path


def presented_certificate(port: int) -> str:
    """The subject CN the server presents to a new connection."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True)
    return out.stdout.strip().rsplit("=", 1)[-1].strip()


@workflow.defn(name="TlsHello")
class TlsHello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name} over TLS"


async def connect(address: str, tls: TLSConfig | bool) -> Client:
    return await asyncio.wait_for(Client.connect(address, tls=tls), timeout=15)


async def ready(srv, tls: TLSConfig) -> Client:
    """Connects once the TLS frontend answers (the server may still be starting)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        assert srv.proc is not None and srv.proc.poll() is None, f"the server exited; see {srv.log_file}"
        try:
            return await connect(srv.address, tls)
        except Exception:  # noqa: BLE001 - not listening yet
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def refused(address: str, tls: TLSConfig | bool) -> str:
    """Connecting (the SDK checks the server with a first call) fails; its message."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the SDK raises RuntimeError or RPCError
        await connect(address, tls)
    return str(raised.value)


async def start_tls_server(server_factory, *extra: str):
    srv = server_factory("tls", extra_args=tuple(extra))
    srv.start()
    return srv


async def test_tls_and_mtls_with_the_sdk_and_the_cli(server_factory, test_dir: Path, uhrwerk_only) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca, other_ca = make_ca(d, "ca"), make_ca(d, "other-ca")
    server_cert, server_key = make_leaf(d, "server", ca, server=True)
    client_cert, client_key = make_leaf(d, "client", ca, server=False)
    stranger_cert, stranger_key = make_leaf(d, "stranger", other_ca, server=False)
    srv = await start_tls_server(server_factory, "--tls-cert", str(server_cert), "--tls-key", str(server_key),
                                 "--tls-client-ca", str(ca[0]))
    trust = ca[0].read_bytes()
    mtls = TLSConfig(server_root_ca_cert=trust, domain="localhost", client_cert=client_cert.read_bytes(),
                     client_private_key=client_key.read_bytes())
    client = await ready(srv, mtls)
    task_queue = f"tls-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[TlsHello], workflow_runner=UnsandboxedWorkflowRunner()):
        result = await client.execute_workflow(TlsHello.run, "mtls", id=f"tls-{uuid.uuid4()}", task_queue=task_queue)
    assert result == "hello mtls over TLS"

    # Refused: no client certificate, one from another CA, an expired one, a client trusting
    # another CA, plaintext.
    await refused(srv.address, TLSConfig(server_root_ca_cert=trust, domain="localhost"))
    expired_cert, expired_key = make_expired_leaf(d, "expired", ca)
    await refused(srv.address, TLSConfig(server_root_ca_cert=trust, domain="localhost",
                                         client_cert=expired_cert.read_bytes(),
                                         client_private_key=expired_key.read_bytes()))
    await refused(srv.address, TLSConfig(server_root_ca_cert=trust, domain="localhost",
                                         client_cert=stranger_cert.read_bytes(),
                                         client_private_key=stranger_key.read_bytes()))
    await refused(srv.address, TLSConfig(server_root_ca_cert=other_ca[0].read_bytes(), domain="localhost",
                                         client_cert=client_cert.read_bytes(),
                                         client_private_key=client_key.read_bytes()))
    await refused(srv.address, False)

    # The CLI with the same files.
    cli = [str(temporal_cli()), "workflow", "list", "--address", srv.address, "--tls-ca-path", str(ca[0]),
           "--tls-cert-path", str(client_cert), "--tls-key-path", str(client_key), "--tls-server-name", "localhost",
           "--query", f"TaskQueue = '{task_queue}'", "--output", "json"]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "TlsHello" in out.stdout, out.stdout
    no_cert = [a for a in cli if a not in (str(client_cert), str(client_key), "--tls-cert-path", "--tls-key-path")]
    out = subprocess.run(no_cert, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout
    assert srv.terminate() == 0


async def test_a_replaced_certificate_reaches_new_connections_while_a_long_poll_goes_on(
    server_factory, test_dir: Path, uhrwerk_only
) -> None:
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    first = make_leaf(d, "first", ca, server=True)
    live_cert, live_key = d / "live.pem", d / "live.key"
    shutil.copy(first[0], live_cert)
    shutil.copy(first[1], live_key)
    srv = await start_tls_server(server_factory, "--tls-cert", str(live_cert), "--tls-key", str(live_key))
    tls = TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost")
    client = await ready(srv, tls)
    assert presented_certificate(srv.port) == "first"

    # A long poll on the connection made with the first certificate (whether it reaches the
    # server before or after the rotation, it waits on that connection).
    task_queue = f"tls-rotate-{uuid.uuid4().hex[:8]}"
    poll = asyncio.ensure_future(client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
                                     identity="long-poller")))

    # Replaced on disk, then SIGHUP: new connections get the second certificate.
    second = make_leaf(d, "second", ca, server=True)
    shutil.copy(second[0], live_cert)
    shutil.copy(second[1], live_key)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)
    await eventually(lambda: asyncio.to_thread(presented_certificate, srv.port), lambda cn: cn == "second",
                     timeout=20, what="the second certificate is presented")

    # The open poll goes on: a workflow started now reaches it.
    await client.start_workflow(TlsHello.run, "rotated", id=f"tls-rotate-{uuid.uuid4()}", task_queue=task_queue)
    task = await asyncio.wait_for(poll, timeout=30)
    assert task.task_token and task.workflow_type.name == "TlsHello"

    # Without a signal: the files change and the server notices by itself.
    third = make_leaf(d, "third", ca, server=True)
    shutil.copy(third[1], live_key)
    shutil.copy(third[0], live_cert)
    await eventually(lambda: asyncio.to_thread(presented_certificate, srv.port), lambda cn: cn == "third",
                     timeout=20, what="the third certificate is presented")
    fresh = await connect(srv.address, tls)
    assert (await fresh.workflow_service.get_system_info(GetSystemInfoRequest())).server_version
    assert srv.terminate() == 0


def https_get(url: str, ca: Path, client: tuple[Path, Path] | None = None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(ca))
    if client:
        context.load_cert_chain(str(client[0]), str(client[1]))
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def plain_get_fails(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=10).read()
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


async def test_every_http_endpoint_is_tls_too(server_factory, test_dir: Path, uhrwerk_only) -> None:
    """The metrics endpoint, the HTTP API and the web UI serve TLS with the frontend's
    certificate (and require client certificates under mTLS); the UI's health page still runs
    the doctor, in process."""
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    client = make_leaf(d, "client", ca, server=False)
    ui_port, http_port = free_port(), free_port()
    srv = await start_tls_server(server_factory, "--tls-cert", str(cert), "--tls-key", str(key),
                                 "--ui-port", str(ui_port), "--http-port", str(http_port))
    sdk = await ready(srv, TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost"))
    task_queue = f"tls-http-{uuid.uuid4().hex[:8]}"
    async with Worker(sdk, task_queue=task_queue, workflows=[TlsHello], workflow_runner=UnsandboxedWorkflowRunner()):
        await sdk.execute_workflow(TlsHello.run, "http", id=f"tls-http-{uuid.uuid4()}", task_queue=task_queue)

    status, body = https_get(f"https://localhost:{srv.metrics_port}/metrics", ca[0])
    assert status == 200 and "uhrwerk_limit" in body, body[:300]
    assert plain_get_fails(f"http://127.0.0.1:{srv.metrics_port}/metrics")
    status, body = https_get(f"https://localhost:{http_port}/api/v1/namespaces/default/workflows", ca[0])
    assert status == 200 and "TlsHello" in body, body[:300]
    assert plain_get_fails(f"http://127.0.0.1:{http_port}/api/v1/namespaces/default/workflows")
    status, page = https_get(f"https://localhost:{ui_port}/namespaces/default/health", ca[0])
    assert status == 200, page[:300]
    findings = page.split("Findings of uhrwerk doctor", 1)[1].split("</section>", 1)[0]
    assert "could not read this server" not in findings, findings[:500]
    assert plain_get_fails(f"http://127.0.0.1:{ui_port}/namespaces/default/health")
    assert srv.terminate() == 0

    # Under mTLS, the HTTP endpoints want a client certificate too.
    srv = await start_tls_server(server_factory, "--tls-cert", str(cert), "--tls-key", str(key),
                                 "--tls-client-ca", str(ca[0]), "--http-port", str(free_port()))
    await ready(srv, TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost",
                               client_cert=client[0].read_bytes(), client_private_key=client[1].read_bytes()))
    status, body = https_get(f"https://localhost:{srv.metrics_port}/metrics", ca[0], client)
    assert status == 200 and "uhrwerk_limit" in body
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        https_get(f"https://localhost:{srv.metrics_port}/metrics", ca[0])
    assert srv.terminate() == 0
