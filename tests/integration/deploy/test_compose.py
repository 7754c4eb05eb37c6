"""docker-compose.yml, the Dockerfile and the env files against the code, without Docker.

Pure parsing (PyYAML, the Dockerfile as text): every variable a Chimera container
is given is one of its settings (names derived from the pydantic-settings classes
as they map them: field name, or alias, with the class's env_prefix, upper-cased
when not case sensitive), the ports the healthchecks, published ports and
Prometheus targets use are the ones the services listen on, every depends_on
names a service, the Chimera services build from the Dockerfile, and the
Dockerfile is multi-stage, installs from the lock with --require-hashes and
runs as a non-root user with a HEALTHCHECK. Marked `unit`: it needs no service.
"""

from __future__ import annotations

import ast
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from services.aggregator.config import AggregatorSettings
from services.alerter.config import AlerterSettings
from services.ingest.config import IngestSettings
from services.notifier.config import ChannelSettings, NotifierSettings
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parents[3]
COMPOSE_FILE: Final = ROOT / "docker-compose.yml"
DOCKERFILE: Final = ROOT / "Dockerfile"
LOCK_FILE: Final = ROOT / "requirements.lock"
ENV_EXAMPLE: Final = ROOT / "deploy" / "compose" / "chimera.env.example"
COMPOSE_PROMETHEUS: Final = ROOT / "deploy" / "compose" / "prometheus.yml"

# What each `chimera <command>` reads: ingest mounts the notifier's channels API,
# which reads ChannelSettings from the same environment (services/notifier/api).
SETTINGS_BY_COMMAND: Final[dict[str, tuple[type[BaseSettings], ...]]] = {
    "ingest": (IngestSettings, ChannelSettings),
    "aggregator": (AggregatorSettings,),
    "alerter": (AlerterSettings,),
    "notifier": (NotifierSettings,),
}
SERVICE_CLASSES: Final = (ServiceSettings, IngestSettings, ChannelSettings, AggregatorSettings,
                          AlerterSettings, NotifierSettings)
# The port /healthz and /metrics answer on, per command.
PORT_FIELD: Final = {"ingest": "http_port", "aggregator": "metrics_port", "alerter": "metrics_port",
                     "notifier": "metrics_port"}
PORT_CLASS: Final = {"ingest": IngestSettings, "aggregator": AggregatorSettings,
                     "alerter": AlerterSettings, "notifier": NotifierSettings}
HOST_FIELD: Final = {"ingest": "HTTP_HOST", "aggregator": "METRICS_HOST", "alerter": "METRICS_HOST",
                     "notifier": "METRICS_HOST"}
PROMETHEUS_JOB: Final = {"ingest": "chimera-ingest", "aggregator": "chimera-aggregator",
                         "alerter": "chimera-alerter", "notifier": "chimera-notifier"}
ENV_LINE: Final = re.compile(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
CONDITIONS: Final = {"service_started", "service_healthy", "service_completed_successfully"}


# --- settings -> environment names ---------------------------------------------------

def env_names(settings_class: type[BaseSettings]) -> frozenset[str]:
    """The environment variables pydantic-settings reads for `settings_class`."""
    config = settings_class.model_config
    prefix = config.get("env_prefix", "") or ""
    case_sensitive = bool(config.get("case_sensitive", False))
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        aliases: list[str] = []
        alias = field.validation_alias or field.alias
        if isinstance(alias, str):
            aliases.append(alias)  # an alias is taken as is, without the prefix
        elif isinstance(alias, AliasChoices):
            aliases += [choice for choice in alias.choices if isinstance(choice, str)]
            aliases += [choice.path[0] for choice in alias.choices
                        if isinstance(choice, AliasPath) and isinstance(choice.path[0], str)]
        elif isinstance(alias, AliasPath) and isinstance(alias.path[0], str):
            aliases.append(alias.path[0])
        if not aliases:
            aliases.append(prefix + field_name)
        names.update(a if case_sensitive else a.upper() for a in aliases)
    return frozenset(names)


def required_env_names(settings_class: type[BaseSettings]) -> frozenset[str]:
    """Names of the fields without a default (none today; the check stays for tomorrow's)."""
    prefix = settings_class.model_config.get("env_prefix", "") or ""
    return frozenset((prefix + name).upper() for name, field in settings_class.model_fields.items()
                     if field.is_required())


ALL_SETTINGS_NAMES: Final = frozenset().union(*(env_names(cls) for cls in SERVICE_CLASSES))


def test_env_names_follow_the_settings_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The derivation above against what pydantic-settings really reads."""
    names = env_names(AggregatorSettings)
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "METRICS_PORT", "AGGREGATOR_GROUP_ID"} <= names
    assert "NOTIFIER_SECRET_KEYS" in env_names(ChannelSettings)
    assert "HTTP_PORT" in env_names(IngestSettings) and "HTTP_PORT" not in names
    monkeypatch.setenv("METRICS_PORT", "9999")
    monkeypatch.setenv("AGGREGATOR_GROUP_ID", "from-env")
    settings = AggregatorSettings()
    assert (settings.metrics_port, settings.aggregator_group_id) == (9999, "from-env")


# --- the files -----------------------------------------------------------------------

@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def chimera_services() -> dict[str, dict[str, Any]]:
    """The services run from the project's image (they have a `build`)."""
    return {name: spec for name, spec in services().items() if "build" in spec}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]


