"""Aggregator scale-out: one against two `python -m services.aggregator` processes in one group.

    source .chimera/stack.env && .venv/bin/python bench/aggregator_scaleout_bench.py
        [--events 500000] [--workers 100000] [--shapes live,backlog] [--processes 1,2] [--json]
        [--profile-dir DIR]

For each shape of load (the live shape, event time advancing as at a pool
emitting `--live-rate` shares/s, and the sparse backlog over `--minutes`
minutes, as bench/aggregator_bench.py defines them, produced by its producer)
and each process count, on a fresh prefixed topic set (12 partitions), schema
and consumer group:

(c1) one aggregator process, its outputs as configured by default;
(c2) two aggregator processes in one consumer group;
(a)  after each, the bare aiokafka + orjson reader of bench/aggregator_bench.py
     on the same topic: the ceiling.

The members join on the empty topics; once the group is Stable with all of
them they are paused (SIGSTOP, with a session timeout long enough for the
pause) while the events are produced, then resumed. So the figure is the
group's steady rate with every partition owned: no join, rebalance or
producer inside it (the join time is printed on its own).

Reported: total events/s of each, ratios to (a) and two over one, and what
each process, PostgreSQL and the broker of this dev stack used of the
machine's CPUs over the measured window (/proc/<pid>/stat), with the rest of
the machine's busy time and its busiest other processes: on a small shared
machine that says what bounds the second process.

`--profile-dir DIR` attaches py-spy (`PY_SPY`, default /tmp/tools/bin/py-spy)
to the single process from its resume to the end and writes its collapsed
stacks (idle samples included: they are the waits) to DIR/<shape>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aggregator_bench import parse_args as aggregator_bench_args  # noqa: E402
from aggregator_bench import produce, run_phase, settings_for  # noqa: E402
from aggregator_process import free_port, vm_hwm_mib  # noqa: E402
from run_state import drop_run_state  # noqa: E402

from shared.db.migrate import migrate_database  # noqa: E402
from shared.kafka.options import client_options  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
POLL_S = 0.25
SETTLE_S = 2.0
SESSION_TIMEOUT_MS = 300_000


# --- CPU accounting from /proc ------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it has gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def _state_dir() -> Path:
    return Path(os.environ.get("CHIMERA_STATE_DIR") or ROOT / ".chimera")


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stack_pids() -> tuple[list[int], list[int]]:
    """(PostgreSQL, Kafka) processes of the dev stack this benchmark uses: its postmaster and
    every child (a backend per connection), and its broker. By pid file, not by name: other
    helpers' test stacks run a PostgreSQL and a Kafka of their own on the same machine."""
    postmaster = _pid_in(_state_dir() / "postgres" / "data" / "postmaster.pid")
    kafka = _pid_in(_state_dir() / "kafka" / "kafka.pid")
    postgres = [postmaster] if postmaster else []
    if postmaster:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            if parent == postmaster:
                postgres.append(int(entry.name))
    return postgres, [kafka] if kafka else []


def all_processes() -> dict[int, tuple[str, float]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = ((entry / "comm").read_text().strip(), cpu_s(int(entry.name)))
            except OSError:
                continue  # it ended while we looked
    return found


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is in user already
    return (total - idle) / CLOCK_TICKS_PER_S, total / CLOCK_TICKS_PER_S


@dataclass
class CpuSample:
    at_s: float
    aggregators: list[float]
    postgres: dict[int, float]  # pid -> CPU seconds
    kafka: dict[int, float]
    busy_s: float
    everyone: dict[int, tuple[str, float]]  # pid -> (command, CPU seconds): to name the "other" cores

    @classmethod
    def take(cls, aggregator_pids: list[int]) -> CpuSample:
        postgres, kafka = stack_pids()
        busy, _ = machine_busy_s()
        return cls(time.perf_counter(), [cpu_s(p) for p in aggregator_pids], {p: cpu_s(p) for p in postgres},
                   {p: cpu_s(p) for p in kafka}, busy, all_processes())


def _used_s(first: dict[int, float], last: dict[int, float]) -> float:
    # a backend forked within the window used all its CPU in it; one that ended is lost (rare, small)
    return sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items())


