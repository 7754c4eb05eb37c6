"""connect_options: how database settings become asyncpg keyword arguments."""

from __future__ import annotations

import ssl
from pathlib import Path

import orjson
import pytest

from shared.db.pool import DatabaseConfigError, _dumps, connect_options
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

URL = "postgresql://chimera@db.example:5432/chimera"

# A throwaway self-signed CA (public certificate only, no key anywhere).
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUEpar5IMhQAGeQV3GyjMNP186hYAwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPY2hpbWVyYS10ZXN0LWNhMCAXDTI2MTEyODE0MzUyM1oYDzIx
MjYxMTA0MTQzNTIzWjAaMRgwFgYDVQQDDA9jaGltZXJhLXRlc3QtY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQROeZjJEmdnIO+31NI88hJEQGoyNXP3xjJd6Jt
H0dnjd9YeHuPMPXCkIasrw0Tx1d/ryJ6G9I6duxvjvJusWOQo1MwUTAdBgNVHQ4E
FgQUFwgI/iXg9T9HFWM4WGQ2bKqTKR8wHwYDVR0jBBgwFoAUFwgI/iXg9T9HFWM4
WGQ2bKqTKR8wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAzBFuk
DRZdEffBHXBTl9XCBVuikZcDKVQrCbvdngkZcgIhAIymnFfnwkDo0lwH1UuGSZeP
B756ioZ/Jb84vx4v42IY
-----END CERTIFICATE-----
"""


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "root.crt"
    path.write_text(TEST_CA)
    return path


def settings(**overrides: object) -> ServiceSettings:
    return ServiceSettings(database_url=URL, **overrides)


def test_search_path_is_the_configured_schema() -> None:
    options = connect_options(settings(database_schema="tenant_a"))
    assert options["dsn"] == URL
    assert options["server_settings"] == {"search_path": "tenant_a"}


def test_default_schema_is_public() -> None:
    assert connect_options(settings())["server_settings"]["search_path"] == "public"


def test_no_sslmode_leaves_ssl_to_the_url() -> None:
    assert "ssl" not in connect_options(settings())


@pytest.mark.parametrize(
    "mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
)
def test_sslmode_passes_through_as_string(mode: str) -> None:
    assert connect_options(settings(database_sslmode=mode))["ssl"] == mode


def test_verify_full_with_rootcert_checks_chain_and_hostname(ca_file: Path) -> None:
    options = connect_options(settings(database_sslmode="verify-full", database_sslrootcert=ca_file))
    context = options["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert any(
        dict(item[0] for item in cert["subject"]).get("commonName") == "chimera-test-ca"
        for cert in context.get_ca_certs()
    )


@pytest.mark.parametrize("mode", ["verify-ca", "require"])
def test_verify_ca_with_rootcert_checks_chain_only(mode: str, ca_file: Path) -> None:
    # libpq semantics: `require` plus a root certificate verifies like verify-ca.
    context = connect_options(settings(database_sslmode=mode, database_sslrootcert=ca_file))["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_rootcert_ignored_by_non_verifying_modes(mode: str, ca_file: Path) -> None:
    options = connect_options(settings(database_sslmode=mode, database_sslrootcert=ca_file))
    assert options["ssl"] == mode


def test_rootcert_without_sslmode_travels_in_the_url(ca_file: Path) -> None:
    options = connect_options(
        ServiceSettings(
            database_url=URL + "?sslmode=verify-full&application_name=x",
            database_sslrootcert=ca_file,
        )
    )
    assert "ssl" not in options
    assert options["dsn"].startswith(URL + "?")
    query = options["dsn"].split("?", 1)[1].split("&")
    assert "sslmode=verify-full" in query
    assert "application_name=x" in query
    assert any(part.startswith("sslrootcert=") and part.endswith("root.crt") for part in query)


def test_unreadable_rootcert_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(DatabaseConfigError) as info:
        connect_options(settings(database_sslmode="verify-full", database_sslrootcert=missing))
    assert info.value.setting == "database_sslrootcert"
    assert "nope.crt" in str(info.value)


def test_json_encoder_produces_text_json() -> None:
    assert orjson.loads(_dumps({"pool": "eu1", "n": [1, 2]})) == {"pool": "eu1", "n": [1, 2]}
    assert isinstance(_dumps({}), str)