def command_of(spec: dict[str, Any]) -> str | None:
    """The `chimera` sub-command a service runs, None for a shell entrypoint."""
    if spec.get("entrypoint") is not None:
        return None
    command = as_list(spec.get("command"))
    return command[0] if command else "ingest"  # the Dockerfile's CMD


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        env = {pair[0]: (pair[1] if len(pair) > 1 else "") for pair in pairs}
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def env_files(spec: dict[str, Any]) -> list[str]:
    files = spec.get("env_file") or []
    if isinstance(files, (str, dict)):
        files = [files]
    return [item["path"] if isinstance(item, dict) else item for item in files]


def read_env_example(path: Path) -> tuple[dict[str, str], set[str]]:
    """(names set on a line of their own, every name mentioned as NAME=... in a comment too)."""
    given: dict[str, str] = {}
    mentioned: set[str] = set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        for match in re.finditer(r"(?:^|[#\s])([A-Z][A-Z0-9_]*)=", line):
            mentioned.add(match.group(1))
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: {raw!r} is not NAME=value"
            given[name.strip()] = value
    return given, mentioned


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments out), split by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages: list[list[str]] = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile_stages()[-1]:
        if instruction.upper().startswith("ENV "):
            for token in shlex.split(instruction[4:]):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def healthcheck_url(spec: dict[str, Any]) -> str | None:
    check = spec.get("healthcheck") or {}
    text = " ".join(as_list(check.get("test")))
    match = re.search(r"https?://[^'\"\s]+", text)
    return match.group(0) if match else None


# --- compose ---------------------------------------------------------------------------

def test_the_stack_has_every_part() -> None:
    names = set(services())
    assert {"kafka", "postgres", "migrate", "topics", "ingest", "aggregator", "alerter", "notifier",
            "prometheus", "alertmanager", "grafana", "postgres-exporter", "node-exporter",
            "simulator"} <= names
    assert services()["simulator"].get("profiles") == ["simulator"]
    assert "chimera simulate" in " ".join(as_list(services()["simulator"]["command"]))
    assert services()["postgres"]["image"].startswith("postgres:15")
    kafka_env = environment(services()["kafka"])
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert command_of(services()["migrate"]) == "migrate"
    assert command_of(services()["topics"]) == "topics"


