"""JWT authentication (`--jwt-jwks`, Uhrwerk only), over TLS as in production: tokens signed with
RSA (RS256) and EC P-256 (ES256) keys the test makes with `cryptography`, checked against a JWKS
file or URL; `exp` required, `nbf` honoured, `--jwt-audience` and `--jwt-issuer` enforced, `alg:
none` and HS256 refused; the `permissions` claim (or the one `--jwt-permissions-claim` names) read
with the grammar of Temporal's default JWT claim mapper and decided by Temporal's default
authorizer. The Python SDK (`api_key=<jwt>`) and the CLI (`--api-key <jwt>`) send the token as
`Authorization: Bearer`; every refusal is PERMISSION_DENIED "Request unauthorized."; keys added to
(and removed from) the JWKS are picked up without a restart; no token reaches the log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from temporalio import workflow
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import temporal_cli
from compat_util import secret
from test_tls import make_ca, make_leaf, ready

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make certificates")

AUDIENCE = "uhrwerk"
ISSUER = "https://issuer.test"


@pytest.fixture
def uhrwerk_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("the dev server has no JWKS flags")


@workflow.defn(name="JwtHello")
class JwtHello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


@dataclass
class SigningKey:
    """A key pair the test signs tokens with; `jwk()` is its public half as a JWKS entry."""

    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        public.pop("key_ops", None)  # as identity providers publish them: `use`, not `key_ops`
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, claims: dict[str, Any], *, with_kid: bool = True) -> str:
        token = jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid} if with_kid else None)
        secret(token.rsplit(".", 1)[-1])  # the signature: no server log may hold it (conftest.py)
        return secret(token)


def claims(*permissions: str, claim: str = "permissions", **overrides: Any) -> dict[str, Any]:
    """A token's claims, valid for ten minutes; an override of None leaves the claim out."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": f"user-{uuid.uuid4().hex[:6]}", "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                            "exp": now + 600, claim: list(permissions)}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], body: dict[str, Any], hmac_secret: bytes | None) -> str:
    """A token PyJWT refuses to make: `alg: none` (empty signature) or HS256 keyed with a public key."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered(token: str, body: dict[str, Any]) -> str:
    """The token with another payload under its original header and signature."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(body).encode())}.{signature}"


def jwks_document(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [k.jwk() for k in keys]}


def write_jwks(path: Path, keys: list[SigningKey]) -> None:
    """Replaces the file atomically, as a careful operator (or a secret mount) does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jwks_document(keys)))
    os.replace(tmp, path)


async def start_server(server_factory, test_dir: Path, *extra: str):
    """A TLS server with the given flags; returns it, the clients' TLS config and the CA file."""
    d = test_dir / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    cert, key = make_leaf(d, "server", ca, server=True)
    srv = server_factory("jwt", extra_args=("--tls-cert", str(cert), "--tls-key", str(key), *extra))
    srv.start()
    tls = TLSConfig(server_root_ca_cert=ca[0].read_bytes(), domain="localhost")
    await ready(srv, tls)
    return srv, tls, ca[0]


async def denied(call: Awaitable[Any], what: str = "") -> None:
    with pytest.raises(RPCError) as raised:
        await call
    assert raised.value.status == RPCStatusCode.PERMISSION_DENIED, (what, raised.value)
    assert raised.value.message == "Request unauthorized.", (what, raised.value.message)


