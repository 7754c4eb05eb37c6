"""Channel URLs and resolved addresses: the pool's own network is refused unless allowed."""

from __future__ import annotations

import pytest

from services.notifier.domain.destinations import address_refusal, parse_networks, url_refusal

pytestmark = pytest.mark.unit

LOOPBACK = parse_networks(["127.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://hooks.example.com/x", None),
        ("http://93.184.216.34:8080/hook", None),
        ("ftp://example.com/x", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://", "no host"),
        ("http://127.0.0.1:9000/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://api.localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "not globally reachable"),
        ("http://224.0.0.1/", "multicast"),
        ("http://example.com:0/", "port 0"),
        ("http://exa mple.com/", "spaces or control"),
        ("http://example.com:99999/", "not a URL"),
        ("https://" + "a" * 2100 + ".com/", "longer than"),
    ],
)
def test_urls_are_refused_with_the_reason(url: str, why: str | None) -> None:
    got = url_refusal(url)
    if why is None:
        assert got is None
    else:
        assert got is not None and why in got, got


def test_the_allow_list_lets_the_local_stack_through_and_nothing_else() -> None:
    assert url_refusal("http://127.0.0.1:9000/hook", LOOPBACK) is None
    assert url_refusal("http://localhost:9000/hook", LOOPBACK) is None
    assert url_refusal("http://[::1]:9000/hook", LOOPBACK) is None
    assert url_refusal("http://10.0.0.5/", LOOPBACK) is not None


@pytest.mark.parametrize(("address", "refused"), [("8.8.8.8", False), ("2606:4700:4700::1111", False),
                                                    ("127.0.0.53", True), ("fe80::1%eth0", True),
                                                    ("fd00::1", True), ("172.16.0.1", True), ("not-an-ip", True)])
def test_resolved_addresses_are_checked_again(address: str, refused: bool) -> None:
    assert (address_refusal(address) is not None) is refused


def test_networks_parse_or_name_the_bad_one() -> None:
    assert [str(n) for n in parse_networks(["10.0.0.0/8", "::1"])] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="'nope'"):
        parse_networks(["nope"])


@pytest.mark.parametrize("host", ["127.1", "0177.0.0.1", "2130706433", "0x7f.0.0.1", "10.1", "0x0a000001"])
def test_legacy_numeric_ipv4_forms_are_refused_before_any_dns(host: str) -> None:
    # Resolvers read these as addresses (127.1 is 127.0.0.1): they must not pass as host names.
    assert url_refusal(f"https://{host}/hook") == "must write an IP address in dotted decimal (a.b.c.d)"


@pytest.mark.parametrize("host", ["1password.com", "123.example.com", "0xdeadbeef.example", "a1"])
def test_names_with_digits_are_names(host: str) -> None:
    assert url_refusal(f"https://{host}/hook") is None
