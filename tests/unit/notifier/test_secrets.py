"""Channel secrets at rest: Fernet tokens, key rotation, the key file made once however many start together."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.notifier.adapters.secrets import SecretBox, SecretKeyError, SecretsUnreadable, key_from_file
from services.notifier.config import ChannelSettings

pytestmark = pytest.mark.unit

SECRETS = {"url": "https://hooks.example/T000/B000/XXXXsecret", "hmac_secret": "s3cr3t"}


def _key() -> bytes:
    return Fernet.generate_key()


def test_sealed_secrets_open_again_and_the_token_hides_them() -> None:
    box = SecretBox([_key()])
    token = box.seal(SECRETS)
    assert token is not None
    assert "XXXXsecret" not in token and "s3cr3t" not in token
    assert box.open(token) == SECRETS


def test_nothing_to_hide_is_no_token() -> None:
    box = SecretBox([_key()])
    assert box.seal({}) is None
    assert box.open(None) == {}


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = _key(), _key()
    sealed_before = SecretBox([old]).seal(SECRETS)
    both = SecretBox([new, old])
    assert both.open(sealed_before) == SECRETS
    sealed_now = both.seal(SECRETS)
    assert SecretBox([new]).open(sealed_now) == SECRETS
    with pytest.raises(SecretsUnreadable):
        SecretBox([old]).open(sealed_now)


def test_rotate_re_encrypts_under_the_first_key_so_the_old_one_can_go() -> None:
    old, new = _key(), _key()
    token = SecretBox([old]).seal(SECRETS)
    assert token is not None
    rotated = SecretBox([new, old]).rotate(token, what="channel 7")
    assert SecretBox([new]).open(rotated) == SECRETS
    with pytest.raises(SecretsUnreadable) as caught:
        SecretBox([_key()]).rotate(token, what="channel 7")
    assert caught.value.what == "channel 7"


@pytest.mark.parametrize("token", ["not a token", "gAAAAAB" + "A" * 80, "ümlaut"])
def test_a_token_no_key_opens_names_what_it_belongs_to(token: str) -> None:
    with pytest.raises(SecretsUnreadable) as caught:
        SecretBox([_key()]).open(token, what="channel 12 (ops)")
    assert caught.value.what == "channel 12 (ops)"
    assert "channel 12 (ops)" in str(caught.value)


def test_a_token_of_something_else_than_an_object_is_unreadable() -> None:
    key = _key()
    token = Fernet(key).encrypt(b'["a list"]').decode()
    with pytest.raises(SecretsUnreadable, match="JSON object"):
        SecretBox([key]).open(token, what="channel 1")


def test_keys_come_from_the_setting_comma_separated(tmp_path: Path) -> None:
    old, new = _key(), _key()
    token = SecretBox([old]).seal(SECRETS)
    settings = ChannelSettings(notifier_secret_keys=SecretStr(f" {new.decode()} , {old.decode()} "),
                               notifier_secret_key_file=tmp_path / "unused.key")
    assert SecretBox.from_settings(settings).open(token) == SECRETS
    assert not (tmp_path / "unused.key").exists()


@pytest.mark.parametrize("keys", ["not-a-key", f"{Fernet.generate_key().decode()},short", ","])
def test_a_bad_key_in_the_setting_names_the_setting_and_not_the_key(keys: str, tmp_path: Path) -> None:
    settings = ChannelSettings(notifier_secret_keys=SecretStr(keys), notifier_secret_key_file=tmp_path / "k")
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_settings(settings)
    assert caught.value.setting == "NOTIFIER_SECRET_KEYS"
    assert "short" not in str(caught.value) and "not-a-key" not in str(caught.value)


def test_without_the_setting_a_key_file_is_made_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "config" / "chimera" / "notifier-secret.key"
    settings = ChannelSettings(notifier_secret_keys=None, notifier_secret_key_file=path)
    token = SecretBox.from_settings(settings).seal(SECRETS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert SecretBox.from_settings(settings).open(token) == SECRETS
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    for round_number in range(20):
        path = tmp_path / f"round-{round_number}" / "notifier.key"
        barrier = threading.Barrier(8)
        keys: list[bytes] = []

        def start() -> None:
            barrier.wait()
            keys.append(key_from_file(path))

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(keys) == 8 and len(set(keys)) == 1
        assert keys[0] == path.read_bytes().strip()


def test_a_key_file_holding_no_key_names_the_file_setting(tmp_path: Path) -> None:
    path = tmp_path / "notifier.key"
    path.write_text("garbage\n")
    settings = ChannelSettings(notifier_secret_keys=None, notifier_secret_key_file=path)
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_settings(settings)
    assert caught.value.setting.startswith("NOTIFIER_SECRET_KEY_FILE")
    assert "garbage" not in str(caught.value)