def cores_used(first: CpuSample, last: CpuSample) -> dict[str, Any]:
    wall = max(last.at_s - first.at_s, 1e-9)
    each = [(b - a) / wall for a, b in zip(first.aggregators, last.aggregators, strict=True)]
    machine = (last.busy_s - first.busy_s) / wall
    postgres = _used_s(first.postgres, last.postgres) / wall
    kafka = _used_s(first.kafka, last.kafka) / wall
    ours = set(first.postgres) | set(last.postgres) | set(first.kafka) | set(last.kafka)
    others = sorted(((cpu - first.everyone.get(pid, ("", 0.0))[1]) / wall, f"{name}[{pid}]")
                    for pid, (name, cpu) in last.everyone.items() if pid not in ours)
    top_others = [f"{name} {cores:.2f}" for cores, name in others[::-1][:4 + len(each)] if cores >= 0.02]
    return {"aggregator_cores": [round(c, 2) for c in each], "postgres_cores": round(postgres, 2),
            "kafka_cores": round(kafka, 2), "machine_busy_cores": round(machine, 2),
            # this poller, the other helpers' work, the kernel's own threads
            "other_cores": round(machine - sum(each) - postgres - kafka, 2), "cpus": os.cpu_count(),
            "top_processes": top_others}


# --- the aggregator group ---------------------------------------------------------------------


@dataclass
class Group:
    settings: ServiceSettings
    group_id: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def full_group_id(self) -> str:
        return self.settings.kafka_topic_prefix + self.group_id

    def start(self, count: int) -> None:
        for _ in range(count):
            env = {**os.environ, "KAFKA_TOPIC_PREFIX": self.settings.kafka_topic_prefix,
                   "KAFKA_TOPIC_PARTITIONS": str(self.settings.kafka_topic_partitions),
                   "DATABASE_SCHEMA": self.settings.database_schema, "METRICS_PORT": str(free_port()),
                   "LOG_LEVEL": "WARNING", "AGGREGATOR_GROUP_ID": self.group_id,
                   # paused while the events are produced: the coordinator must not drop it meanwhile
                   "AGGREGATOR_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS)}
            self.processes.append(subprocess.Popen([sys.executable, "-m", "services.aggregator"], env=env,
                                                   cwd=ROOT))

    def profile_first(self, profile_to: Path) -> None:
        """py-spy the first member from now until it exits (idle samples too: they are the waits)."""
        py_spy = os.environ.get("PY_SPY", "/tmp/tools/bin/py-spy")
        command = [py_spy, "record", "--format", "raw", "--rate", "200", "--nonblocking", "--idle",
                   "-o", str(profile_to), "-p", str(self.processes[0].pid)]
        self.profilers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def end_profiles(self) -> None:
        """Stop sampling now (SIGINT: py-spy writes its file), not at the member's exit."""
        for profiler in self.profilers:
            profiler.send_signal(signal.SIGINT)

    def pause(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGCONT)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"an aggregator exited with {process.returncode}")

    def stop(self) -> None:
        self.resume()  # a paused member would not act on SIGTERM
        for process in self.processes:
            process.terminate()  # SIGTERM: each finishes its batch and leaves the group
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        for profiler in self.profilers:  # py-spy writes its file once its target has gone
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.terminate()
                profiler.wait()
        self.profilers = []


async def members_if_stable(admin: AIOKafkaAdminClient, group_id: str) -> int:
    """Members of the group with partitions assigned if it is Stable, else 0."""
    responses = await admin.describe_consumer_groups([group_id])
    for response in responses:
        for described in response.groups:
            _error, _group, state, _protocol_type, _protocol, members = described[:6]
            if state == "Stable":
                return len(members)
    return 0


async def wait_stable(admin: AIOKafkaAdminClient, group: Group, timeout_s: float) -> float:
    """Seconds until the group is Stable with every member in it."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        group.check_alive()
        if await members_if_stable(admin, group.full_group_id) == len(group.processes):
            return time.perf_counter() - began
        await asyncio.sleep(POLL_S)
    raise SystemExit(f"the group {group.full_group_id} was not stable within {timeout_s:g}s")


async def run_group(args: argparse.Namespace, shape: str, count: int) -> dict[str, Any]:
    """`count` aggregators join the group on the empty topics and are paused (SIGSTOP) while the
    events are produced, then resumed: each starts with its partitions taken over and a full
    backlog, so the figure is the group's steady rate, with no join, rebalance or producer in it."""
    minutes = args.events / args.live_rate / 60 if shape == "live" else args.minutes
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = settings_for(prefix, prefix[:-1], args.partitions)
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{settings.database_schema}"')
    group = Group(settings, f"scaleout-{count}")
    try:
        await ensure_topics(settings)
        await migrate_database(settings)  # before the members start: they would race to migrate
        topic = topic_name(settings, Topic.SHARES)
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            profile_to = (args.profile_dir / f"{shape}.txt") if args.profile_dir and count == 1 else None
            group.start(count)
            joined_s = await wait_stable(admin, group, args.timeout)
            await asyncio.sleep(SETTLE_S)  # the take-over of empty partitions
            group.pause()
            produce_s = await produce(settings, args.events, args.workers, minutes)
            print(f"[{shape}] (c{count}) joined in {joined_s:.1f}s; produced {args.events:,} share events "
                  f"({args.workers:,} workers, {args.events / args.workers / minutes:.1f} shares per worker-minute)"
                  f" in {produce_s:.1f}s while paused", flush=True)
            result = await measure(settings, group, topic, args.events, args.timeout, profile_to)
        finally:
            group.stop()
            await admin.close()
        baseline = None
        if count == 1 or not args.baseline_once:
            baseline = run_phase("baseline", phase_args(args, settings))
        return {"minutes": minutes, "baseline": baseline, **result}
    finally:
        group.stop()
        await drop_run_state(settings, admin_conn, [settings.database_schema])