def test_chimera_services_build_from_the_dockerfile() -> None:
    chimera = chimera_services()
    assert {"ingest", "aggregator", "alerter", "notifier", "migrate", "topics", "simulator"} <= set(chimera)
    images = set()
    for name, spec in chimera.items():
        build = spec["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context).resolve() == ROOT, f"{name}: builds from {context}, not the project root"
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, f"{name}: {dockerfile}"
        images.add(spec.get("image"))
    assert len(images) == 1, f"one image for every Chimera service, not {images}"


def test_depends_on_names_existing_services_with_known_conditions() -> None:
    for name, spec in services().items():
        depends = spec.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dependency, how in depends.items():
            assert dependency in services(), f"{name} depends on {dependency}, which is no service"
            assert dependency != name
            condition = (how or {}).get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {dependency}: {condition}"
            target = services()[dependency]
            if condition == "service_completed_successfully":
                assert str(target.get("restart", "no")) == "no", f"{dependency} is a one-shot: restart no"
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                image_has_one = "build" in target  # the Dockerfile's HEALTHCHECK
                assert (check.get("test") or image_has_one) and not check.get("disable"), \
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"


def test_the_services_wait_for_kafka_postgres_topics_and_migrations() -> None:
    for name in ("ingest", "aggregator", "alerter", "notifier"):
        depends = services()[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["topics"]["condition"] == "service_completed_successfully"


def test_every_variable_given_to_a_chimera_service_is_one_of_its_settings() -> None:
    for name, spec in chimera_services().items():
        command = command_of(spec)
        classes = SETTINGS_BY_COMMAND.get(command or "", (ServiceSettings,))
        allowed = frozenset().union(*(env_names(cls) for cls in classes))
        unknown = set(environment(spec)) - allowed
        assert not unknown, f"{name} ({command or 'shell'}): {sorted(unknown)} are not settings of " \
                            f"{', '.join(cls.__name__ for cls in classes)}"


def test_the_env_files_exist_as_examples() -> None:
    for name, spec in services().items():
        for path in env_files(spec):
            example = ROOT / f"{path}.example"
            assert example.is_file(), f"{name}: env_file {path} has no {example.name} to copy"
            assert not (ROOT / path).is_file() or (ROOT / path).parent.joinpath(".gitignore").is_file()
    for spec in chimera_services().values():
        assert "deploy/compose/chimera.env" in env_files(spec)


def test_the_env_example_names_only_settings_and_every_setting() -> None:
    given, mentioned = read_env_example(ENV_EXAMPLE)
    unknown = mentioned - ALL_SETTINGS_NAMES
    assert not unknown, f"{ENV_EXAMPLE.name}: {sorted(unknown)} are no service's settings"
    missing = ALL_SETTINGS_NAMES - mentioned
    assert not missing, \
        f"{ENV_EXAMPLE.name} should list every setting (commented, with its default): {sorted(missing)}"
    # The secrets the compose stack cannot do without are set on lines of their own.
    assert {"DATABASE_URL", "NOTIFIER_SECRET_KEYS"} <= set(given)
    assert urlsplit(given["DATABASE_URL"]).hostname == "postgres"


def test_required_settings_are_provided() -> None:
    given, _ = read_env_example(ENV_EXAMPLE)
    for name, spec in chimera_services().items():
        command = command_of(spec)
        classes = SETTINGS_BY_COMMAND.get(command or "", (ServiceSettings,))
        provided = set(environment(spec)) | set(given) | set(dockerfile_env())
        required = frozenset().union(*(required_env_names(cls) for cls in classes))
        assert required <= provided, f"{name}: {sorted(required - provided)} have no default and are not set"
        # Defaults that point at 127.0.0.1 are wrong in a container.
        env = environment(spec)
        assert env.get("KAFKA_BOOTSTRAP_SERVERS", "").split(":")[0] == "kafka", name
        assert "DATABASE_URL" in given or "DATABASE_URL" in env, name
        if command in HOST_FIELD:
            host = env.get(HOST_FIELD[command]) or dockerfile_env().get(HOST_FIELD[command])
            assert host == "0.0.0.0", f"{name} must listen beyond its loopback ({HOST_FIELD[command]})"
    # ingest (the channels API) and the notifier seal and open channel secrets with the same keys.
    for name in ("ingest", "notifier"):
        assert "NOTIFIER_SECRET_KEYS" in given or "NOTIFIER_SECRET_KEYS" in environment(services()[name])


def service_port(name: str) -> int:
    spec = services()[name]
    command = command_of(spec)
    assert command in PORT_FIELD, name
    field = PORT_FIELD[command]
    value = environment(spec).get(field.upper())
    if value:
        return int(value)
    default = PORT_CLASS[command].model_fields[field].default
    assert isinstance(default, int), f"{name}: {field.upper()} has no default port; set it"
    return default


@pytest.mark.parametrize("name", ["ingest", "aggregator", "alerter", "notifier"])
def test_ports_match_the_settings(name: str) -> None:
    port = service_port(name)
    spec = services()[name]
    command = command_of(spec)
    assert command is not None
    default = PORT_CLASS[command].model_fields[PORT_FIELD[command]].default
    assert port == default, f"{name} moved off its default port {default}: keep the targets in step"
    url = healthcheck_url(spec)
    assert url is not None, f"{name} has no HTTP healthcheck"
    parts = urlsplit(url)
    assert parts.path == "/healthz" and parts.port == port, f"{name}: healthcheck {url}, service on {port}"
    for published in spec.get("ports") or []:
        container_port = int(str(published).split(":")[-1].split("/")[0])
        assert container_port == port, f"{name} publishes {published}, listens on {port}"


def test_prometheus_scrapes_the_services_by_their_compose_names() -> None:
    config = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs") or []:
            found.update(static["targets"])
        for dns in job.get("dns_sd_configs") or []:
            found.update(f"{host}:{dns['port']}" for host in dns["names"])
    for name, job in PROMETHEUS_JOB.items():
        assert targets[job] == {f"{name}:{service_port(name)}"}, job
    assert targets["postgres"] == {"postgres-exporter:9187"}
    assert targets["node"] == {"node-exporter:9100"}
    for job_targets in targets.values():
        for target in job_targets:
            host = target.rsplit(":", 1)[0]
            assert host in services() or host == "localhost", f"{target}: no such compose service"
    for rule_file in config["rule_files"]:
        assert rule_file.startswith("/etc/prometheus/rules/")
        assert (ROOT / "deploy" / "prometheus" / Path(rule_file).name).is_file(), rule_file
    mounts = as_list(services()["prometheus"].get("volumes"))
    assert "./deploy/prometheus:/etc/prometheus/rules:ro" in mounts
    assert "./deploy/compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_healthcheck_snippets_are_python() -> None:
    snippets = [as_list(spec["healthcheck"]["test"]) for spec in services().values()
                if isinstance((spec.get("healthcheck") or {}).get("test"), list)]
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction.upper().startswith("HEALTHCHECK "):
                snippets.append(ast.literal_eval(instruction.split(" CMD ", 1)[1].strip()))
    python = [argv for argv in snippets if argv[:1] == ["CMD"] and argv[1:3] == ["python", "-c"]
              or argv[:2] == ["python", "-c"]]
    assert len(python) >= 5
    for argv in python:
        code = argv[argv.index("-c") + 1]
        compile(code, "<healthcheck>", "exec")


# --- the Dockerfile --------------------------------------------------------------------

def test_dockerfile_is_multi_stage_and_installs_from_the_lock_with_hashes() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    builder = " ".join(stages[0])
    assert re.search(r"COPY\s+requirements\.lock\s", builder)
    installs = [i for i in stages[0] if i.upper().startswith("RUN ") and "-r " in i]
    assert any("--require-hashes" in i and "requirements.lock" in i for i in installs), installs
    assert any("--no-deps" in i for i in stages[0] if "pip install" in i), "the project itself: --no-deps"
    runtime = stages[-1]
    assert runtime[0].split()[1] in {"${PYTHON_IMAGE}", "python:3.11-slim"}
    assert any(i.startswith("COPY --from=") for i in runtime), "the runtime copies the venv"


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    runtime = dockerfile_stages()[-1]
    users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
    assert users, "the runtime stage has no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(i.upper().startswith("HEALTHCHECK ") and "/healthz" in i for i in runtime)
    entrypoint = [i for i in runtime if i.upper().startswith("ENTRYPOINT ")]
    assert entrypoint and "chimera" in entrypoint[-1]


def test_dockerfile_env_names_are_settings() -> None:
    not_ours = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_DISABLE_PIP_VERSION_CHECK",
                "PIP_NO_CACHE_DIR", "LANG"}
    unknown = set(dockerfile_env()) - not_ours - ALL_SETTINGS_NAMES
    assert not unknown, f"Dockerfile ENV {sorted(unknown)} are no settings"


# --- the lock ----------------------------------------------------------------------------

def test_the_lock_pins_every_dependency_with_hashes() -> None:
    import tomllib

    text = LOCK_FILE.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1] if text.startswith("#") else text)
    pinned: dict[str, str] = {}
    for entry in entries:
        first = entry.strip().splitlines()[0] if entry.strip() else ""
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first.rstrip(" \\"))
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", first
        assert "--hash=sha256:" in entry, f"{requirement.name} has no hash"
        pinned[canonicalize_name(requirement.name)] = specifiers[0].version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    for spec in wanted:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} (pyproject.toml) is not in requirements.lock: make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"{requirement.name}=={pinned[name]} in the lock does not satisfy {spec}: make lock"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*--require-hashes -r \$\(LOCK\)", makefile)
    assert re.search(r"^\$\(VENV\)/\.installed: pyproject\.toml \$\(LOCK\)$", makefile, re.M)
