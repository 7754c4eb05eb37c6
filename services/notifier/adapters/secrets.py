"""Channel secrets at rest: Fernet tokens under the keys of NOTIFIER_SECRET_KEYS (or a key file).

`NOTIFIER_SECRET_KEYS` holds comma-separated Fernet keys: the first one
encrypts, every one decrypts, so a key is rotated by putting a new one first,
re-encrypting (`rotate`), then dropping the old one. Unset, one key is kept
in `NOTIFIER_SECRET_KEY_FILE`, made on first use: fine for one machine, but
every process sharing the database must then share the file.

The key file is made atomically: the key is written to a private temporary
file which is then hard-linked to the final name. A link never replaces an
existing file, so of two processes starting together one wins and the other
reads the winner's key; nobody ever reads a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..config import ChannelSettings

__all__ = ["SecretBox", "SecretKeyError", "SecretsUnreadable"]

KEYS_VARIABLE: Final = "NOTIFIER_SECRET_KEYS"
FILE_VARIABLE: Final = "NOTIFIER_SECRET_KEY_FILE"


class SecretKeyError(ValueError):
    """The configured keys cannot be used; names the setting at fault (never a key)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


class SecretsUnreadable(Exception):
    """A stored token no configured key opens (a key was dropped, or the value was altered).

    `what` names the holder (`channel 12`), so the log tells which row to fix."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


def _fernet(key: bytes | str, setting: str, position: str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # The key itself stays out of the message: it is the secret.
        raise SecretKeyError(setting, f"{position} is not a Fernet key (url-safe base64 of 32 bytes; "
                                      "make one with `python -c 'from cryptography.fernet import Fernet; "
                                      "print(Fernet.generate_key().decode())'`)") from None


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise SecretKeyError(FILE_VARIABLE, f"cannot read {path}: {exc.strerror}") from exc


def key_from_file(path: Path) -> bytes:
    """The key in `path`, made (0600, in a 0700 folder) when there is none yet."""
    if path.exists():
        return _read_key_file(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".notifier-key-", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise SecretKeyError(FILE_VARIABLE, f"cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: its key counts
            os.link(temporary, path)
    except OSError as exc:
        raise SecretKeyError(FILE_VARIABLE, f"cannot create {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return _read_key_file(path)


class SecretBox:
    """Seals a channel's secret config values into one token, and opens it again."""

    def __init__(self, keys: Sequence[bytes | str], *, setting: str = KEYS_VARIABLE) -> None:
        if not keys:
            raise SecretKeyError(setting, "no key given")
        fernets = [_fernet(key, setting, f"key {i + 1} of {len(keys)}") for i, key in enumerate(keys)]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> SecretBox:
        """From NOTIFIER_SECRET_KEYS, or else the key file (made on first use)."""
        configured = settings.notifier_secret_keys
        text = configured.get_secret_value().strip() if configured is not None else ""
        if text:
            return cls([key.strip() for key in text.split(",") if key.strip()], setting=KEYS_VARIABLE)
        path = settings.notifier_secret_key_file
        return cls([key_from_file(path)], setting=f"{FILE_VARIABLE} ({path})")

    def seal(self, secrets: Mapping[str, Any]) -> str | None:
        """The token of these values under the first key; None when there is nothing to hide."""
        if not secrets:
            return None
        return self._fernet.encrypt(orjson.dumps(dict(secrets))).decode("ascii")

    def open(self, token: str | None, *, what: str = "secrets") -> dict[str, Any]:
        """The values sealed in `token` ({} for None); SecretsUnreadable naming `what` otherwise."""
        if token is None:
            return {}
        try:
            plain = self._fernet.decrypt(token.encode("ascii", "replace"))
        except InvalidToken:
            raise SecretsUnreadable(what, f"no key of {KEYS_VARIABLE} opens the stored token "
                                          "(a key was dropped or changed, or the value was altered)") from None
        try:
            values = orjson.loads(plain)
        except orjson.JSONDecodeError:
            raise SecretsUnreadable(what, "the stored token does not hold a JSON object") from None
        if not isinstance(values, dict):
            raise SecretsUnreadable(what, "the stored token does not hold a JSON object")
        return values

    def rotate(self, token: str, *, what: str = "secrets") -> str:
        """The same values sealed under the first key (after a new key was put first)."""
        try:
            return self._fernet.rotate(token.encode("ascii", "replace")).decode("ascii")
        except InvalidToken:
            raise SecretsUnreadable(what, f"no key of {KEYS_VARIABLE} opens the stored token") from None
