"""Every benchmark in bench/, each in its own process, into one dated report (`make bench`).

    source .chimera/stack.env && .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]

Runs ingest, ingest_variants (the fast share checks off, and two processes on one
port, against the default in the same round), produce (each producer against
Kafka's own ceiling), aggregator (with
its bare-reader and no-outputs baselines), aggregator_scaleout (one against two
aggregator processes in one group), faust
(the faust agent against the same bare reader), peers (the aggregator beside
the same job in quixstreams and faust; needs the `bench` extra), aggregator_takeover, alerter,
notifier and e2e (the four services as processes), one after the other: each
is a process of its own, so a crash or a leak in one cannot bend another's
figures, and on a small machine they must not share the cores. Each
benchmark's final JSON line is collected and
written to bench/results/<date>.json, with a markdown table (figure, value,
same-run baseline, ratio, sizes used) and the machine described to
bench/results/<date>.md. A benchmark that fails is recorded as failed with
the last lines of its output, and the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TAIL_LINES = 30

Json = dict[str, Any]
# benchmark figure, value, unit, same-run baseline (or None), what the baseline is
Row = tuple[str, float, str, float | None, str]


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    normal: list[str]
    quick: list[str]
    rows: Callable[[Json], list[Row]]
    timeout_s: float


def _ingest_rows(r: Json) -> list[Row]:
    rows: list[Row] = [
        ("POST /v1/events throughput", r["http_events_per_s"], "events/s", r["baseline_events_per_s"],
         "EventProducer.send_events alone"),
    ]
    if r.get("pre_encoded_baseline_events_per_s"):
        rows.append(("POST /v1/events throughput vs the produce path alone", r["http_events_per_s"], "events/s",
                     r["pre_encoded_baseline_events_per_s"], "send_batch of records encoded beforehand"))
    return rows + [
        ("POST /v1/events latency p50", r["p50_ms"], "ms", None, ""),
        ("POST /v1/events latency p99", r["p99_ms"], "ms", None, ""),
    ]


def _ingest_variants_rows(r: Json) -> list[Row]:
    """Each variant against the default (fast checks on, one process) of the same round."""
    rows: list[Row] = []
    for x in r["runs"]:
        if x["fast_checks"] == "on" and x["processes"] == 1:
            continue
        default = next(d for d in r["runs"]
                       if d["round"] == x["round"] and d["fast_checks"] == "on" and d["processes"] == 1)
        rows.append((f"POST /v1/events, fast checks {x['fast_checks']}, {x['processes']} process(es) on one port "
                     f"(round {x['round']})", x["http_events_per_s"], "events/s", default["http_events_per_s"],
                     "fast checks on, 1 process, same round"))
    return rows


def _aggregator_rows(r: Json) -> list[Row]:
    bare_read = r["baseline"]["rate"]
    base = "bare aiokafka + orjson read"
    rows: list[Row] = [
        ("(a) bare aiokafka + orjson read", bare_read, "events/s", None, ""),
        ("(a2) + decoding and contract checks", r["decode"]["rate"], "events/s", bare_read, base),
        ("(b) + validation + PoolAggregate.ingest_shares", r["domain"]["rate"], "events/s", bare_read, base),
        ("(b) peak RSS with all workers in memory", r["domain"]["vm_hwm_mib_after_ingest"], "MiB", None, ""),
    ]
    bare = r.get("bare")
    if bare and bare.get("completed"):
        rows.append(("(c0) services.aggregator without outputs, steady", bare["rate_steady"], "events/s",
                     bare_read, base))
    pipeline = r.get("pipeline")
    if pipeline and pipeline.get("completed"):
        rows += [
            ("(c) services.aggregator with outputs, steady", pipeline["rate_steady"], "events/s", bare_read, base),
            ("(c) services.aggregator peak RSS", pipeline["vm_hwm_mib"], "MiB", None, ""),
        ]
    elif pipeline:
        rows.append(("(c) services.aggregator: did not finish in its timeout", float("nan"), "", None, ""))
    return rows


def _produce_rows(r: Json) -> list[Row]:
    """Round by round each figure has its own same-round baseline; the table shows the last round."""
    variants = r["variants"]
    base = variants["aiokafka"]["events_per_s"][-1]
    ceiling = variants["ceiling"]["events_per_s"][-1]  # bench/produce_bench.py CEILING
    rows: list[Row] = [("Kafka's ProducerPerformance, the broker's ceiling", ceiling, "events/s", None, "")]
    for name in ("aiokafka", "aiokafka-batch", "confluent"):
        if name in variants:
            rate = variants[name]["events_per_s"][-1]
            rows += [(f"{name} producer, {r['clients']} callers of 1,000-event batches", rate, "events/s", base,
                      "per-record aiokafka producer (EventProducer)"),
                     (f"{name} producer against the broker's ceiling", rate, "events/s", ceiling,
                      "Kafka's ProducerPerformance")]
    return rows


def _scaleout_rows(r: Json) -> list[Row]:
    base = "bare aiokafka + orjson read, same topic"
    rows: list[Row] = []
    for shape, s in r["shapes"].items():
        groups = s["groups"]
        first = next(iter(groups.values()))
        for count, g in groups.items():
            if not g.get("completed"):
                rows.append((f"{shape}: {count} aggregator process(es): did not finish", float("nan"), "", None, ""))
                continue
            bare_read = (g["baseline"] or first["baseline"])["rate"]
            rows.append((f"{shape}: {count} aggregator process(es) in one group", g["rate"], "events/s",
                         bare_read, base))
        if s.get("two_over_one") is not None:
            rows.append((f"{shape}: two aggregator processes against one", groups["2"]["rate"], "events/s",
                         groups["1"]["rate"], "one process, same run"))
    return rows


def _faust_rows(r: Json) -> list[Row]:
    return [("faust agent, stream.take + orjson", r["faust"]["rate"], "records/s", r["baseline"]["rate"],
             "bare aiokafka + orjson read")]


def _peers_rows(r: Json) -> list[Row]:
    base = "bare aiokafka + orjson read"
    rows: list[Row] = []
    for shape, s in r["shapes"].items():
        bare_read = s["baseline"]["rate"]
        pipeline = s["pipeline"]
        # steady, or from its start when a small run ended before the first poll saw progress
        ours = (pipeline["rate_steady"] or pipeline["rate_from_start"]) if pipeline.get("completed") else float("nan")
        rows += [
            (f"{shape}: (a) bare aiokafka + orjson read", bare_read, "events/s", None, ""),
            (f"{shape}: (c) services.aggregator, steady", ours, "events/s", bare_read, base),
        ]
        for name, label in (("quix", "quixstreams"), ("faust", "faust")):
            peer = s[name]["rate"] if s[name].get("completed") else float("nan")
            rows += [
                (f"{shape}: {label} job", peer, "events/s", bare_read, base),
                # the ratio column of this row is ours / theirs (issue 15: at least 4x)
                (f"{shape}: services.aggregator against the {label} job", ours, "events/s", peer,
                 f"{label} job, same topic"),
            ]
    return rows


def _takeover_rows(r: Json) -> list[Row]:
    took = r["takeover"]
    return [
        ("restart: every partition taken over", took["seconds"], "s", None, ""),
        ("restart: event ids replayed into dedup", took["rate"], "ids/s", r["baseline"]["rate"],
         "bare aiokafka + orjson read"),
    ]


def _alerter_rows(r: Json) -> list[Row]:
    s, workers = r["sweep"], r["workers"]
    rows: list[Row] = [
        ("(b) sweep: decode_snapshot + Engine.observations", workers / s["b_s"], "records/s", workers / s["a_s"],
         "orjson.loads alone"),
        ("(b) one sweep of every worker", s["b_s"], "s CPU", None, ""),
        ("(b2) Engine.apply", s["observations"] / s["b2_s"], "observations/s", None, ""),
    ]
    e = r.get("e2e")
    if e:
        rows += [
            ("(c) alerter process, records evaluated", r["records"] / e["evaluated_s"], "records/s",
             workers / s["a_s"], "orjson.loads alone"),
            ("(c) offline -> firing on chimera.alerts p50", e["p50_ms"], "ms", None, ""),
            ("(c) offline -> firing on chimera.alerts p99", e["p99_ms"], "ms", None, ""),
            ("(c) alerter peak RSS", e["vm_hwm_mib"], "MiB", None, ""),
        ]
    return rows


def _notifier_rows(r: Json) -> list[Row]:
    latency = r["latency_beyond_group_wait_s"]
    return [
        ("webhook notifications", r["notifications_per_s"], "notifications/s", r["baseline_requests_per_s"],
         "bare aiohttp POSTs to the same receiver"),
        ("record -> webhook beyond group_wait p50", latency["p50"] * 1000, "ms", None, ""),
        ("record -> webhook beyond group_wait p99", latency["p99"] * 1000, "ms", None, ""),
        ("RSS with the open groups", r["rss_with_groups_mb"], "MiB", None, ""),
        ("memory per open group", r["bytes_per_open_group"], "bytes", None, ""),
    ]


def _e2e_rows(r: Json) -> list[Row]:
    base, a = r["rtt_baseline_ms"], r["alerting"]
    rtt = "bare produce -> consume round trip"
    rows: list[Row] = [
        ("backfill: one share per worker folded", r["backfill"]["rate"], "shares/s", None, ""),
        ("share -> minute row in PostgreSQL p50", r["share_to_postgres_ms"]["p50"], "ms", base["p50"], rtt + " p50"),
        ("share -> minute row in PostgreSQL p99", r["share_to_postgres_ms"]["p99"], "ms", base["p99"], rtt + " p99"),
        ("share -> aggregator /metrics p50", r["share_to_metrics_ms"]["p50"], "ms", base["p50"], rtt + " p50"),
        ("share -> aggregator /metrics p99", r["share_to_metrics_ms"]["p99"], "ms", base["p99"], rtt + " p99"),
        ("offline -> webhook beyond duration + group_wait p50", a["beyond_duration_group_wait_ms"]["p50"], "ms",
         None, ""),
        ("offline -> webhook beyond duration + group_wait p99", a["beyond_duration_group_wait_ms"]["p99"], "ms",
         None, ""),
        ("of which offline -> offline record on chimera.snapshots p99", a["condition_to_offline_snapshot_ms"]["p99"],
         "ms", None, ""),
    ]
    rows += [(f"{name} RSS with {r['workers']:,} active workers", m["vm_rss_mib"], "MiB", None, "")
             for name, m in r["memory"].items()]
    return rows


# The normal sizes are cut down from the benchmarks' own defaults so that the
# whole run fits in about 15 minutes on a 2-core machine; the sizes go in the table.
BENCHES: list[Bench] = [
    Bench("ingest", "ingest_bench.py", ["--duration", "20", "--baseline-duration", "10", "--pre-encoded-baseline"],
          ["--duration", "3", "--warmup", "1", "--baseline-duration", "2"], _ingest_rows, 300),
    Bench("ingest_variants", "ingest_bench.py",
          ["--variants", "asyncio:on:1,asyncio:off:1,asyncio:on:2", "--rounds", "2", "--duration", "10",
           "--baseline-duration", "5"],
          ["--variants", "asyncio:on:1,asyncio:off:1,asyncio:on:2", "--duration", "3", "--warmup", "1",
           "--baseline-duration", "2"], _ingest_variants_rows, 600),
    Bench("produce", "produce_bench.py", ["--duration", "5", "--runs", "2"],
          ["--duration", "1", "--runs", "1", "--ceiling-records", "50000"], _produce_rows, 600),
    Bench("aggregator", "aggregator_bench.py",
          ["--events", "300000", "--workers", "100000", "--compare-outputs", "--timeout", "400"],
          ["--events", "20000", "--workers", "2000", "--compare-outputs", "--timeout", "120"],
          _aggregator_rows, 1500),
    Bench("aggregator_scaleout", "aggregator_scaleout_bench.py", ["--events", "500000", "--workers", "100000"],
          ["--events", "20000", "--workers", "2000"], _scaleout_rows, 900),
    Bench("faust", "faust_bench.py", ["--events", "300000"], ["--events", "20000", "--workers", "2000"],
          _faust_rows, 900),
    Bench("peers", "peers/peers_bench.py", ["--events", "200000", "--workers", "20000"],
          ["--events", "20000", "--workers", "2000"], _peers_rows, 2400),
    Bench("aggregator_takeover", "aggregator_takeover_bench.py",
          ["--events", "300000", "--workers", "100000", "--timeout", "400"],
          ["--events", "20000", "--workers", "2000", "--timeout", "120"], _takeover_rows, 1200),
    Bench("alerter", "alerter_bench.py", ["--workers", "100000", "--records", "20000", "--probes", "100"],
          ["--quick"], _alerter_rows, 1200),
    Bench("notifier", "notifier_bench.py", ["--alerts", "2000", "--probes", "50", "--groups", "10000"],
          ["--quick"], _notifier_rows, 900),
    Bench("e2e", "e2e_bench.py", ["--miners", "10000", "--workers-per-miner", "10", "--probes", "100"],
          ["--quick"], _e2e_rows, 600),
]


def last_json(output: str) -> Json | None:
    """The benchmark's result: its last top-level JSON object, on one line or indented over several."""
    lines = output.rstrip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                found = json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return None