def phase_args(args: argparse.Namespace, settings: ServiceSettings) -> argparse.Namespace:
    # aggregator_bench's own defaults for whatever its phases read, so options it gains keep working here
    found = aggregator_bench_args(["--events", str(args.events), "--partitions", str(args.partitions),
                                   "--timeout", str(args.timeout)])
    found.prefix, found.schema = settings.kafka_topic_prefix, settings.database_schema
    return found


async def measure(settings: ServiceSettings, group: Group, topic: str, events: int, timeout_s: float,
                  profile_to: Path | None) -> dict[str, Any]:
    pids = [p.pid for p in group.processes]
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.database_schema})
    try:
        first = CpuSample.take(pids)
        group.resume()
        if profile_to is not None:
            group.profile_first(profile_to)
        last: CpuSample | None = None
        while time.perf_counter() - first.at_s < timeout_s:
            group.check_alive()
            done = int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0)::bigint FROM aggregator_offsets"
                                           " WHERE topic = $1 AND consumer_group = $2", topic, group.full_group_id))
            if done >= events:
                last = CpuSample.take(pids)
                group.end_profiles()
                break
            await asyncio.sleep(POLL_S)
        peaks = [round(vm_hwm_mib(pid)) for pid in pids]
    finally:
        await conn.close()
    if last is None:
        return {"completed": False, "processes": len(pids), "vm_hwm_mib": peaks}
    return {"completed": True, "processes": len(pids), "events": events, "seconds": round(last.at_s - first.at_s, 2),
            "rate": events / (last.at_s - first.at_s), "vm_hwm_mib": peaks, **cores_used(first, last)}


# --- one shape ----------------------------------------------------------------------------------


async def run_shape(args: argparse.Namespace, shape: str) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for count in args.processes:
        result = groups[str(count)] = await run_group(args, shape, count)
        base = result["baseline"] or groups[str(args.processes[0])]["baseline"]
        if result["baseline"]:
            print(f"[{shape}] (a{count}) bare aiokafka + orjson.loads on the same topic: "
                  f"{result['baseline']['rate']:,.0f} events/s", flush=True)
        if not result["completed"]:
            print(f"[{shape}] (c{count}) did not finish within {args.timeout:g}s", flush=True)
            continue
        print(f"[{shape}] (c{count}) {count} aggregator process(es): {result['rate']:,.0f} events/s "
              f"({result['seconds']:.1f}s), ratio to the bare reader {result['rate'] / base['rate']:.3f}; cores: "
              f"aggregators {result['aggregator_cores']}, PostgreSQL {result['postgres_cores']}, Kafka "
              f"{result['kafka_cores']}, other {result['other_cores']}, machine {result['machine_busy_cores']} "
              f"of {result['cpus']}; busiest processes {result['top_processes']}", flush=True)
    one, two = groups.get("1"), groups.get("2")
    ratio = two["rate"] / one["rate"] if one and two and one["completed"] and two["completed"] else None
    if ratio is not None:
        print(f"[{shape}] two processes / one: {ratio:.2f}", flush=True)
    return {"groups": groups, "two_over_one": ratio}


async def main(args: argparse.Namespace) -> None:
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    shapes = {shape: await run_shape(args, shape) for shape in args.shapes}
    if args.json:
        print(json.dumps({"events": args.events, "workers": args.workers, "partitions": args.partitions,
                          "live_rate": args.live_rate, "backlog_minutes": args.minutes, "shapes": shapes}),
              flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--live-rate", type=float, default=50_000.0, help="shares/s of the live shape's pool")
    parser.add_argument("--minutes", type=float, default=20.0, help="the backlog's event times span N minutes")
    parser.add_argument("--shapes", type=lambda s: [x for x in s.split(",") if x], default=["live", "backlog"])
    parser.add_argument("--processes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each group may take")
    parser.add_argument("--baseline-once", action="store_true", help="the bare reader on the first topic only")
    parser.add_argument("--profile-dir", type=Path, help="py-spy the single process into DIR/<shape>.txt")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    args = parser.parse_args(argv)
    unknown = set(args.shapes) - {"live", "backlog"}
    if unknown:
        parser.error(f"unknown shapes {sorted(unknown)}: live, backlog")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
