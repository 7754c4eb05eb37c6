"""A single-node Apache Kafka broker in KRaft mode, run from Maven Central's jars.

The jars are resolved by Maven from `deploy/kafka/pom.xml` (its local
repository caches them, so only the first start downloads); the resolved
classpath is cached beside the broker's data, keyed by the POM's hash.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.processes import (
    apt_install,
    cmdline,
    pid_alive,
    port_open,
    read_pid,
    run,
    terminate,
    wait_until,
)

MIN_JAVA = 17
START_TIMEOUT_S = 90

_SERVER_PROPERTIES = """\
# Written by `chimera dev up`; edits are overwritten at the next start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
# Topics are created on purpose by `chimera topics` or the services, never by a typo.
auto.create.topics.enable=false
num.partitions=12
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One node: nobody else will join, so don't wait for them before the first rebalance.
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""

_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
"""


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap_servers: str


def java_major_version() -> int | None:
    if shutil.which("java") is None:
        return None
    done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8"
    return int(match.group(2) or 0) if major == 1 else major


def ensure_java_and_maven() -> None:
    version = java_major_version()
    if version is None or version < MIN_JAVA:
        found = "not found" if version is None else f"Java {version} found"
        apt_install(["openjdk-17-jre-headless"], f"Java {MIN_JAVA}+ ({found})")
    if shutil.which("mvn") is None:
        apt_install(["maven"], "Maven (mvn), needed to fetch the Kafka jars")


class KafkaNode:
    def __init__(self, config: DevStackConfig) -> None:
        self._config = config
        self._dir = config.kafka_dir
        self._pid_file = self._dir / "kafka.pid"
        self._properties = self._dir / "server.properties"
        self._log = self._dir / "kafka.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self._config.kafka_port}"

    def status(self) -> KafkaStatus:
        pid = self._our_pid()
        return KafkaStatus(pid is not None, pid, self.bootstrap_servers)

    def up(self) -> KafkaStatus:
        if self._our_pid() is not None and port_open(self._config.kafka_port):
            return self.status()
        for port in (self._config.kafka_port, self._config.kafka_controller_port):
            if port_open(port):
                raise DevStackError(
                    f"port {port} is taken by another process, so Kafka cannot listen on it",
                    "stop that process, or choose other ports with CHIMERA_KAFKA_PORT / "
                    "CHIMERA_KAFKA_CONTROLLER_PORT",
                )
        ensure_java_and_maven()
        self._dir.mkdir(parents=True, exist_ok=True)
        classpath = self._classpath()
        self._write_config()
        self._format_storage(classpath)
        self._start(classpath)
        return self.status()

    def down(self) -> None:
        pid = self._our_pid()
        if pid is not None:
            terminate(pid, timeout_s=45)
        self._pid_file.unlink(missing_ok=True)

    def _our_pid(self) -> int | None:
        pid = read_pid(self._pid_file)
        if pid is None or not pid_alive(pid):
            return None
        # A recycled pid belongs to someone else unless it runs our broker config.
        return pid if str(self._properties) in cmdline(pid) else None

    def _classpath(self) -> str:
        pom = self._config.kafka_pom
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        cache = self._dir / f"classpath-{digest[:16]}.txt"
        if cache.exists():
            classpath = cache.read_text().strip()
            if classpath and all(Path(jar).exists() for jar in classpath.split(":")):
                return classpath
        print("resolving the Kafka jars with Maven (first start only)...", flush=True)
        run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:build-classpath",
             f"-Dmdep.outputFile={cache}"],
            what="resolving the Kafka jars (mvn dependency:build-classpath)",
            log=self._dir / "maven.log",
        )
        return cache.read_text().strip()

    def _write_config(self) -> None:
        data_dir = self._dir / "data"
        self._properties.write_text(_SERVER_PROPERTIES.format(
            port=self._config.kafka_port,
            controller_port=self._config.kafka_controller_port,
            data_dir=data_dir,
        ))
        (self._dir / "log4j2.yaml").write_text(_LOG4J2)

    def _format_storage(self, classpath: str) -> None:
        if (self._dir / "data" / "meta.properties").exists():
            return
        cluster_id = run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            what="kafka-storage random-uuid",
        ).strip().splitlines()[-1]
        run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(self._properties), "--ignore-formatted"],
            what="kafka-storage format",
            log=self._log,
        )

    def _start(self, classpath: str) -> None:
        command = [
            "java", f"-Xmx{self._config.kafka_heap}", "-Xms256m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._dir / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self._dir}",
            "-cp", classpath, "kafka.Kafka", str(self._properties),
        ]
        log_start = self._log.stat().st_size if self._log.exists() else 0
        with self._log.open("ab") as log:
            # Its own session: the broker outlives `chimera dev up` and ignores our Ctrl-C.
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid_file.write_text(f"{process.pid}\n")
        started = wait_until(
            lambda: process.poll() is not None or (
                port_open(self._config.kafka_port) and self._log_says_started(log_start)
            ),
            START_TIMEOUT_S,
        )
        if process.poll() is not None or not started:
            if process.poll() is None:
                terminate(process.pid)
            self._pid_file.unlink(missing_ok=True)
            raise DevStackError(
                f"Kafka did not start within {START_TIMEOUT_S}s; last lines of {self._log}:\n"
                + _tail(self._log)
            )

    def _log_says_started(self, since_byte: int) -> bool:
        try:
            with self._log.open("rb") as log:
                log.seek(since_byte)
                return b"Kafka Server started" in log.read()
        except OSError:
            return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