def run_one(bench: Bench, quick: bool) -> Json:
    args = bench.quick if quick else bench.normal
    command = [sys.executable, str(ROOT / "bench" / bench.script), *args]
    if bench.script != "notifier_bench.py":  # the notifier's result is JSON already
        command.append("--json")
    print(f"== {bench.name}: {' '.join(command[1:])}", flush=True)
    began = time.perf_counter()
    try:
        # stderr joins stdout: a failure's last lines should show the traceback in its place
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=bench.timeout_s, check=False)
        output, code = done.stdout, done.returncode
    except subprocess.TimeoutExpired as expired:
        raw = expired.stdout or ""
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        output, code = output + f"\n(timed out after {bench.timeout_s:g}s)", None
    seconds = time.perf_counter() - began
    sys.stdout.write(output)
    record: Json = {"name": bench.name, "args": args, "seconds": round(seconds, 1), "exit_code": code}
    result = last_json(output) if code == 0 else None
    rows: list[Row] = []
    if result is not None:
        try:
            rows = bench.rows(result)
        except (KeyError, TypeError, ZeroDivisionError) as missing:
            output += f"\n(run_all: the result lacks a figure: {missing!r})"
            result = None
    if result is None:
        record.update(status="failed", tail=output.rstrip().splitlines()[-TAIL_LINES:])
    else:
        record.update(status="ok", result=result, rows=[list(row) for row in rows])
    print(f"== {bench.name}: {record['status']} in {seconds:.0f}s", flush=True)
    return record


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


