"""Handing an email to a channel's smarthost (aiosmtplib).

The smarthost is a destination like any URL: its name is resolved here and
every address checked (`address_refusal`) before anything connects, and the
connection goes to a checked address (we connect the socket ourselves and
hand it to aiosmtplib, keeping the name for TLS: the certificate is checked
against the name the admin wrote). `starttls` means STARTTLS is required: a
server not offering it fails the send, it does not get the mail in clear.
The whole exchange is bounded by one timeout.

SMTP's own rule decides what a retry can fix: a 4xx reply is transient, a
5xx one is not; a dropped or refused connection is worth another try.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Final

import aiosmtplib

from services.notifier.domain.destinations import Network, address_refusal

__all__ = ["SmtpOutcome", "SmtpSender", "SmtpServer", "build_email"]

_DOMAIN: Final = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_SENT: Final = 250  # what the server answers to the end of DATA
_REPLY_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # implicit TLS from the first byte
    starttls: bool  # upgrade, and refuse a server that cannot
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class SmtpOutcome:
    ok: bool
    code: int | None  # the server's reply code, when it replied
    error: str | None = None
    retriable: bool = False
    refused: bool = False


def build_email(*, subject: str, text: str, html: str, sender: str, recipients: Sequence[str],
                now: datetime | None = None) -> EmailMessage:
    """A multipart/alternative message: the text part first, so clients that can show HTML prefer it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(now if now is not None else datetime.now(UTC))
    domain = sender.rpartition("@")[2]
    # make_msgid looks the machine's name up in DNS unless given a domain.
    message["Message-ID"] = make_msgid(domain=domain if _DOMAIN.match(domain) else "chimera.invalid")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class _Unreachable(OSError):
    """The smarthost's name did not resolve, or none of its addresses took the connection."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _reply(code: int, text: str) -> str:
    return f"SMTP {code}: {' '.join(text.split())[:_REPLY_CHARS]}"


def _certificate_refused(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:  # aiosmtplib wraps the ssl error on connect, not on STARTTLS
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__
    return None


def _failure(exc: Exception, timeout_s: float) -> SmtpOutcome:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        retriable = any(400 <= r.code < 500 for r in exc.recipients)
        if first is None:
            return SmtpOutcome(False, None, "every recipient refused", retriable=False)
        return SmtpOutcome(False, first.code, _reply(first.code, first.message) + " (every recipient refused)",
                           retriable=retriable)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SmtpOutcome(False, exc.code, _reply(exc.code, exc.message), retriable=400 <= exc.code < 500)
    if isinstance(exc, TimeoutError):
        return SmtpOutcome(False, None, f"timed out after {timeout_s:g}s", retriable=True)
    if (bad_cert := _certificate_refused(exc)) is not None:
        # The same certificate is refused on every retry until someone fixes it.
        return SmtpOutcome(False, None, f"TLS certificate not accepted: {bad_cert.verify_message or 'refused'}",
                           retriable=False)
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return SmtpOutcome(False, None, f"connection failed: {exc.message}", retriable=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        return SmtpOutcome(False, None, f"SMTP: {exc.message}", retriable=False)
    if isinstance(exc, _Unreachable):
        return SmtpOutcome(False, None, exc.text, retriable=True)
    if isinstance(exc, OSError):
        return SmtpOutcome(False, None, f"connection failed: {exc.strerror or type(exc).__name__}", retriable=True)
    raise exc


class SmtpSender:
    def __init__(self, *, allowed: tuple[Network, ...], timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._allowed = allowed
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._local_hostname: str | None = None

    async def start(self) -> None:
        if self._local_hostname is None:
            self._local_hostname = await self._our_name()

    async def _our_name(self) -> str:
        # EHLO names the client: the machine's full name, as smtplib sends; looked up off the loop
        # (it can ask DNS) and not for long.
        try:
            async with asyncio.timeout(2.0):
                name = await asyncio.to_thread(socket.getfqdn)
        except (TimeoutError, OSError):
            name = socket.gethostname()
        name = name.strip()
        return name if name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name) else "localhost"

    async def send(self, server: SmtpServer, message: EmailMessage, *, sender: str,
                   recipients: Sequence[str]) -> SmtpOutcome:
        if self._local_hostname is None:
            await self.start()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._send(server, message, sender, recipients)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return _failure(exc, self._timeout_s)

    async def _send(self, server: SmtpServer, message: EmailMessage, sender: str,
                    recipients: Sequence[str]) -> SmtpOutcome:
        addresses = await self._checked_addresses(server.host, server.port)
        if isinstance(addresses, str):
            return SmtpOutcome(False, None, f"refused: {addresses}", retriable=False, refused=True)
        sock = await self._connect(server, addresses)
        smtp = aiosmtplib.SMTP(hostname=server.host.strip("[]"), sock=sock, use_tls=server.tls, start_tls=False,
                               tls_context=self._ssl_context, timeout=self._timeout_s,
                               local_hostname=self._local_hostname)
        try:
            await smtp.connect()
            if server.starttls:
                await smtp.ehlo()
                if not smtp.supports_extension("starttls"):
                    return SmtpOutcome(False, None, "the server does not offer STARTTLS, which the channel requires",
                                       retriable=False)
                await smtp.starttls()
            if server.username:
                await smtp.ehlo()  # again after STARTTLS: what the server offered in clear no longer counts
                if not smtp.supports_extension("auth"):
                    return SmtpOutcome(False, None, "the server offers no AUTH, and the channel has a username",
                                       retriable=False)
                await smtp.login(server.username, server.password or "")
            refused, _ = await smtp.send_message(message, sender=sender, recipients=list(recipients))
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        finally:
            smtp.close()
        if refused:
            # Some took it: a retry would send those a second copy, so this counts as sent.
            names = ", ".join(f"{rcpt} ({reply.code})" for rcpt, reply in sorted(refused.items()))
            return SmtpOutcome(True, _SENT, f"refused for some recipients: {names}"[:_REPLY_CHARS * 2])
        return SmtpOutcome(True, _SENT)

    async def _checked_addresses(self, host: str, port: int) -> list[tuple[int, Any]] | str:
        """(family, socket address) for each address of the host, or why one of them is refused."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                           proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise _Unreachable(f"cannot resolve {host}: {exc.strerror or type(exc).__name__}") from exc
        addresses: list[tuple[int, Any]] = []
        for family, _, _, _, sockaddr in infos:
            refusal = address_refusal(str(sockaddr[0]), self._allowed)
            if refusal is not None:
                return f"{host} resolves to {sockaddr[0]}: {refusal}" if sockaddr[0] != host.strip("[]") else refusal
            if (family, sockaddr) not in addresses:
                addresses.append((family, sockaddr))
        return addresses

    async def _connect(self, server: SmtpServer, addresses: list[tuple[int, Any]]) -> socket.socket:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        reason = (last.strerror or type(last).__name__) if last is not None else "no address"
        raise _Unreachable(f"cannot connect to {server.host}:{server.port}: {reason}") from last
