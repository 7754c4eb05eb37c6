"""`chimera simulate`'s flags: what they make, and the refusals that come before anything is sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chimera.cli import build_parser
from chimera.simulate.command import KEY_ENV, config_from_args, simulate, span_from_args

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_flags_make_the_pool_they_say() -> None:
    args = build_parser().parse_args([
        "simulate", "--miners", "7", "--seed", "3", "--scenario", str(ROOT / "deploy/scenarios/demo.yaml"),
        "--share-rate", "0.5", "--network-difficulty", "1e12", "--orphan-rate", "0.1", "--reject-rate", "0.02",
        "--stale-rate", "0.01", "--pool", "second", "--block-every", "2m", "--speed", "fast", "--span", "2h"])
    config = config_from_args(args)
    assert (config.miners, config.pool, config.vardiff.share_rate) == (7, "second", 0.5)
    assert (config.network_difficulty, config.orphan_rate, config.block_every_ms) == (1e12, 0.1, 120_000)
    assert (config.reject_rate, config.stale_rate) == (0.02, 0.01)
    assert config.scenario.actions
    assert span_from_args(args) == 2 * 3_600_000
    assert args.handler.__name__ == "_simulate"


@pytest.mark.parametrize(("flags", "span"), [
    (["--speed", "fast"], 3_600_000),  # fast has to cover something: an hour
    ([], None),  # real time: until Ctrl-C
    (["--span", "10m"], 600_000),
    (["--speed", "fast", "--span", "24h"], 86_400_000),
])
def test_span_defaults(flags: list[str], span: int | None) -> None:
    assert span_from_args(build_parser().parse_args(["simulate", *flags])) == span


@pytest.mark.parametrize(("flags", "message"), [
    (["--speed", "fast", "--span", "25h"], "at most 24h"),
    (["--span", "forever"], "--span: 'forever' is not a duration"),
    (["--span", "0"], "longer than 0"),
    (["--block-every", "often"], "--block-every"),
    (["--miners", "0"], "miners must be between"),
    (["--reject-rate", "0.7", "--stale-rate", "0.4"], "add up to less than 1"),
    (["--scenario", "/nonexistent/scenario.yaml"], "cannot read"),
    (["--miners", "2", "--scenario", str(ROOT / "deploy/scenarios/demo.yaml")], "miner m3"),
])
async def test_bad_flags_exit_2_before_anything_is_sent(flags: list[str], message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["simulate", "--key", "k", "--url", "http://127.0.0.1:9", *flags])
    assert await simulate(args, out=io.StringIO()) == 2
    assert message in capsys.readouterr().err


async def test_without_a_key_http_mode_exits_2(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    args = build_parser().parse_args(["simulate", "--url", "http://127.0.0.1:9"])
    assert await simulate(args, out=io.StringIO()) == 2
    assert KEY_ENV in capsys.readouterr().err