async def until(call: Callable[[], Awaitable[Any]], *, allowed: bool, what: str, timeout: float = 30.0) -> None:
    """Repeats `call` until it is allowed (or refused with PERMISSION_DENIED), within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await call()
            outcome = True
        except RPCError as err:
            if err.status != RPCStatusCode.PERMISSION_DENIED:
                raise
            outcome = False
        if outcome == allowed:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {'refused' if allowed else 'allowed'} after {timeout}s")
        await asyncio.sleep(0.2)


def no_token_in_log(srv, tokens: list[str]) -> None:
    assert srv.terminate() == 0
    log = srv.log_file.read_text(errors="replace")
    for token in tokens:
        assert token not in log, "a token appears in the server log"
        assert token.rsplit(".", 1)[-1] not in log, "a token's signature appears in the server log"


async def test_jwt_from_a_jwks_file(server_factory, test_dir: Path, uhrwerk_only) -> None:
    rsa_key, ec_key = SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")
    jwks = test_dir / "jwks.json"
    write_jwks(jwks, [rsa_key, ec_key])
    srv, tls, ca = await start_server(server_factory, test_dir, "--jwt-jwks", str(jwks), "--jwt-audience", AUDIENCE,
                                      "--jwt-issuer", ISSUER, "--namespace", "other")

    async def connect(token: str | None, namespace: str = "default") -> Client:
        return await Client.connect(srv.address, tls=tls, api_key=token, namespace=namespace)

    # The SDK with an RS256 token (an `aud` list that contains ours): a worker and a client run a workflow.
    writer_token = rsa_key.token(claims("default:write", aud=["another-service", AUDIENCE]))
    writer = await connect(writer_token)
    task_queue = f"jwt-{uuid.uuid4().hex[:8]}"
    wid = f"jwt-{uuid.uuid4()}"
    async with Worker(writer, task_queue=task_queue, workflows=[JwtHello], workflow_runner=UnsandboxedWorkflowRunner()):
        assert await writer.execute_workflow(JwtHello.run, "rs256", id=wid, task_queue=task_queue) == "hello rs256"

    # The CLI with an ES256 token starts and describes a workflow; with an expired one it is refused.
    now = int(time.time())
    es_token = ec_key.token(claims("default:write"))
    expired_token = ec_key.token(claims("default:write", iat=now - 7200, exp=now - 3600))
    conn = ["--address", srv.address, "--namespace", "default", "--tls-ca-path", str(ca), "--tls-server-name",
            "localhost"]

    def cli(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(temporal_cli()), *args, *conn, "--api-key", token], capture_output=True,
                              text=True, timeout=60)

    cli_wid = f"jwt-cli-{uuid.uuid4()}"
    out = await asyncio.to_thread(cli, es_token, "workflow", "start", "--type", "JwtHello", "--task-queue",
                                  task_queue, "--workflow-id", cli_wid, "--input", '"cli"')
    assert out.returncode == 0, out.stderr
    out = await asyncio.to_thread(cli, es_token, "workflow", "describe", "--workflow-id", cli_wid, "--output", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["workflowExecutionInfo"]
    assert (info["execution"]["workflowId"], info["type"]["name"]) == (cli_wid, "JwtHello"), info
    out = await asyncio.to_thread(cli, expired_token, "workflow", "describe", "--workflow-id", cli_wid)
    assert out.returncode != 0 and "unauthorized" in (out.stderr + out.stdout).lower(), out.stderr

    # Without a kid every key of the token's type is tried.
    no_kid = await connect(ec_key.token(claims("default:write"), with_kid=False))
    assert (await no_kid.get_workflow_handle(wid).describe()).id == wid

    # Refused, each trying a start with `default:write` claims.
    good = claims("default:write")
    stranger = SigningKey.rsa("rsa-1")  # a key nobody listed, under a listed kid
    refused = {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "expired an hour ago": expired_token,
        "not valid before an hour from now": rsa_key.token(claims("default:write", nbf=now + 3600)),
        "without exp": rsa_key.token(claims("default:write", exp=None)),
        "signed by an unlisted key under a listed kid": stranger.token(good),
        "signed by an unlisted key without a kid": stranger.token(good, with_kid=False),
        "a kid nobody listed": SigningKey.ec("ec-unknown").token(good),
        "another audience": rsa_key.token(claims("default:write", aud="someone-else")),
        "an audience list without ours": ec_key.token(claims("default:write", aud=["a", "b"])),
        "without aud": rsa_key.token(claims("default:write", aud=None)),
        "another issuer": rsa_key.token(claims("default:write", iss="https://evil.test")),
        "without iss": ec_key.token(claims("default:write", iss=None)),
        "alg none": forged({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, good, None),
        "HS256 keyed with the RSA public key": forged({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, good,
                                                      rsa_key.public_pem()),
        "a payload changed after signing": tampered(rsa_key.token(claims("default:read")),
                                                    claims("temporal-system:admin")),
    }
    for what, token in refused.items():
        client = await connect(token)
        await denied(client.start_workflow(JwtHello.run, "x", id=f"jwt-{uuid.uuid4()}", task_queue=task_queue), what)

    # Roles: a reader describes but does not start; a token for `other` reads nothing in `default`
    # and writes in `other`.
    reader = await connect(rsa_key.token(claims("default:read")))
    assert (await reader.get_workflow_handle(wid).describe()).id == wid
    await denied(reader.start_workflow(JwtHello.run, "r", id=f"jwt-{uuid.uuid4()}", task_queue=task_queue))
    other_token = ec_key.token(claims("other:write"))
    await denied((await connect(other_token)).get_workflow_handle(wid).describe())
    other = await connect(other_token, namespace="other")
    handle = await other.start_workflow(JwtHello.run, "o", id=f"jwt-{uuid.uuid4()}", task_queue=task_queue)
    await handle.terminate()

    # Rotation: a key added to the file is accepted without a restart...
    new_key = SigningKey.rsa("rsa-2")
    newcomer = await connect(new_key.token(claims("default:read")))
    await denied(newcomer.get_workflow_handle(wid).describe(), "a kid not in the file yet")
    write_jwks(jwks, [rsa_key, ec_key, new_key])
    await until(lambda: newcomer.get_workflow_handle(wid).describe(), allowed=True,
                what="a token signed by the key added to the JWKS file")
    # ... and one removed from it is no longer.
    write_jwks(jwks, [ec_key, new_key])
    await until(lambda: writer.get_workflow_handle(wid).describe(), allowed=False,
                what="a token signed by the key removed from the JWKS file")
    assert (await no_kid.get_workflow_handle(wid).describe()).id == wid

    no_token_in_log(srv, [writer_token, es_token, expired_token, other_token])


class JwksServer:
    """Serves a JWKS over HTTP from a thread and counts the fetches."""

    def __init__(self, keys: list[SigningKey]):
        self.keys = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server interface
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                outer.fetches += 1
                body = json.dumps(jwks_document(outer.keys)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"


@contextmanager
def serve_jwks(keys: list[SigningKey]) -> Iterator[JwksServer]:
    served = JwksServer(keys)
    thread = threading.Thread(target=served.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.httpd.shutdown()
        served.httpd.server_close()
        thread.join(timeout=10)


async def test_jwt_from_a_jwks_url_with_a_custom_permissions_claim(server_factory, test_dir: Path,
                                                                   uhrwerk_only) -> None:
    claim = "https://uhrwerk.test/permissions"
    key = SigningKey.ec("url-ec-1")
    with serve_jwks([key]) as served:
        srv, tls, _ = await start_server(server_factory, test_dir, "--jwt-jwks", served.url, "--jwt-audience",
                                         AUDIENCE, "--jwt-issuer", ISSUER, "--jwt-permissions-claim", claim)

        async def connect(token: str) -> Client:
            return await Client.connect(srv.address, tls=tls, api_key=token)

        # Permissions under the configured claim count.
        token = key.token(claims("default:write", claim=claim))
        writer = await connect(token)
        handle = await writer.start_workflow(JwtHello.run, "url", id=f"jwt-url-{uuid.uuid4()}",
                                             task_queue=f"jwt-url-{uuid.uuid4().hex[:8]}")
        assert (await handle.describe()).id == handle.id
        assert served.fetches >= 1
        # Under the default name they do not; a token with both is read from the configured one.
        await denied((await connect(key.token(claims("default:write")))).get_workflow_handle(handle.id).describe(),
                     "permissions under the default claim name")
        both = claims("default:read", claim=claim)
        both["permissions"] = ["temporal-system:admin"]
        mixed = await connect(key.token(both))
        assert (await mixed.get_workflow_handle(handle.id).describe()).id == handle.id
        await denied(mixed.get_workflow_handle(handle.id).terminate(), "the default claim's admin role")

        # A key added to the served set is fetched when a token names its kid.
        new_key = SigningKey.rsa("url-rsa-2")
        served.keys = [key, new_key]
        newcomer = await connect(new_key.token(claims("default:read", claim=claim)))
        await until(lambda: newcomer.get_workflow_handle(handle.id).describe(), allowed=True,
                    what="a token signed by the key added to the served JWKS")

        # Unknown kids make the server fetch again at most once per 10 s.
        before = served.fetches
        for i in range(5):
            ghost = await connect(SigningKey.ec(f"ghost-{i}").token(claims("default:read", claim=claim)))
            await denied(ghost.get_workflow_handle(handle.id).describe(), f"unknown kid ghost-{i}")
        assert served.fetches - before <= 1, (before, served.fetches)

        await handle.terminate()
        no_token_in_log(srv, [token])