async def _postgres_version() -> str | None:
    import asyncpg  # here, so that a missing database costs only this figure

    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def _kafka_version() -> str | None:
    # The dev stack runs Kafka from a resolved classpath; its jar names carry the version,
    # which the protocol itself does not report.
    state = Path(os.environ.get("CHIMERA_STATE_DIR") or ROOT / ".chimera") / "kafka"
    for classpath in sorted(state.glob("classpath-*.txt")):
        match = re.search(r"kafka-clients-([0-9][^/:]*?)\.jar", classpath.read_text())
        if match:
            return match[1]
    return None


def machine() -> dict[str, Any]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    try:
        postgres = asyncio.run(_postgres_version())
    except Exception as error:  # noqa: BLE001  (a description, not a figure: say why and go on)
        postgres = f"unknown ({type(error).__name__})"
    return {
        "cpu": cpu[1].strip() if cpu else platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem[1]) / 2**20, 1) if mem else None,
        "python": platform.python_version(),
        "kafka": _kafka_version(),
        "postgresql": postgres,
        "os": f"{os_name[1] if os_name else platform.system()} (kernel {platform.release()})",
    }


def _fmt(value: float) -> str:
    if value != value:  # NaN: the figure was not measured
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _ratio(ratio: float) -> str:
    # two significant digits, so a ratio far below one does not print as 0.00
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def markdown(report: Json) -> str:
    m = report["machine"]
    lines = [
        f"# Benchmarks, {report['date']}{' (--quick)' if report['quick'] else ''}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB memory; Python {m['python']}; "
        f"Kafka {m['kafka'] or 'unknown'}; PostgreSQL {m['postgresql'] or 'unknown'}; {m['os']}.",
        "",
        "| benchmark | figure | value | baseline | ratio |",
        "|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        if run["status"] != "ok":
            lines.append(f"| {run['name']} | FAILED (exit {run['exit_code']}) | - | - | - |")
            continue
        for figure, value, unit, baseline, baseline_is in run["rows"]:
            base = f"{_fmt(baseline)} ({baseline_is})" if baseline is not None else ""
            ratio = _ratio(value / baseline) if baseline else ""
            lines.append(f"| {run['name']} | {figure} | {_fmt(value)} {unit} | {base} | {ratio} |")
    lines += ["", "Sizes used (each benchmark's options) and wall time:", ""]
    lines += [f"- {run['name']}: `{' '.join(run['args'])}` ({run['seconds']:.0f} s, {run['status']})"
              for run in report["runs"]]
    for run in report["runs"]:
        if run["status"] != "ok":
            lines += ["", f"{run['name']} failed; its last output lines:", "", "```", *run["tail"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the harness in a minute or two")
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHES], metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(b.name for b in BENCHES)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results (default bench/results)")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    started = datetime.now(UTC)
    report: Json = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick, "machine": machine(),
                    "runs": [run_one(bench, args.quick) for bench in chosen]}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {args.out / stem}.json and .md")
    return 1 if any(run["status"] != "ok" for run in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
