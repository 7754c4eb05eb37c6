"""The `chimera` command: operations on the stack and the schema.

Each sub-command only parses its arguments and hands on to the module that
owns the work; imports happen inside the handlers so `chimera dev status`
does not pay for aiokafka or asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chimera.devstack.config import PROJECT_ROOT, DevStackError
from shared.settings import ConfigError, ServiceSettings, load

if TYPE_CHECKING:
    from chimera.devstack.stack import PartStatus


def _settings() -> ServiceSettings:
    return load(ServiceSettings)


def _print_parts(parts: Sequence[PartStatus]) -> None:
    for part in parts:
        if not part.running:
            state, pid = "stopped", ""
        else:
            state, pid = ("running" if part.ready else "running, not ready"), f"pid {part.pid}"
        print(f"{part.name:<18}{state:<20}{pid:<12}{part.address}")


def _ensure_binaries(everything: bool) -> int:
    """Find (as root, install from Debian's packages) what the stack and the tests run:
    Chromium for the console tests, and with everything also Java and Maven (Kafka),
    PostgreSQL and the Prometheus tool chain, so a fresh machine has them after make install."""
    from chimera.devstack.browser_bins import ensure_browser_binaries

    if everything:
        from chimera.devstack.kafka import ensure_java_and_maven
        from chimera.devstack.monitoring_bins import ensure_monitoring_binaries
        from chimera.devstack.postgres import ensure_binaries

        ensure_java_and_maven()
        print(f"{'postgresql':<18}{ensure_binaries()}")
        for name, path in vars(ensure_monitoring_binaries()).items():
            print(f"{name:<18}{path}")
    browser = ensure_browser_binaries()
    print(f"{'chromium':<18}{browser.chromium}\n{'chromedriver':<18}{browser.chromedriver}")
    return 0


def _dev(args: argparse.Namespace) -> int:
    if args.action in ("browser", "binaries"):
        return _ensure_binaries(everything=args.action == "binaries")
    from chimera.devstack import stack
    from chimera.devstack.config import DevStackConfig
    from chimera.devstack.postgres import PostgresNode

    config = DevStackConfig.from_env()
    if args.action == "up":
        report = stack.up(config, with_services=not args.infra)
        for name in report.applied_migrations:
            print(f"applied {name}")
        for name in report.created_topics:
            print(f"created topic {name}")
        if report.dropped_topics:
            print(f"deleted {len(report.dropped_topics)} topics left by killed test or benchmark runs")
        _print_parts(report.parts)
        print(f"started: {', '.join(report.started)}" if report.started else "everything was running already")
        print(f"# export these to point clients at it (also in {config.endpoints_file}):")
        print(config.endpoints_file.read_text(), end="")
        return 0
    if args.action == "down":
        stopped = stack.down(config)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    parts = stack.status(config)
    _print_parts(parts)
    print(f"logs: {config.logs_dir}/<service>.log, {config.kafka_dir / 'kafka.log'}, "
          f"{PostgresNode(config).cluster_dir / 'postgres.log'}")
    return 0 if all(part.running and part.ready for part in parts) else 3


def _schemas(args: argparse.Namespace) -> int:
    from shared import schemas

    directory = Path(args.dir)
    if args.check:
        drifted = schemas.drifted(directory)
        for name in drifted:
            print(f"out of date: {directory / name}", file=sys.stderr)
        if drifted:
            print("run `chimera schemas` to regenerate", file=sys.stderr)
        return 1 if drifted else 0
    for path in schemas.write_schemas(directory):
        print(f"wrote {path}")
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from shared.db.migrate import migrate_database

    applied = asyncio.run(migrate_database(_settings()))
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return 0


def _retention(_: argparse.Namespace) -> int:
    from shared.db.history_retention import run_history_retention
    from shared.db.partitions import run_retention

    settings = _settings()
    dropped = asyncio.run(run_retention(settings))
    print("\n".join(f"dropped {name}" for name in dropped) or "no partition older than the retention")
    pruned = asyncio.run(run_history_retention(settings))
    print(f"deleted {pruned.deliveries} finished notification deliveries (with their attempts) and "
          f"{pruned.resolved_alerts} resolved alerts' records older than {settings.retention_notifications_days} days")
    return 0


def _topics(_: argparse.Namespace) -> int:
    from shared.kafka.topics import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    print("\n".join(f"created {name}" for name in created) or "all topics exist")
    return 0


def _demo(_: argparse.Namespace) -> int:
    from chimera.demo import run_demo
    from services.ingest.config import IngestSettings

    asyncio.run(run_demo(load(IngestSettings)))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from chimera.simulate.command import run_command

    return run_command(args)


def _keys(args: argparse.Namespace) -> int:
    from services.ingest.cli_keys import run_keys_command

    return asyncio.run(run_keys_command(_settings(), args))


def _channels(args: argparse.Namespace) -> int:
    from chimera.channels import run_channels_command
    from services.notifier.config import ChannelSettings

    return asyncio.run(run_channels_command(load(ChannelSettings), args))


def _rules(args: argparse.Namespace) -> int:
    from chimera.rules import run_rules_command

    return asyncio.run(run_rules_command(_settings(), args))


def _ingest(_: argparse.Namespace) -> int:
    from services.ingest.__main__ import main as ingest_main

    return ingest_main()


def _alerter(_: argparse.Namespace) -> int:
    from services.alerter.__main__ import main as alerter_main

    return alerter_main()


def _notifier(_: argparse.Namespace) -> int:
    from services.notifier.__main__ import main as notifier_main

    return notifier_main()


def _aggregator(_: argparse.Namespace) -> int:
    from services.aggregator.__main__ import main as aggregator_main

    return aggregator_main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chimera", description="Chimera Monitor operations")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="the local stack in the background: Kafka, PostgreSQL and the four services")
    dev.add_argument("action", choices=["up", "down", "status", "browser", "binaries"],
                     help="browser: find (as root, install) the Chromium and chromedriver of the console tests; "
                          "binaries: those, Java and Maven, PostgreSQL and the Prometheus tool chain")
    dev.add_argument("--infra", action="store_true",
                     help="up: Kafka and PostgreSQL only, migrated and with their topics (what the tests need)")
    dev.set_defaults(handler=_dev)

    schemas = commands.add_parser("schemas", help="write (or --check) the JSON Schemas of the events")
    schemas.add_argument("--dir", default=str(PROJECT_ROOT / "schemas"))
    schemas.add_argument("--check", action="store_true", help="exit 1 if schemas/ is out of date")
    schemas.set_defaults(handler=_schemas)

    commands.add_parser("migrate", help="apply pending database migrations").set_defaults(handler=_migrate)
    commands.add_parser(
        "retention", help="create partitions ahead and drop those past retention"
    ).set_defaults(handler=_retention)
    commands.add_parser("topics", help="create the Kafka topics that are missing").set_defaults(
        handler=_topics
    )
    commands.add_parser(
        "demo", help="stream a simulated pool into Kafka and show live figures until Ctrl-C"
    ).set_defaults(handler=_demo)

    simulate = commands.add_parser(
        "simulate", help="a simulated pool: events to POST /v1/events (or Kafka), community and host "
        "metrics to /api/metrics (docs/simulator.md)")
    simulate.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    simulate.add_argument("--key", help="an API key with the ingest scope (default: $CHIMERA_API_KEY)")
    simulate.add_argument("--kafka", action="store_true", help="events straight to the pool.* topics "
                          "(KAFKA_* settings from the environment); metrics still over HTTP when a key is given")
    simulate.add_argument("--miners", type=int, default=20)
    simulate.add_argument("--seed", type=int, default=1, help="same seed, same pool and stream")
    simulate.add_argument("--scenario", help="outages and degrades on a schedule, e.g. deploy/scenarios/demo.yaml")
    simulate.add_argument("--speed", choices=["realtime", "fast"], default="realtime",
                          help="fast: the --span ending now, as fast as the API takes it")
    simulate.add_argument("--span", help="event time to cover, e.g. 10m, 2h (default: fast 1h, realtime until Ctrl-C)")
    simulate.add_argument("--share-rate", type=float, default=0.2, help="vardiff's target shares/s per worker")
    simulate.add_argument("--network-difficulty", type=float, default=None,
                          help="default: what makes the pool find a block every --block-every")
    simulate.add_argument("--block-every", default="10m")
    simulate.add_argument("--orphan-rate", type=float, default=0.02, help="share of blocks orphaned")
    simulate.add_argument("--reject-rate", type=float, default=0.01)
    simulate.add_argument("--stale-rate", type=float, default=0.005)
    simulate.add_argument("--pool", default="main")
    simulate.add_argument("--no-metrics", action="store_true", help="events only")
    simulate.add_argument("--truth", help="write the ground truth here (NDJSON: hashrates, outages, every event)")
    simulate.set_defaults(handler=_simulate)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser(
        "create", help="create a key; the key itself is printed once, as the last line"
    )
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--scopes", required=True, help="comma-separated: ingest,read,admin; or miner:<name> alone (that miner's stats, "
                             "alerts and own alert channels only)")
    create.add_argument("--rate-limit", type=float, default=None, metavar="N",
                        help="requests per second for this key (default: the service's)")
    key_actions.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", help="the key's id, as `chimera keys list` shows it")
    keys.set_defaults(handler=_keys)

    channels = commands.add_parser("channels", help="maintain the notifier's alert channels")
    channel_actions = channels.add_subparsers(dest="action", required=True)
    channel_actions.add_parser("rotate-secrets", help="seal every channel's secrets again under the first key "
                               "of NOTIFIER_SECRET_KEYS (key rotation: docs/notifier.md)")
    channels.set_defaults(handler=_channels)

    rules = commands.add_parser("rules", help="load an alert rule pack, list the alert rules")
    rule_actions = rules.add_subparsers(dest="action", required=True)
    load_rules = rule_actions.add_parser(
        "load", help="check a rule pack (YAML or JSON) and create or update its rules by name"
    )
    load_rules.add_argument("file", help="the pack, e.g. deploy/rules/default.yaml")
    rule_actions.add_parser("list", help="list the alert rules: name, metric, operator, threshold, enabled")
    rules.set_defaults(handler=_rules)

    commands.add_parser(
        "ingest", help="run the ingest service and REST API (settings from the environment)"
    ).set_defaults(handler=_ingest)
    commands.add_parser(
        "aggregator",
        help="run the aggregator: figures from the event topics into PostgreSQL (settings from the environment)",
    ).set_defaults(handler=_aggregator)
    commands.add_parser(
        "alerter",
        help="run the alerter: alert rules over the figure streams (settings from the environment)",
    ).set_defaults(handler=_alerter)
    commands.add_parser(
        "notifier",
        help="run the notifier: alerts to channels, grouped, silenced, retried (settings from the environment)",
    ).set_defaults(handler=_notifier)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"chimera: {exc}", file=sys.stderr)
        return 2
    except DevStackError as exc:
        print(f"chimera: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
