"""Real loopback servers standing in for the services channels deliver to, for any test to reuse.

`HttpReceiver` is an aiohttp server on 127.0.0.1 (a webhook, Slack, Discord,
the Telegram Bot API, PagerDuty's Events API): it records every request
and answers from a per-path script, else `default_status`. `SmtpReceiver`
is an aiosmtpd server on 127.0.0.1 with optional STARTTLS or implicit TLS
(a certificate made for the occasion, `client_ssl_context()` trusts it) and
optional AUTH; it records every message it takes.

    async with HttpReceiver() as hooks:
        hooks.script("/hook", Reply(503, headers={"Retry-After": "7"}), Reply(200))
        ...send to hooks.url("/hook")...
        [request] = await hooks.wait_for(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.conftest import free_port
from tests.waiting import until

__all__ = ["HttpReceiver", "ReceivedMail", "ReceivedRequest", "Reply", "SmtpReceiver", "StreamRecord"]

LOOPBACK: Final = "127.0.0.1"
_STREAM_CHUNK: Final = 64 * 1024


# --- HTTP --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer. `json` (when not None) becomes the body, as application/json."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = b""
    json: Any = None
    delay_s: float = 0.0  # before answering (a slow destination)
    stream_bytes: int = 0  # a body this long, written in chunks (a destination answering too much)


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # as received: what a signature is computed over
    json: Any  # the body parsed, or None when it is not JSON
    received_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class StreamRecord:
    path: str
    sent: int  # bytes of the body written before the client went away (or all of them)
    complete: bool


class HttpReceiver:
    def __init__(self, *, default_status: int = 200) -> None:
        self.default_status = default_status
        self.requests: list[ReceivedRequest] = []
        self.streams: list[StreamRecord] = []
        self._scripts: defaultdict[str, deque[Reply]] = defaultdict(deque)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def script(self, path: str, *replies: Reply) -> None:
        """Answers for `path`, in order, one per request; then `default_status` again."""
        self._scripts[path].extend(replies)

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def on(self, path: str) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.path == path]

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedRequest]:
        """The first `count` requests, once they all arrived (AssertionError after `timeout_s`)."""
        await until(lambda: len(self.requests) >= count, timeout_s,
                    lambda: f"{count} requests expected, {len(self.requests)} received")
        return self.requests[:count]

    async def wait_for_streams(self, count: int, timeout_s: float = 5.0) -> list[StreamRecord]:
        await until(lambda: len(self.streams) >= count, timeout_s,
                    lambda: f"{count} streamed answers expected, {len(self.streams)} ended")
        return self.streams[:count]

    async def start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # Bound before the site starts: the port is ours, no race with another test picking it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self._closing.set()  # slow answers end now, not after their delay
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        self.requests.append(ReceivedRequest(request.method, request.path, dict(request.query),
                                             request.headers.copy(), body, parsed, time.monotonic()))
        queue = self._scripts.get(request.path)
        reply = queue.popleft() if queue else Reply(self.default_status)
        if reply.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay_s)
        if reply.stream_bytes:
            return await self._stream(request, reply)
        headers = dict(reply.headers)
        payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        if reply.json is not None:
            payload = orjson.dumps(reply.json)
            headers.setdefault("Content-Type", "application/json")
        return web.Response(status=reply.status, headers=headers, body=payload)

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        response.content_length = reply.stream_bytes
        await response.prepare(request)
        chunk = b"x" * _STREAM_CHUNK
        sent = 0
        try:
            while sent < reply.stream_bytes:
                piece = chunk[: min(_STREAM_CHUNK, reply.stream_bytes - sent)]
                await response.write(piece)
                sent += len(piece)
        except ConnectionError:
            self.streams.append(StreamRecord(request.path, sent, complete=False))
            return response
        self.streams.append(StreamRecord(request.path, sent, complete=True))
        return response


# --- SMTP --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool  # the session was encrypted when the message came
    user: str | None  # who authenticated, if anyone
    received_at: float  # time.monotonic()


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): a CA of its own signing a server
    certificate for localhost and 127.0.0.1, as a client's strict verification expects."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Chimera test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class SmtpReceiver:
    """`starttls`: offered, and required before mail; `implicit_tls`: TLS from the first byte;
    `user`/`password`: AUTH (PLAIN, LOGIN) required, and only over STARTTLS (with implicit TLS:
    offered, not required)."""

    def __init__(self, *, starttls: bool = False, implicit_tls: bool = False, user: str | None = None,
                 password: str | None = None) -> None:
        if starttls and implicit_tls:
            raise ValueError("starttls or implicit_tls, not both")
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.user = user
        self.password = password
        self.mails: list[ReceivedMail] = []
        self.auth_attempts: list[tuple[str, bool]] = []  # (login, accepted)
        self.host = LOOPBACK
        self.port = 0
        self._data_replies: deque[str] = deque()
        self._lock = threading.Lock()  # the server runs in aiosmtpd's own thread
        self._folder: Path | None = None
        self._ca: Path | None = None
        self._controller: Controller | None = None

    def script_data(self, *replies: str) -> None:
        """Replies to the next messages' DATA, in order (`"451 4.3.0 try later"`); then 250."""
        with self._lock:
            self._data_replies.extend(replies)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context trusting this receiver's CA (hostnames checked)."""
        if self._ca is None:
            raise RuntimeError("the receiver has no certificate (start it with starttls or implicit_tls)")
        return ssl.create_default_context(cafile=str(self._ca))

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMail]:
        await until(lambda: len(self.mails) >= count, timeout_s,
                    lambda: f"{count} mails expected, {len(self.mails)} received")
        with self._lock:
            return self.mails[:count]

    async def start(self) -> None:
        kwargs: dict[str, Any] = {"server_hostname": "chimera-test-smtp", "ready_timeout": 5.0}
        if self.starttls or self.implicit_tls:
            self._folder = Path(tempfile.mkdtemp(prefix="chimera-smtp-"))
            self._ca, cert, key = _certificate(self._folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert), str(key))
            if self.starttls:
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs["ssl_context"] = context
        if self.user is not None:
            # aiosmtpd counts only STARTTLS as TLS for AUTH, and warns when AUTH is required
            # without it: with implicit TLS (TLS all along) AUTH is offered, and `user` shows its use.
            kwargs.update(authenticator=self._authenticate, auth_required=not self.implicit_tls,
                          auth_require_tls=not self.implicit_tls)
        self.port = free_port()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        # start() blocks until the server answers: off the loop, which may be serving the test.
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        accepted = login == self.user and auth_data.password.decode("utf-8", "replace") == self.password
        with self._lock:
            self.auth_attempts.append((login, accepted))
        return AuthResult(success=accepted, handled=False, auth_data=login)

    def _take(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content if isinstance(envelope.original_content, bytes) else b""
        # Parsed as a mail store keeps it (LF line ends): the text parts then read as they were written.
        parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            if self._data_replies:
                return self._data_replies.popleft()  # refused: not recorded as received
            self.mails.append(ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), parsed, raw,
                                           _encrypted(server),
                                           session.auth_data if isinstance(session.auth_data, str) else None,
                                           time.monotonic()))
        return "250 Message accepted for delivery"


def _encrypted(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


class _Handler:
    """aiosmtpd's handler: it finds `handle_DATA` by that name."""

    def __init__(self, receiver: SmtpReceiver) -> None:
        self._receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        return self._receiver._take(server, session, envelope)
