"""Static checks of the Docker stack: docker/compose.yaml, docker/compose.celery.yaml,
docker/Dockerfile, docker/.env.example and .dockerignore. No Docker engine is needed (none is
available in CI).

Each check is a function returning a list of problems, for one variant of the stack: `local`
(compose.yaml, LocalExecutor) or `celery` (compose.yaml with its `celery` profile and the
override compose.celery.yaml: CeleryExecutor, Redis, workers), merged as `docker compose -f … -f …`
merges them. The real files must have none in either variant, and ``test_check_catches_breakage``
breaks a copy of the files in a temporary directory, one mutation at a time, to prove that every
check can fail.

Static, with these exceptions, each run in a scratch directory:
- the API server's command (which writes the users' passwords file from the environment before
  `airflow api-server` starts), with a stand-in `airflow` program, to prove what it writes, that
  it prints no password and that it refuses to start without one;
- the national feed's credentials: national-intake-init's command (its real `files` step, with
  a scratch directory for each named volume it writes; its `database` step is only recorded),
  then the national intake's command on those volumes with a stand-in `python` that records its
  environment, then the installed Airflow resolving the connections national_intake_<code> with
  the Airflow components' secrets settings, as a task and as the API server would.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import fnmatch
import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from standardwebhooks import Webhook

from connectors.airflow_api import API_CONNECTION
from connectors.national_intake import IntakeConnection
from local.airflow_stack import ADMIN, DISPATCHER, LOCAL_SETTINGS_DIR
from local.national_intake import ADMIN_TOKEN_ENV, CLIENTS_ENV, DATABASE_URL_ENV
from local.national_intake.__main__ import parse_clients
from local.national_intake.credentials_files import connection_id, pgpass_line, pgpass_password
from local.national_intake.process import INTAKE_DB, public_key_pem
from local.registry.events import events_secret_env
from local.registry.registries import LEGACY_REGISTRY

REPO = Path(__file__).resolve().parents[1]

# Connection ids of the project itself, not of a catalogue source.
WAREHOUSE_CONN_ID = "sti_warehouse"
PROJECT_CONN_IDS = {WAREHOUSE_CONN_ID, API_CONNECTION}
# The connection ids the stack must provide even before (or without) the catalogue: the
# warehouse, the stand-in registry's API and its events' signing secret (the event intake's),
# Airflow's REST API (the event dispatcher's).
EXPECTED_CONN_IDS = {*PROJECT_CONN_IDS, "ninh_binh_registry", "ninh_binh_registry_events"}

EXPECTED_SERVICES = {
    "warehouse",
    "registry",
    "event-intake",
    "event-dispatcher",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "national-intake-init",
    "national-intake",
}
# The modules of the change-event chain: registry -> intake -> ops.event_inbox -> dispatcher.
INTAKE_MODULE = "connectors.event_intake"
DISPATCH_MODULE = "connectors.event_dispatch"
REGISTRY_MODULE = "local.registry"
POOLS_COMMAND = ["python", "-m", "local.airflow_stack", "pools"]
# Container paths: the image copies the repository to /opt/sti (docker/Dockerfile).
CONTAINER_REPO = "/opt/sti"
# Airflow's users (simple auth manager) -> the variable of docker/.env with their password,
# which only the API server gets (it writes them into its passwords file).
USER_PASSWORD_VARIABLES = {
    ADMIN: "AIRFLOW_ADMIN_PASSWORD",
    DISPATCHER: "AIRFLOW_DISPATCHER_PASSWORD",
}
API_SERVER_ONLY_ENV = set(USER_PASSWORD_VARIABLES.values())
# Airflow service -> the airflow subcommand it must run.
AIRFLOW_SERVICE_COMMANDS = {
    "airflow-init": ["db", "migrate"],
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# Variant -> (compose files under docker/, merged in this order; the profiles it runs with).
VARIANTS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "local": (("compose.yaml",), frozenset()),
    "celery": (("compose.yaml", "compose.celery.yaml"), frozenset({"celery"})),
}
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
CELERY_SERVICES = {"redis", "airflow-worker"}  # only in the celery variant
CELERY_WORKER_COMMAND = ["celery", "worker"]
# Sequences Compose concatenates when merging files; other sequences are replaced.
_MERGED_SEQUENCES = {"ports", "expose", "volumes", "dns", "extra_hosts", "secrets", "configs"}

_VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>" + _VAR_NAME + r")(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
    r"|(?P<named>" + _VAR_NAME + r"))"
)
_ONLY_REFERENCE = re.compile(r"^\$\{" + _VAR_NAME + r"\}$")
_SECRET_KEY = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|FERNET_KEY|PRIVATE_KEY", re.I)
_NOT_A_SECRET_KEY = re.compile(r"_(FILE|PATH|CMD)$", re.I)
_URI_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\"']*:(?P<password>[^@/\s\"']*)@")
_JSON_SECRET = re.compile(
    r"\"(?P<key>[A-Za-z_]*(?:password|secret|token)[A-Za-z_]*)\"\s*:\s*\"(?P<value>[^\"]*)\"",
    re.I,
)
_SECRET_FLAG = re.compile(r"^--?[\w-]*(password|passwd|secret|token)[\w-]*(=.*)?$", re.I)
# Flags naming where a secret is, not holding it (--pgpass-file, --admin-token-env).
_NOT_A_SECRET_FLAG = re.compile(r"^--?[\w-]*-(file|env|dir|path)(=.*)?$", re.I)
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_SHELLS = {"sh", "bash", "dash", "ash"}
_SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")"}


# --------------------------------------------------------------------------------------------
# Loading


@dataclasses.dataclass(frozen=True)
class Stack:
    repo: Path
    variant: str = "local"

    @property
    def docker(self) -> Path:
        return self.repo / "docker"

    @property
    def compose_path(self) -> Path:
        return self.docker / "compose.yaml"

    @property
    def compose_paths(self) -> list[Path]:
        return [self.docker / name for name in VARIANTS[self.variant][0]]

    @property
    def profiles(self) -> frozenset[str]:
        return VARIANTS[self.variant][1]

    @property
    def dockerfile_path(self) -> Path:
        return self.docker / "Dockerfile"

    @property
    def env_example_path(self) -> Path:
        return self.docker / ".env.example"

    @property
    def dockerignore_path(self) -> Path:
        return self.repo / ".dockerignore"

    @property
    def catalogue_path(self) -> Path:
        return self.repo / "dags" / "sources.yml"

    def compose(self) -> dict[str, Any]:
        """The variant's compose files merged; every service, whatever its profiles."""
        merged: dict[str, Any] = {}
        for path in self.compose_paths:
            assert path.is_file(), f"{path.relative_to(self.repo)} is missing"
            # safe_load resolves anchors, aliases and `<<` merge keys (within one file).
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            assert isinstance(data, dict), f"{path} is not a YAML mapping"
            merged = merge_compose(merged, data)
        return merged

    def services(self) -> dict[str, dict[str, Any]]:
        """The services the variant runs: no profile, or one of the variant's."""
        services = self.compose().get("services")
        assert isinstance(services, dict) and services, "compose.yaml has no services"
        return {
            name: service
            for name, service in services.items()
            if not service.get("profiles") or set(service["profiles"]) & self.profiles
        }

    def env_example(self) -> dict[str, str]:
        return parse_env_file(self.env_example_path)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them (comments, blank lines, `export`, quotes)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(_VAR_NAME, key):
            raise AssertionError(f"{path}:{number}: not a KEY=VALUE line: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def merge_compose(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base` as Compose merges files: services key by key (environment and
    depends_on entries merged, ports/volumes/… appended, mappings merged, the rest replaced),
    other top-level mappings entry by entry."""
    merged = dict(base)
    for key, value in override.items():
        if key == "services":
            services = dict(merged.get("services") or {})
            for name, service in (value or {}).items():
                services[name] = _merge_service(services.get(name) or {}, service or {})
            merged[key] = services
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key == "environment":
            merged[key] = {**environment(base), **environment(override)}
        elif key == "depends_on":
            merged[key] = {**depends_on(base), **depends_on(override)}
        elif key in _MERGED_SEQUENCES and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_mapping(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_mapping(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge_mapping(merged[key], value) if both else value
    return merged


def walk_strings(node: Any) -> Iterator[str]:
    """Every string value (not mapping key) in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)


def referenced_variables(text: str) -> set[str]:
    names = set()
    for match in _INTERPOLATION.finditer(text):
        if not match["escaped"]:
            names.add(match["braced"] or match["named"])
    return names


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose-style interpolation; `$$` is a literal `$`. Unknown variables become ''."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value = env.get(name)
        op, arg = match["op"] or "", match["arg"] or ""
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return arg
        elif op in (":+", "+"):
            return arg if (value if op == ":+" else value is not None) else ""
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return {name: (spec or {}) for name, spec in deps.items()}


def as_argv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return shlex.split(str(value))


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (split on ; && || | & and newlines)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in _SHELL_SEPARATORS or set(token) <= set(";&|()"):
            commands.append([])
        else:
            commands[-1].append(token)
    cleaned = []
    for argv in commands:
        while argv and (argv[0] in {"exec", "command"} or re.match(_VAR_NAME + "=", argv[0])):
            argv = argv[1:]
        if argv:
            cleaned.append(argv)
    return cleaned


def expand_shell(argv: list[str]) -> list[list[str]]:
    if argv and Path(argv[0]).name in _SHELLS and "-c" in argv[:-1]:
        return shell_commands(argv[argv.index("-c") + 1])
    return [argv] if argv else []


def service_commands(service: dict[str, Any], env: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(where, argv) of every command a service runs: entrypoint+command and its healthcheck.

    Values are interpolated with `env` first, as Compose does before running anything.
    """

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [interpolate(str(item), env) for item in value]
        return None if value is None else interpolate(str(value), env)

    found = []
    main = as_argv(resolve(service.get("entrypoint"))) + as_argv(resolve(service.get("command")))
    found += [("command", argv) for argv in expand_shell(main)]
    test = resolve((service.get("healthcheck") or {}).get("test"))
    if isinstance(test, list) and test:
        if test[0] == "CMD":
            found += [("healthcheck", argv) for argv in expand_shell(test[1:])]
        elif test[0] == "CMD-SHELL":
            found += [("healthcheck", argv) for argv in shell_commands(" ".join(test[1:]))]
    elif isinstance(test, str) and test:
        found += [("healthcheck", argv) for argv in shell_commands(test)]
    return found


def python_module(argv: list[str]) -> tuple[str, list[str]] | None:
    """(module, its arguments) for `python -m module ...`, else None."""
    if len(argv) >= 3 and _PYTHON.match(Path(argv[0]).name) and argv[1] == "-m":
        return argv[2], argv[3:]
    return None


def airflow_argv(argv: list[str]) -> list[str] | None:
    """The arguments after `airflow` (or `python -m airflow`), else None."""
    if argv and Path(argv[0]).name == "airflow":
        return argv[1:]
    module = python_module(argv)
    if module and module[0] == "airflow":
        return module[1]
    return None


def all_commands(stack: Stack) -> Iterator[tuple[str, str, list[str]]]:
    env = stack.env_example()
    for name, service in stack.services().items():
        for where, argv in service_commands(service, env):
            yield name, where, argv


def repo_module_path(repo: Path, module: str) -> Path | None:
    """The file `python -m module` runs if the module lives in the repo, else None."""
    base = repo.joinpath(*module.split("."))
    for candidate in (base / "__main__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def copy_arguments(args: str) -> tuple[dict[str, str], list[str]]:
    """(flags, paths) of a COPY/ADD instruction; the last path is the destination."""
    tokens = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = {}
    paths = []
    for token in tokens:
        if token.startswith("--") and not paths:
            name, _, value = token[2:].partition("=")
            flags[name] = value
        else:
            paths.append(token)
    return flags, paths


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword != "ENV":
            continue
        tokens = shlex.split(args)
        if tokens and "=" not in tokens[0]:  # legacy `ENV key value`
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            key, _, value = token.partition("=")
            env[key] = value
    return env


def _ignore_pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over posix paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out, i = out + re.escape("["), i + 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("^"):
                    body = "!" + body[1:]
                out += fnmatch.translate("[" + body + "]")[4:-3]
                i = end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    if not path.is_file():
        return rules
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negated, _ignore_pattern_regex(pattern)))
    return rules


def is_dockerignored(rules: list[tuple[bool, re.Pattern[str]]], relpath: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def published_ports(service: dict[str, Any], env: dict[str, str]) -> list[tuple[str, int, str]]:
    """(host ip, host port, protocol) of each published port ('' ip = all interfaces)."""
    published = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            host = interpolate(str(entry.get("published", "")), env)
            ip = interpolate(str(entry.get("host_ip", "")), env)
            protocol = str(entry.get("protocol", "tcp"))
        else:
            spec, _, protocol = interpolate(str(entry), env).partition("/")
            protocol = protocol or "tcp"
            parts = spec.rsplit(":", 2)
            if len(parts) < 2:
                continue  # container port only: Docker picks a free host port
            ip = parts[0].strip("[]") if len(parts) == 3 else ""
            host = parts[-2]
        if not host:
            continue
        low, _, high = host.partition("-")
        if not (low.isdigit() and (high or low).isdigit()):
            raise AssertionError(f"published port {entry!r} is not a number: {host!r}")
        for port in range(int(low), int(high or low) + 1):
            published.append((ip, port, protocol))
    return published


def catalogue_connection_ids(stack: Stack) -> set[str]:
    """Every connection id the catalogue names: sources' connection_id and events'
    signing_secret (the connection holding the key their change events are signed with)."""
    assert stack.catalogue_path.is_file(), (
        f"the source catalogue {stack.catalogue_path.relative_to(stack.repo)} is missing: "
        "compose's AIRFLOW_CONN_* ids cannot be checked against the connection ids the DAGs use"
    )
    ids: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"connection_id", "signing_secret"} and isinstance(value, str):
                    ids.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(stack.catalogue_path.read_text(encoding="utf-8")))
    assert ids, f"{stack.catalogue_path} has no connection_id keys"
    return ids


def catalogue_sources(stack: Stack) -> list[dict[str, Any]]:
    """The catalogue's sources, as written (no validation: connectors/catalogue.py does that)."""
    if not stack.catalogue_path.is_file():
        return []
    data = yaml.safe_load(stack.catalogue_path.read_text(encoding="utf-8")) or {}
    return [s for s in data.get("sources") or [] if isinstance(s, dict)]


def connection_json(raw: str, env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """An AIRFLOW_CONN_* value in Airflow's JSON form, interpolated with `env` (None: as
    written, ${VAR} references and all); None if it is not one."""
    value = (raw if env is None else interpolate(raw, env)).strip()
    if not value.startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def module_options(args: list[str]) -> dict[str, list[str]]:
    """option -> its values, in order, from `--name value` and `--name=value` arguments."""
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("--"):
            name, sep, value = token.partition("=")
            if not sep and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            options.setdefault(name, []).append(value)
        i += 1
    return options


def last_option(options: dict[str, list[str]], name: str, default: str = "") -> str:
    return (options.get(name) or [default])[-1]


def services_running(stack: Stack, module: str) -> dict[str, list[str]]:
    """service -> the arguments of its main command `python -m <module> ...`."""
    env = stack.env_example()
    found = {}
    for name, service in stack.services().items():
        for where, argv in service_commands(service, env):
            parsed = python_module(argv)
            if where == "command" and parsed and parsed[0] == module:
                found[name] = parsed[1]
    return found


def declared_connection_ids(stack: Stack) -> dict[str, str]:
    """connection id -> raw value, over all services' AIRFLOW_CONN_* variables."""
    declared = {}
    for service in stack.services().values():
        for key, value in environment(service).items():
            if key.startswith("AIRFLOW_CONN_"):
                declared[key.removeprefix("AIRFLOW_CONN_").lower()] = value
    return declared


# --------------------------------------------------------------------------------------------
# Facts about the installed Airflow (one subprocess per session; ~4 s)

_AIRFLOW_PROBE = r"""
import argparse, importlib.util, json, re
from airflow.cli.cli_parser import get_parser
from airflow.configuration import conf

def tree(parser):
    node = {"options": sorted({o for a in parser._actions for o in a.option_strings}),
            "commands": {}}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                node["commands"][name] = tree(sub)
    return node

options = {s: sorted(d.get("options", {})) for s, d in conf.configuration_description.items()}
# Cosmos reads most of its [cosmos] options with fallbacks that Airflow does not list.
spec = importlib.util.find_spec("cosmos.settings")
if spec is not None:
    source = open(spec.origin, encoding="utf-8").read()
    found = re.findall(r'conf\.get\w*\(\s*"cosmos",\s*"(\w+)"', source)
    options["cosmos"] = sorted(set(options.get("cosmos", [])) | set(found))
print("@@PROBE@@" + json.dumps({"cli": tree(get_parser()), "options": options}))
"""


@dataclasses.dataclass(frozen=True)
class AirflowFacts:
    cli: dict[str, Any]
    options: dict[str, set[str]]


@pytest.fixture(scope="session")
def airflow_facts(tmp_path_factory: pytest.TempPathFactory) -> AirflowFacts:
    # Every executor a variant configures: executors can add CLI commands.
    executors = {
        environment(service).get("AIRFLOW__CORE__EXECUTOR") or "LocalExecutor"
        for variant in VARIANTS
        for service in Stack(REPO, variant).services().values()
        if service.get("command") and "airflow" in as_argv(service["command"])[:1]
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
        "AIRFLOW__CORE__EXECUTOR": ",".join(sorted(executors or {"LocalExecutor"})),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("@@PROBE@@")]
    assert result.returncode == 0 and lines, f"probing the installed Airflow failed:\n{result}"
    data = json.loads(lines[-1].removeprefix("@@PROBE@@"))
    return AirflowFacts(
        cli=data["cli"], options={s: set(keys) for s, keys in data["options"].items()}
    )


def airflow_cli_problem(cli: dict[str, Any], args: list[str]) -> str | None:
    """Why `airflow <args>` is not a valid invocation of the installed Airflow, or None."""
    node, path, i = cli, [], 0
    while node["commands"]:
        if i >= len(args) or args[i].startswith("-"):
            return f"`airflow {' '.join(path)}` needs a subcommand ({', '.join(node['commands'])})"
        if args[i] not in node["commands"]:
            return f"`airflow {' '.join([*path, args[i]])}`: no such subcommand"
        node = node["commands"][args[i]]
        path.append(args[i])
        i += 1
    for token in args[i:]:
        if token.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", token):
            option = token.partition("=")[0]
            if option not in node["options"]:
                return f"`airflow {' '.join(path)}` has no option {option}"
    return None


# --------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty = fine)


def check_services_build(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    problems = []
    for name, service in stack.services().items():
        build = service.get("build")
        if not service.get("image") and not build:
            problems.append(f"{name}: neither image nor build")
        if not build:
            continue
        spec = {"context": build} if isinstance(build, str) else build
        context = (stack.compose_path.parent / str(spec.get("context", "."))).resolve()
        if not context.is_dir():
            problems.append(f"{name}: build context {context} does not exist")
            continue
        if not context.is_relative_to(stack.repo.resolve()):
            problems.append(f"{name}: build context {context} is outside the repository")
        dockerfile = context / str(spec.get("dockerfile", "Dockerfile"))
        if not dockerfile.is_file():
            problems.append(f"{name}: dockerfile {dockerfile} does not exist")
    return problems


def check_python_modules(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    problems = []
    for name, where, argv in all_commands(stack):
        module = python_module(argv)
        if module is None or module[0] == "airflow":
            continue
        top = module[0].split(".")[0]
        if (stack.repo / top).exists() or (stack.repo / f"{top}.py").exists():
            if repo_module_path(stack.repo, module[0]) is None:
                problems.append(f"{name} {where}: `python -m {module[0]}`: no such module in repo")
        elif importlib.util.find_spec(top) is None:
            problems.append(f"{name} {where}: `python -m {module[0]}`: module not found")
    return problems


def leading_words(args: list[str]) -> tuple[str, ...]:
    """The arguments before the first option: a module's subcommand (`files` of
    `python -m local.national_intake.credentials_files files --server-dir ...`)."""
    words = []
    for token in args:
        if token.startswith("-"):
            break
        words.append(token)
    return tuple(words)


@functools.cache
def _module_help_options(repo: Path, module: str, words: tuple[str, ...] = ()) -> frozenset[str]:
    result = subprocess.run(
        [sys.executable, "-m", module, *words, "--help"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (
        f"`python -m {' '.join([module, *words])} --help` failed:\n{result.stderr}"
    )
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", result.stdout))


def check_python_module_options(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The --options passed to repo modules are ones their argument parser knows."""
    problems = []
    for name, where, argv in all_commands(stack):
        module = python_module(argv)
        if module is None or repo_module_path(stack.repo, module[0]) is None:
            continue  # missing modules are check_python_modules' business
        options = [
            token.partition("=")[0]
            for token in module[1]
            if token.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", token)
        ]
        if not options:
            continue  # e.g. `python -m local.airflow_stack pools`, which has no --help
        known = _module_help_options(stack.repo, module[0], leading_words(module[1]))
        for option in options:
            if option not in known:
                problems.append(f"{name} {where}: `python -m {module[0]}` has no {option}")
    return problems


def check_airflow_commands(stack: Stack, facts: AirflowFacts) -> list[str]:
    problems = []
    for name, where, argv in all_commands(stack):
        args = airflow_argv(argv)
        if args is not None and (problem := airflow_cli_problem(facts.cli, args)):
            problems.append(f"{name} {where}: {problem}")
    return problems


def check_airflow_config_variables(stack: Stack, facts: AirflowFacts) -> list[str]:
    """Every AIRFLOW__SECTION__KEY names an option the installed Airflow (or Cosmos) reads."""
    problems = []
    for name, service in stack.services().items():
        for key in environment(service):
            if not key.startswith("AIRFLOW__"):
                continue
            section, sep, option = key.removeprefix("AIRFLOW__").partition("__")
            section, option = section.lower(), option.lower()
            base = re.sub(r"_(cmd|secret)$", "", option)
            if not sep or not ({option, base} & facts.options.get(section, set())):
                problems.append(f"{name}: {key} is not an option of the installed Airflow")
    return problems


def check_connections_expected(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The stack declares the connections it needs, and they parse as Airflow connections."""
    problems = []
    declared = declared_connection_ids(stack)
    known = set(EXPECTED_CONN_IDS) | PROJECT_CONN_IDS
    if stack.catalogue_path.is_file():
        known |= catalogue_connection_ids(stack)
    for missing in sorted(EXPECTED_CONN_IDS - set(declared)):
        problems.append(f"no AIRFLOW_CONN_{missing.upper()} in compose")
    env = stack.env_example()
    for conn_id, raw in sorted(declared.items()):
        if conn_id not in known:
            problems.append(f"AIRFLOW_CONN_{conn_id.upper()}: the project uses no {conn_id!r}")
        value = interpolate(raw, env).strip()
        if value.startswith("{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as error:
                problems.append(f"AIRFLOW_CONN_{conn_id.upper()}: invalid JSON ({error})")
                continue
            if not parsed.get("conn_type"):
                problems.append(f"AIRFLOW_CONN_{conn_id.upper()}: JSON without conn_type")
        elif not (urlsplit(value).scheme and urlsplit(value).hostname):
            problems.append(f"AIRFLOW_CONN_{conn_id.upper()}: not a connection URI: {value!r}")
    return problems


def check_connections_in_catalogue(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Every AIRFLOW_CONN_<ID> is a connection of dags/sources.yml (a source's connection_id or
    its events' signing_secret) or one of the project's own (the warehouse, Airflow's API)."""
    referenced = catalogue_connection_ids(stack) | PROJECT_CONN_IDS
    return [
        f"AIRFLOW_CONN_{conn_id.upper()}: {conn_id!r} is not a connection_id in the catalogue"
        for conn_id in sorted(set(declared_connection_ids(stack)) - referenced)
    ]


def check_variables_defined(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    used = set()
    for value in walk_strings(stack.compose()):
        used |= referenced_variables(value)
    defined = stack.env_example()
    problems = [
        f"${{{name}}} is used in compose.yaml but not defined in docker/.env.example"
        for name in sorted(used - set(defined))
    ]
    problems += [
        f"{name} is defined in docker/.env.example but compose.yaml never uses it"
        for name in sorted(set(defined) - used)
    ]
    return problems


def check_dockerfile_copy_sources(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """COPY/ADD sources exist in the build context and .dockerignore does not exclude them."""
    problems = []
    context = stack.repo
    rules = dockerignore_rules(stack.dockerignore_path)
    for keyword, args in dockerfile_instructions(stack.dockerfile_path):
        if keyword not in {"COPY", "ADD"}:
            continue
        flags, paths = copy_arguments(args)
        if "from" in flags:
            continue  # from another stage or image, not from the context
        if len(paths) < 2:
            problems.append(f"{keyword} {args}: needs a source and a destination")
            continue
        for source in paths[:-1]:
            if re.match(r"^[a-z]+://", source):
                continue
            relative_source = os.path.normpath(source.lstrip("/"))
            if relative_source.startswith(".."):
                problems.append(f"{keyword} {source}: outside the build context")
                continue
            if any(c in relative_source for c in "*?["):
                matches = [m.relative_to(context) for m in sorted(context.glob(relative_source))]
            else:
                exists = (context / relative_source).exists()
                matches = [Path(relative_source)] if exists else []
            if not matches:
                problems.append(f"{keyword} {source}: not found in the build context")
                continue
            for match in matches:
                relative = match.as_posix()
                if relative != "." and is_dockerignored(rules, relative):
                    problems.append(f"{keyword} {source}: excluded by .dockerignore")
    return problems


def check_bind_mounts(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    problems = []
    compose = stack.compose()
    named = set((compose.get("volumes") or {}).keys())
    base = stack.compose_path.parent
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                kind, source = volume.get("type", "volume"), str(volume.get("source", ""))
            else:
                source = str(volume).split(":")[0]
                is_path = source.startswith((".", "/", "~"))
                kind = "bind" if is_path else "volume" if ":" in str(volume) else "anonymous"
            if kind == "bind":
                host = (base / os.path.expanduser(source)).resolve()
                if not host.exists():
                    problems.append(f"{name}: bind-mounted host path {host} does not exist")
            elif kind == "volume" and source and source not in named:
                problems.append(f"{name}: volume {source!r} is not declared under volumes:")
    return problems


def check_depends_on(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    problems = []
    services = stack.services()
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            condition = spec.get("condition", "service_started")
            if target not in services:
                problems.append(f"{name}: depends on unknown service {target!r}")
                continue
            if target == name:
                problems.append(f"{name}: depends on itself")
            if condition not in DEPENDS_ON_CONDITIONS:
                problems.append(f"{name}: invalid depends_on condition {condition!r}")
            healthcheck = services[target].get("healthcheck") or {}
            if condition == "service_healthy" and (
                not healthcheck.get("test") or healthcheck.get("disable")
            ):
                problems.append(f"{name}: waits for {target} healthy but it has no healthcheck")
            restart = str(services[target].get("restart", "no"))
            if condition == "service_completed_successfully" and restart in {
                "always",
                "unless-stopped",
            }:
                problems.append(f"{name}: waits for one-shot {target}, which restarts {restart}")

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            problems.append("depends_on cycle: " + " -> ".join([*trail, node]))
            return
        for target in depends_on(services.get(node) or {}):
            visit(target, [*trail, node])

    for name in services:
        visit(name, [])
    return sorted(set(problems))


def check_published_ports(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    problems = []
    env = stack.env_example()
    seen: list[tuple[str, int, str, str]] = []
    for name, service in stack.services().items():
        try:
            ports = published_ports(service, env)
        except AssertionError as error:
            problems.append(f"{name}: {error}")
            continue
        for ip, port, protocol in ports:
            if not 0 < port < 65536:
                problems.append(f"{name}: host port {port} out of range")
            wildcard = {"", "0.0.0.0", "::"}
            for other_ip, other_port, other_protocol, other in seen:
                overlap = ip == other_ip or ip in wildcard or other_ip in wildcard
                if (port, protocol) == (other_port, other_protocol) and overlap:
                    problems.append(f"{name} and {other} both publish host port {port}/{protocol}")
            seen.append((ip, port, protocol, name))
    return problems


def secret_name(key: str) -> str:
    """The part of a variable's name that says whether it holds a secret: an Airflow setting's
    option (AIRFLOW__SECRETS__BACKEND is the secrets backend's class, not a secret)."""
    _section, sep, option = key.removeprefix("AIRFLOW__").partition("__")
    return option if key.startswith("AIRFLOW__") and sep else key


def check_no_literal_secrets(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Secrets appear in compose.yaml only as ${VAR} references (their values live in .env),
    and never as a command-line flag (of a service's own command or one its shell runs)."""
    problems = []
    compose = stack.compose()
    env_example = stack.env_example()
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            option = secret_name(key)
            is_secret = _SECRET_KEY.search(option) and not _NOT_A_SECRET_KEY.search(option)
            if is_secret and not _ONLY_REFERENCE.match(value.strip()):
                problems.append(f"{name}: {key} must be a ${{VAR}} reference, not a literal")
        for value in walk_strings(service):
            for match in _URI_PASSWORD.finditer(value):
                if not _ONLY_REFERENCE.match(match["password"]):
                    problems.append(f"{name}: literal password in URI {value!r}")
            for match in _JSON_SECRET.finditer(value):
                if not _ONLY_REFERENCE.match(match["value"]):
                    problems.append(f"{name}: literal {match['key']} in {value!r}")
        for _where, argv in service_commands(service, env_example):
            for token in argv:
                if _SECRET_FLAG.match(token) and not _NOT_A_SECRET_FLAG.match(token):
                    problems.append(f"{name}: secret passed on the command line ({token})")
    return problems


def check_dockerignore(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Secrets, the host venv and git history stay out of the build context."""
    if not stack.dockerignore_path.is_file():
        return [".dockerignore is missing"]
    rules = dockerignore_rules(stack.dockerignore_path)
    must_ignore = [".env", "docker/.env", ".venv/bin/python", ".git/config"]
    return [
        f".dockerignore does not exclude {p}" for p in must_ignore if not is_dockerignored(rules, p)
    ]


def check_dockerfile_contract(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Base image, non-root user, dependency layer before the code, manifest built."""
    problems = []
    instructions = dockerfile_instructions(stack.dockerfile_path)
    keywords = [keyword for keyword, _ in instructions]
    froms = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    if len(froms) != 1 or not re.match(r"^python:3\.11-slim(@sha256:[0-9a-f]+)?$", froms[0]):
        problems.append(f"base image must be python:3.11-slim, got {froms}")
    users = [args.split(":")[0] for keyword, args in instructions if keyword == "USER"]
    if not users or users[-1] in {"root", "0"}:
        problems.append("the image must end as a non-root USER")
    env = dockerfile_env(instructions)
    if env.get("AIRFLOW_HOME") != "/opt/airflow":
        problems.append(f"AIRFLOW_HOME must be /opt/airflow, got {env.get('AIRFLOW_HOME')!r}")
    workdirs = [args for keyword, args in instructions if keyword == "WORKDIR"]
    if not workdirs or workdirs[-1] != "/opt/sti":
        problems.append(f"WORKDIR must be /opt/sti, got {workdirs}")

    def first(predicate: Callable[[str, str], bool]) -> int | None:
        return next((i for i, (k, a) in enumerate(instructions) if predicate(k, a)), None)

    def copies(k: str, a: str, sources: set[str]) -> bool:
        return k == "COPY" and sources <= set(copy_arguments(a)[1][:-1])

    def runs(k: str, a: str, *words: str) -> bool:
        return k == "RUN" and all(
            re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", a) for w in words
        )

    lock = first(lambda k, a: copies(k, a, {"pyproject.toml", "uv.lock"}))
    deps = first(lambda k, a: runs(k, a, "uv sync", "--frozen", "--no-dev", "--no-install-project"))
    code = first(lambda k, a: copies(k, a, {"."}))
    install = first(
        lambda k, a: (
            runs(k, a, "uv sync", "--frozen", "--no-dev") and "--no-install-project" not in a
        )
    )
    parse = first(lambda k, a: runs(k, a, "dbt parse"))
    build_args = dict(
        args.partition("=")[::2] for keyword, args in instructions if keyword == "ARG"
    )
    uv_pin = first(
        lambda k, a: (
            runs(k, a, "pip install")
            and re.search(r"\buv==\d+\.\d+\.\d+\b", interpolate(a, build_args)) is not None
        )
    )
    order = {
        "COPY pyproject.toml uv.lock": lock,
        "uv sync --no-install-project": deps,
        "COPY . (the repo)": code,
        "uv sync (project)": install,
        "dbt parse": parse,
    }
    for step, index in order.items():
        if index is None:
            problems.append(f"Dockerfile has no {step} step")
    indices = [index for index in order.values() if index is not None]
    if len(indices) == len(order) and indices != sorted(indices):
        problems.append(f"Dockerfile steps out of order: {order}")
    if uv_pin is None:
        problems.append("Dockerfile must install a pinned uv (pip install uv==...)")
    if "CMD" not in keywords and "ENTRYPOINT" not in keywords:
        problems.append("Dockerfile has neither CMD nor ENTRYPOINT")
    return problems


def check_compose_contract(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The services, shared Airflow settings and hostnames the stack is specified to have: every
    Airflow component with one environment (x-airflow-common's; in the celery variant, with the
    override's executor settings on top, the same for all) and the variant's executor."""
    problems = []
    compose = stack.compose()
    services = stack.services()
    expected_services = set(EXPECTED_SERVICES)
    if stack.variant == "celery":
        expected_services |= CELERY_SERVICES
    for missing in sorted(expected_services - set(services)):
        problems.append(f"service {missing} is missing")
    common = compose.get("x-airflow-common")
    if not isinstance(common, dict):
        return [*problems, "no x-airflow-common anchor block"]
    common_env = environment(common)
    env_example = stack.env_example()
    commands = dict(AIRFLOW_SERVICE_COMMANDS)
    if stack.variant == "celery":
        commands["airflow-worker"] = CELERY_WORKER_COMMAND
    # One environment for all Airflow components: x-airflow-common's, or (celery) the
    # scheduler's, which is x-airflow-common's with the override's settings on top.
    shared, label = common_env, "x-airflow-common"
    if stack.variant != "local":
        label = "airflow-scheduler"
        shared = environment(services.get(label) or common)
        for key in common_env:
            if key != "AIRFLOW__CORE__EXECUTOR" and key not in shared:
                problems.append(f"{label}: {key} of x-airflow-common is missing")
    for name, expected in commands.items():
        service = services.get(name)
        if service is None:
            continue
        own = environment(service)
        if name == "airflow-api-server":  # plus the users' passwords, which only it needs
            own = {k: v for k, v in own.items() if k not in API_SERVER_ONLY_ENV}
        if own != shared:
            problems.append(f"{name}: environment differs from {label}")
        for key in sorted(API_SERVER_ONLY_ENV & set(environment(service))):
            if name != "airflow-api-server":
                problems.append(f"{name}: {key} is the API server's alone")
        if service.get("image") != common.get("image"):
            problems.append(f"{name}: image differs from x-airflow-common")
        # The first airflow command the service runs (a shell may prepare something first).
        runs = [
            args
            for where, argv in service_commands(service, env_example)
            if where == "command" and (args := airflow_argv(argv)) is not None
        ]
        if not runs or runs[0][: len(expected)] != expected:
            problems.append(f"{name}: must run `airflow {' '.join(expected)}`, runs {runs}")
    required = {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[stack.variant],
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/sti/dags",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-api-server:8080/execution/",
    }
    for key, value in required.items():
        if shared.get(key, "").lower() != value.lower():
            problems.append(f"{label}: {key} must be {value!r}, is {shared.get(key)!r}")
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        if not shared.get(key):
            problems.append(f"{label}: {key} is not set")
    driver = urlsplit(shared.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")).scheme
    module = {"postgresql+psycopg2": "psycopg2", "postgresql+psycopg": "psycopg"}.get(driver)
    if module is None or importlib.util.find_spec(module) is None:
        problems.append(f"metadata DB driver {driver!r} is not installed in the project venv")
    # Hosts in URLs (connections, metadata DB, execution API) must be compose services.
    for name, service in services.items():
        for key, raw in environment(service).items():
            value = interpolate(raw, env_example).strip()
            urls = [value]
            if value.startswith("{"):
                try:
                    urls = [str(v) for v in json.loads(value).values()]
                except json.JSONDecodeError:
                    urls = []
            for url in urls:
                if re.match(r"^[a-z][a-z0-9+.-]*://", url):
                    host = urlsplit(url).hostname
                    if host and host not in services and host not in {"localhost", "127.0.0.1"}:
                        problems.append(f"{name}: {key} points at {host!r}, not a service")
    warehouse = services.get("warehouse") or {}
    if not str(warehouse.get("image", "")).startswith("postgres:16"):
        problems.append("warehouse must use the postgres:16 image")
    if "pg_isready" not in json.dumps((warehouse.get("healthcheck") or {}).get("test")):
        problems.append("warehouse healthcheck must use pg_isready")
    if not any(":/docker-entrypoint-initdb.d/" in str(v) for v in warehouse.get("volumes") or []):
        problems.append("warehouse: no init script mounted into /docker-entrypoint-initdb.d")
    api_ports = [str(p) for p in (services.get("airflow-api-server") or {}).get("ports") or []]
    if not any(p.split("/")[0].endswith(":8080") for p in api_ports):
        problems.append("airflow-api-server must publish container port 8080")
    return problems


def check_celery_variant(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The CeleryExecutor variant, whichever variant `stack` is: Redis (healthcheck, not on the
    host) and two or more workers only with the `celery` profile; every Airflow component on
    CeleryExecutor with the same broker (the redis service) and results in the metadata DB;
    scheduler and workers start once Redis is healthy."""
    problems = []
    local = dataclasses.replace(stack, variant="local")
    celery = dataclasses.replace(stack, variant="celery")
    override = celery.compose_paths[-1]
    if not override.is_file():
        return [f"{override.relative_to(stack.repo)} is missing"]
    for name in sorted(CELERY_SERVICES & set(local.services())):
        problems.append(f"{name}: runs without the celery profile (LocalExecutor stack)")
    services = celery.services()
    for name in sorted(CELERY_SERVICES - set(services)):
        problems.append(f"service {name} is missing from the celery variant")
    redis = services.get("redis") or {}
    if not str(redis.get("image", "")).startswith("redis:"):
        problems.append(f"redis: image must be redis:<version>, is {redis.get('image')!r}")
    if "redis-cli ping" not in " ".join(as_argv((redis.get("healthcheck") or {}).get("test"))):
        problems.append("redis: healthcheck must run `redis-cli ping`")
    if redis.get("ports"):
        problems.append("redis: the broker must not be published on the host")
    worker = services.get("airflow-worker") or {}
    replicas = (worker.get("deploy") or {}).get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 2:
        problems.append(f"airflow-worker: deploy.replicas must be 2 or more, is {replicas!r}")
    if worker.get("container_name") or worker.get("ports"):
        problems.append("airflow-worker: replicas cannot share a container_name or host ports")
    if "inspect ping" not in json.dumps((worker.get("healthcheck") or {}).get("test")):
        problems.append("airflow-worker: healthcheck must ping the worker (celery inspect ping)")
    env_example = stack.env_example()
    airflow = [name for name in [*AIRFLOW_SERVICE_COMMANDS, "airflow-worker"] if name in services]
    envs = {name: environment(services[name]) for name in airflow}
    for name, env in envs.items():
        if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(f"{name}: AIRFLOW__CORE__EXECUTOR is not CeleryExecutor")
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    ):
        values = {name: env.get(key) for name, env in envs.items()}
        if len(set(values.values())) != 1:
            problems.append(f"{key} differs between the Airflow services: {values}")
    env = envs.get("airflow-scheduler") or {}
    broker = urlsplit(interpolate(env.get("AIRFLOW__CELERY__BROKER_URL", ""), env_example))
    if broker.scheme not in {"redis", "rediss"} or broker.hostname != "redis":
        problems.append(f"AIRFLOW__CELERY__BROKER_URL must point at the redis service: {broker}")
    backend = env.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
    if backend != "db+" + env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""):
        problems.append(
            "AIRFLOW__CELERY__RESULT_BACKEND must be db+ and the metadata DB's URL"
            f" (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN), is {backend!r}"
        )
    for name in ("airflow-scheduler", "airflow-worker"):
        condition = depends_on(services.get(name) or {}).get("redis", {}).get("condition")
        if condition != "service_healthy":
            problems.append(f"{name}: must wait for redis to be healthy, waits {condition!r}")
    worker_deps = depends_on(worker)
    for target, condition in (
        ("airflow-init", "service_completed_successfully"),
        ("warehouse", "service_healthy"),
    ):
        if worker_deps.get(target, {}).get("condition") != condition:
            problems.append(f"airflow-worker: must depend on {target} ({condition})")
    return problems


def shared_warehouse_url(stack: Stack) -> str:
    """WAREHOUSE_URL of the Airflow components (x-airflow-common), raw."""
    common = stack.compose().get("x-airflow-common") or {}
    return environment(common).get("WAREHOUSE_URL", "")


def api_server_ports(stack: Stack) -> dict[str, str]:
    """service -> container port, for the services running `airflow api-server`."""
    env = stack.env_example()
    found = {}
    for name, service in stack.services().items():
        for where, argv in service_commands(service, env):
            args = airflow_argv(argv)
            if where == "command" and args and args[0] == "api-server":
                found[name] = last_option(module_options(args[1:]), "--port", "8080")
    return found


def simple_auth_users(env: dict[str, str]) -> dict[str, str]:
    """user -> role, from AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS (`user:role,...`)."""
    users = {}
    for item in env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "").split(","):
        user, _, role = item.strip().partition(":")
        if user:
            users[user] = role.partition(":")[0].lower()
    return users


def whsec_problem(value: str) -> str | None:
    """Why `value` is not a Standard Webhooks secret (`whsec_` + base64 of 24 to 64 bytes)."""
    if not value.startswith("whsec_"):
        return "does not start with whsec_"
    try:
        key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        Webhook(value)
    except Exception:  # any error: not a secret (the message never quotes the value)
        return "is not whsec_ followed by base64"
    if not 24 <= len(key) <= 64:
        return f"holds {len(key)} bytes, not 24 to 64 (generate 32)"
    return None


@dataclasses.dataclass(frozen=True)
class ApiServerStart:
    """What the API server's command did in a sandbox, with a stand-in `airflow` program."""

    returncode: int
    output: str
    airflow_calls: list[list[str]]  # the arguments each `airflow` call got
    passwords: dict[str, Any] | None  # the passwords file when `airflow` was first called
    mode: int | None  # its permission bits then


_FAKE_AIRFLOW = """#!/bin/sh
printf '%s\\n' "$*" >> "$STI_FAKE_AIRFLOW_CALLS"
file="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
if [ ! -e "$STI_FAKE_AIRFLOW_SEEN" ] && [ -e "$file" ]; then
    cp -p "$file" "$STI_FAKE_AIRFLOW_SEEN"
fi
"""


def start_api_server(stack: Stack, unset: frozenset[str] = frozenset()) -> ApiServerStart:
    """Run airflow-api-server's entrypoint + command as its container would (environment
    interpolated with .env.example, less `unset`), with `airflow` a recorder and the passwords
    file in a scratch directory. Proves what it writes before the API server starts."""
    service = stack.services().get("airflow-api-server") or {}
    env_example = stack.env_example()
    argv = [
        interpolate(token, env_example)
        for key in ("entrypoint", "command")
        for token in as_argv(service.get(key))
    ]
    with tempfile.TemporaryDirectory(prefix="sti-api-server-") as scratch:
        root = Path(scratch)
        (root / "bin").mkdir()
        fake = root / "bin" / "airflow"
        fake.write_text(_FAKE_AIRFLOW, encoding="utf-8")
        fake.chmod(0o755)
        env = {
            key: interpolate(value, env_example)
            for key, value in environment(service).items()
            if key not in unset
        }
        env |= {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "STI_FAKE_AIRFLOW_CALLS": str(root / "calls"),
            "STI_FAKE_AIRFLOW_SEEN": str(root / "seen.json"),
            # `python` is the project's; the image's venv is first on PATH there as well.
            "PATH": os.pathsep.join(
                [str(root / "bin"), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
            ),
            "HOME": str(root),
        }
        result = subprocess.run(
            argv or ["true"], cwd=root, env=env, capture_output=True, text=True, timeout=60
        )
        calls_file, seen = root / "calls", root / "seen.json"
        calls = calls_file.read_text().splitlines() if calls_file.exists() else []
        passwords, mode = None, None
        if seen.exists():
            mode = seen.stat().st_mode & 0o777
            try:
                passwords = json.loads(seen.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                passwords = {}
    return ApiServerStart(
        result.returncode,
        result.stdout + result.stderr,
        [line.split() for line in calls],
        passwords if isinstance(passwords, dict) or passwords is None else {},
        mode,
    )


def check_event_intake(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The event intake: one service running connectors.event_intake from the project image,
    listening for the other containers (--host 0.0.0.0), published on 127.0.0.1 only,
    healthchecked on /healthz, started after a healthy warehouse, on the Airflow components'
    WAREHOUSE_URL. And the stand-in registry sending its change events there: --events-intake
    the intake's service and port, --events-subscription the catalogue's subscription of the
    source it serves, signed with the very secret the intake verifies that source's events with
    (one ${VAR}, a Standard Webhooks secret in .env.example)."""
    problems: list[str] = []
    services = stack.services()
    env_example = stack.env_example()
    intakes = services_running(stack, INTAKE_MODULE)
    if len(intakes) != 1:
        return [f"one service must run `python -m {INTAKE_MODULE}`, found {sorted(intakes)}"]
    [(name, args)] = intakes.items()
    intake = services[name]
    common = stack.compose().get("x-airflow-common") or {}
    if intake.get("image") != common.get("image"):
        problems.append(f"{name}: must run the project image {common.get('image')!r}")
    options = module_options(args)
    port = last_option(options, "--port", "8090")
    host = last_option(options, "--host", "127.0.0.1")
    if host not in {"0.0.0.0", "::"}:
        problems.append(f"{name}: --host must be 0.0.0.0 (the registry posts to it), is {host!r}")
    health = " ".join(as_argv((intake.get("healthcheck") or {}).get("test")))
    if not re.search(rf"//(localhost|127\.0\.0\.1):{re.escape(port)}/healthz\b", health):
        problems.append(f"{name}: healthcheck must GET http://localhost:{port}/healthz")
    published = [interpolate(str(entry), env_example) for entry in intake.get("ports") or []]
    if not any(re.fullmatch(rf"127\.0\.0\.1:\d+:{re.escape(port)}(/tcp)?", p) for p in published):
        problems.append(f"{name}: must publish port {port} on 127.0.0.1 only, has {published}")
    if depends_on(intake).get("warehouse", {}).get("condition") != "service_healthy":
        problems.append(f"{name}: must wait for a healthy warehouse")
    env = environment(intake)
    if not env.get("WAREHOUSE_URL") or env["WAREHOUSE_URL"] != shared_warehouse_url(stack):
        problems.append(f"{name}: WAREHOUSE_URL must be the Airflow components' warehouse")

    # The registries' change events: to this intake, as the catalogue's subscription, signed
    # with the secret the intake holds for that source.
    by_subscription = {
        source["events"].get("subscription"): source
        for source in catalogue_sources(stack)
        if isinstance(source.get("events"), dict)
    }
    airflow_conns = {
        key.removeprefix("AIRFLOW_CONN_").lower(): value
        for key, value in environment(common).items()
        if key.startswith("AIRFLOW_CONN_")
    }
    registries = services_running(stack, REGISTRY_MODULE)
    if not registries:
        problems.append(f"no service runs `python -m {REGISTRY_MODULE}`")
    for registry_name, registry_args in sorted(registries.items()):
        registry_env = environment(services[registry_name])
        registry_options = module_options(registry_args)
        target = interpolate(last_option(registry_options, "--events-intake"), env_example)
        parts = urlsplit(target)
        if parts.hostname != name or str(parts.port or 80) != port:
            problems.append(
                f"{registry_name}: --events-intake must be http://{name}:{port}, is {target!r}"
            )
        pairs = registry_options.get("--events-subscription") or []
        if not pairs:
            problems.append(f"{registry_name}: no --events-subscription: it sends no events")
        for pair in pairs:
            registry_id, _, subscription = pair.partition("=")
            if "--profile" not in registry_options and registry_id != LEGACY_REGISTRY:
                problems.append(
                    f"{registry_name}: --events-subscription {pair!r}: the single-registry"
                    f" mode's registry id is {LEGACY_REGISTRY}"
                )
            source = by_subscription.get(subscription)
            if source is None:
                problems.append(
                    f"{registry_name}: --events-subscription {pair!r}: no catalogue source has"
                    f" events.subscription {subscription!r}"
                )
                continue
            conn = connection_json(
                airflow_conns.get(str(source.get("connection_id")), ""), env_example
            )
            served = urlsplit(str((conn or {}).get("host", ""))).hostname
            if served != registry_name:
                problems.append(
                    f"{registry_name}: sends as {subscription!r}, the subscription of"
                    f" {source.get('id')!r}, whose connection points at {served!r}"
                )
            secret_var = events_secret_env(registry_id)
            signing = str(source["events"].get("signing_secret", ""))
            conn_var = f"AIRFLOW_CONN_{signing.upper()}"
            sent_with = registry_env.get(secret_var, "").strip()
            intake_conn = connection_json(env.get(conn_var, ""))  # as written: ${VAR} references
            verified_with = str((intake_conn or {}).get("password", "")).strip()
            if not sent_with:
                problems.append(f"{registry_name}: no {secret_var} (the events' signing secret)")
            if intake_conn is None or not verified_with:
                problems.append(f"{name}: no {conn_var} (JSON with the signing secret as password)")
            elif sent_with and sent_with != verified_with:
                problems.append(
                    f"{registry_name} signs with {sent_with} ({secret_var}) but {name} verifies"
                    f" with {verified_with} ({conn_var})"
                )
            if verified_with and (why := whsec_problem(interpolate(verified_with, env_example))):
                problems.append(f"{name}: {conn_var}'s password in .env.example {why}")
    return problems


def check_event_dispatcher(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The event dispatcher: one service running connectors.event_dispatch from the project
    image, restarted when it stops, started after a healthy warehouse and API server, on the
    Airflow components' WAREHOUSE_URL; its connection sti_airflow_api points at the API server
    (service and port) as a user of SIMPLE_AUTH_MANAGER_USERS with role op, with the password
    the API server gives that user."""
    problems: list[str] = []
    services = stack.services()
    env_example = stack.env_example()
    dispatchers = services_running(stack, DISPATCH_MODULE)
    if len(dispatchers) != 1:
        return [f"one service must run `python -m {DISPATCH_MODULE}`, found {sorted(dispatchers)}"]
    [name] = dispatchers
    dispatcher = services[name]
    common = stack.compose().get("x-airflow-common") or {}
    if dispatcher.get("image") != common.get("image"):
        problems.append(f"{name}: must run the project image {common.get('image')!r}")
    if str(dispatcher.get("restart", "no")) not in {"always", "unless-stopped"}:
        problems.append(f"{name}: must restart (unless-stopped): the event chain stops with it")
    env = environment(dispatcher)
    if not env.get("WAREHOUSE_URL") or env["WAREHOUSE_URL"] != shared_warehouse_url(stack):
        problems.append(f"{name}: WAREHOUSE_URL must be the Airflow components' warehouse")
    api_servers = api_server_ports(stack)
    deps = depends_on(dispatcher)
    for target in ["warehouse", *sorted(api_servers)]:
        if deps.get(target, {}).get("condition") != "service_healthy":
            problems.append(f"{name}: must wait for {target} to be healthy")
    conn_var = f"AIRFLOW_CONN_{API_CONNECTION.upper()}"
    conn = connection_json(env.get(conn_var, ""), env_example)
    if conn is None:
        return [*problems, f"{name}: no {conn_var} in Airflow's JSON form"]
    base = urlsplit(str(conn.get("host", "")))
    port = str(conn.get("port") or base.port or "")
    if base.hostname not in api_servers or port != api_servers[base.hostname]:
        problems.append(
            f"{name}: {conn_var} host must be the API server, http://airflow-api-server:"
            f"{api_servers.get('airflow-api-server', '8080')}, is {conn.get('host')!r}"
        )
    api_server = services.get(base.hostname or "", {})
    login = str(conn.get("login", ""))
    role = simple_auth_users(environment(api_server)).get(login)
    if role != "op":
        problems.append(
            f"{name}: {conn_var} login {login!r} must be a user with role op in"
            f" AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS, is {role!r}"
        )
    if base.hostname == "airflow-api-server":
        started = start_api_server(stack)
        given = (started.passwords or {}).get(login)
        if not given or given != conn.get("password"):
            problems.append(
                f"{name}: {conn_var}'s password is not the one airflow-api-server gives {login!r}"
            )
    return problems


def check_airflow_users(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Users `admin` (role admin) and `sti_dispatcher` (role op) whose passwords come from
    docker/.env: the API server's command writes them (AIRFLOW_ADMIN_PASSWORD,
    AIRFLOW_DISPATCHER_PASSWORD) into its passwords file, mode 0600, before `airflow api-server`
    starts, printing nothing; with one of them unset it fails instead of starting a server
    whose users get generated passwords."""
    problems: list[str] = []
    services = stack.services()
    api_server = services.get("airflow-api-server")
    if api_server is None:
        return ["service airflow-api-server is missing"]
    env = environment(api_server)
    users = simple_auth_users(env)
    for user, role in ((ADMIN, "admin"), (DISPATCHER, "op")):
        if users.get(user) != role:
            problems.append(
                f"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS must list {user}:{role}, has {users}"
            )
    env_example = stack.env_example()
    expected = {}  # user -> its password, .env.example's placeholder
    for user, variable in USER_PASSWORD_VARIABLES.items():
        raw = env.get(variable, "").strip()
        if not _ONLY_REFERENCE.match(raw):
            problems.append(f"airflow-api-server: {variable} must be a ${{VAR}} of docker/.env")
        expected[user] = interpolate(raw, env_example)
    started = start_api_server(stack)
    calls = [call for call in started.airflow_calls if call[:1] == ["api-server"]]
    if started.returncode != 0 or len(calls) != 1:
        problems.append(
            f"airflow-api-server: its command must end in `airflow api-server` (exit"
            f" {started.returncode}, airflow called with {started.airflow_calls}):"
            f" {started.output[-500:]}"
        )
    if started.passwords is None:
        problems.append("airflow-api-server: no passwords file when `airflow api-server` starts")
    else:
        if started.mode != 0o600:
            problems.append(f"airflow-api-server: passwords file mode {started.mode:o}, not 600")
        for user in sorted(users):
            if not started.passwords.get(user):
                problems.append(f"airflow-api-server: the passwords file has none for {user!r}")
        for user, password in expected.items():
            if password and started.passwords.get(user) != password:
                problems.append(
                    f"airflow-api-server: {user!r} does not get its password from docker/.env"
                )
    secrets = [value for value in expected.values() if value]
    if any(secret in started.output for secret in secrets):
        problems.append("airflow-api-server: its command prints a password")
    for variable in sorted(API_SERVER_ONLY_ENV):
        unset = start_api_server(stack, frozenset({variable}))
        if unset.returncode == 0 or unset.airflow_calls:
            problems.append(
                f"airflow-api-server: starts without {variable} (Airflow would generate and"
                " print a password); it must fail instead"
            )
    return problems


def check_airflow_init(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """airflow-init migrates the metadata DB, then creates the catalogue's pools (extraction
    tasks wait for their pool: without it they never run)."""
    service = stack.services().get("airflow-init")
    if service is None:
        return ["service airflow-init is missing"]
    commands = [
        argv for where, argv in service_commands(service, stack.env_example()) if where == "command"
    ]

    def index(predicate: Callable[[list[str]], bool]) -> int | None:
        return next((i for i, argv in enumerate(commands) if predicate(argv)), None)

    migrate = index(lambda argv: (airflow_argv(argv) or [])[:2] == ["db", "migrate"])
    pools = index(lambda argv: python_module(argv) == (POOLS_COMMAND[2], POOLS_COMMAND[3:]))
    problems = []
    if migrate is None:
        problems.append("airflow-init: does not run `airflow db migrate`")
    if pools is None:
        problems.append(f"airflow-init: does not run `{' '.join(POOLS_COMMAND)}`")
    elif migrate is not None and pools < migrate:
        problems.append("airflow-init: creates the pools before migrating the metadata DB")
    return problems


def check_airflow_pythonpath(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Every Airflow component has local/airflow_config (airflow_local_settings.py: the
    scheduler and Celery workers preload GX and dbt) on its PYTHONPATH, before the repository."""
    problems = []
    relative = LOCAL_SETTINGS_DIR.resolve().relative_to(REPO).as_posix()
    settings_dir = f"{CONTAINER_REPO}/{relative}"
    if not (stack.repo / relative / "airflow_local_settings.py").is_file():
        problems.append(f"{relative}/airflow_local_settings.py is missing")
    rules = dockerignore_rules(stack.dockerignore_path)
    if is_dockerignored(rules, f"{relative}/airflow_local_settings.py"):
        problems.append(
            f".dockerignore keeps {relative}/airflow_local_settings.py out of the image"
        )
    services = stack.services()
    for name in [*AIRFLOW_SERVICE_COMMANDS, "airflow-worker"]:
        if name not in services:
            continue
        path = environment(services[name]).get("PYTHONPATH", "")
        entries = [entry.rstrip("/") for entry in path.split(":")]
        if settings_dir not in entries:
            problems.append(f"{name}: PYTHONPATH lacks {settings_dir}: {path!r}")
        if CONTAINER_REPO not in entries:
            problems.append(f"{name}: PYTHONPATH lacks {CONTAINER_REPO} (dags import the project)")
        elif settings_dir in entries[entries.index(CONTAINER_REPO) :]:
            problems.append(f"{name}: PYTHONPATH must have {settings_dir} before {CONTAINER_REPO}")
    return problems


# --------------------------------------------------------------------------------------------
# The national feed: national-intake-init -> its volumes -> national-intake and Airflow

NATIONAL_INTAKE_MODULE = "local.national_intake"
CREDENTIALS_MODULE = "local.national_intake.credentials_files"
SECRETS_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
ENV_SECRETS_BACKEND = "EnvironmentVariablesBackend"
# The Airflow components that run the national feed's tasks (LocalExecutor: the scheduler).
FEED_RUNNERS = ("airflow-scheduler", "airflow-worker")


def named_mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (named volume, read-only) of a service's named-volume mounts."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                target = str(volume.get("target", "")).rstrip("/")
                mounts[target] = (str(volume["source"]), bool(volume.get("read_only")))
            continue
        source, _, rest = str(volume).partition(":")
        target, _, mode = rest.partition(":")
        if target and not source.startswith((".", "/", "~")):
            mounts[target.rstrip("/")] = (source, "ro" in mode.split(","))
    return mounts


def mount_of(service: dict[str, Any], path: str) -> tuple[str, str, bool] | None:
    """(volume, path inside it, read-only) of a container path on a named volume, else None."""
    for target, (volume, read_only) in sorted(named_mounts(service).items(), reverse=True):
        if path == target or path.startswith(target + "/"):
            return volume, path[len(target) :].lstrip("/"), read_only
    return None


def remap_paths(text: str, paths: dict[str, Path]) -> str:
    """`text` with each container path of `paths` replaced by its scratch directory."""
    for target in sorted(paths, key=len, reverse=True):
        text = text.replace(target, str(paths[target]))
    return text


def credentials_steps(service: dict[str, Any], env: dict[str, str], step: str) -> list[list[str]]:
    """The options of each `python -m <CREDENTIALS_MODULE> <step> ...` a service runs."""
    found = []
    for where, argv in service_commands(service, env):
        module = python_module(argv)
        if where == "command" and module and module[0] == CREDENTIALS_MODULE:
            found += [module[1][1:]] if leading_words(module[1])[:1] == (step,) else []
    return found


def credentials_init(stack: Stack) -> tuple[str, dict[str, Any]] | None:
    """(name, service) of the service running `python -m <CREDENTIALS_MODULE> files`."""
    env = stack.env_example()
    for name, service in stack.services().items():
        if credentials_steps(service, env, "files"):
            return name, service
    return None


_SCRATCH: list[Path] = []


def scratch_dir(prefix: str) -> Path:
    """A directory kept for the session (results are cached), removed at exit."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="sti-docker-stack-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_SCRATCH[0]))


_FAKE_INIT_PYTHON = """#!/bin/sh
for argument in "$@"; do printf '%s\\t' "$argument"; done >> "$STI_FAKE_PYTHON_CALLS"
echo >> "$STI_FAKE_PYTHON_CALLS"
if [ "$1" = "-m" ] && [ "$2" = "{module}" ] && [ "$3" = "files" ]; then
    exec "$STI_REAL_PYTHON" "$@"
fi
"""


@dataclasses.dataclass(frozen=True)
class InitRuns:
    """national-intake-init's command run again and again on the same scratch volumes."""

    service: str
    volumes: dict[str, Path]  # named volume -> its scratch directory
    results: tuple[tuple[int, str], ...]  # (exit status, output) of each run
    calls: tuple[tuple[tuple[str, ...], ...], ...]  # each run's `python` calls (arguments)
    # Each run's files: "<volume>/<path>" -> (mode, owner uid, text); directories end in "/".
    snapshots: tuple[dict[str, tuple[int, int, str]], ...]


def _snapshot(volumes: dict[str, Path]) -> dict[str, tuple[int, int, str]]:
    found = {}
    for volume, root in volumes.items():
        for path in [root, *sorted(root.rglob("*"))]:
            stat_ = path.stat()
            relative = "/".join([volume, *path.relative_to(root).parts])
            if path.is_dir():
                found[relative.rstrip("/") + "/"] = (stat_.st_mode & 0o777, stat_.st_uid, "")
            else:
                text = path.read_text(encoding="utf-8", errors="replace")
                found[relative] = (stat_.st_mode & 0o777, stat_.st_uid, text)
    return found


@functools.cache
def _run_init(
    service: str,
    entrypoint: tuple[str, ...],
    command: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    mounts: tuple[tuple[str, str], ...],
    runs: tuple[tuple[str, ...] | None, ...],
) -> InitRuns:
    root = scratch_dir("init-")
    volumes = {volume: root / "volumes" / volume for _, volume in mounts}
    paths = {target: volumes[volume] for target, volume in mounts}
    (root / "bin").mkdir()
    fake = root / "bin" / "python"
    fake.write_text(_FAKE_INIT_PYTHON.replace("{module}", CREDENTIALS_MODULE), encoding="utf-8")
    fake.chmod(0o755)
    results, calls, snapshots = [], [], []
    for extra in runs:
        # `docker compose run --rm <service> ARGS`: ARGS replace the command, after the entrypoint.
        argv = [remap_paths(token, paths) for token in [*entrypoint, *(extra or command)]]
        calls_file = root / "calls"
        calls_file.write_text("", encoding="utf-8")
        run_env = {key: remap_paths(value, paths) for key, value in env}
        run_env |= {
            "PATH": os.pathsep.join([str(root / "bin"), "/usr/bin", "/bin"]),
            "PYTHONPATH": str(REPO),  # as the image's /opt/sti (copies share its code)
            "HOME": str(root),
            "STI_REAL_PYTHON": sys.executable,
            "STI_FAKE_PYTHON_CALLS": str(calls_file),
        }
        result = subprocess.run(
            argv or ["true"], cwd=REPO, env=run_env, capture_output=True, text=True, timeout=120
        )
        results.append((result.returncode, result.stdout + result.stderr))
        lines = calls_file.read_text(encoding="utf-8").splitlines()
        calls.append(tuple(tuple(line.rstrip("\t").split("\t")) for line in lines if line))
        for directory in volumes.values():
            directory.mkdir(parents=True, exist_ok=True)
        snapshots.append(_snapshot(volumes))
    return InitRuns(service, volumes, tuple(results), tuple(calls), tuple(snapshots))


def run_init(stack: Stack, *runs: tuple[str, ...] | None) -> InitRuns | None:
    """Run national-intake-init's command once per `runs` item (None: as `up` runs it; a tuple:
    as `docker compose run --rm national-intake-init <args>`) on fresh scratch volumes, with
    its environment interpolated from .env.example and its volumes' paths remapped. Cached."""
    found = credentials_init(stack)
    if found is None:
        return None
    name, service = found
    env_example = stack.env_example()
    mounts = tuple(
        sorted((target, volume) for target, (volume, _) in named_mounts(service).items())
    )
    env = tuple(sorted((k, interpolate(v, env_example)) for k, v in environment(service).items()))
    return _run_init(
        name,
        tuple(interpolate(t, env_example) for t in as_argv(service.get("entrypoint"))),
        tuple(interpolate(t, env_example) for t in as_argv(service.get("command"))),
        env,
        mounts,
        runs or (None,),
    )


_FAKE_INTAKE_PYTHON = """#!/bin/sh
exec "$STI_REAL_PYTHON" -c 'import json, os, sys
json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, open(os.environ["STI_FAKE_OUT"], "w"))
' "$@"
"""


@dataclasses.dataclass(frozen=True)
class IntakeStart:
    """What the national intake's command handed to `python`, on national-intake-init's files."""

    returncode: int
    output: str
    argv: list[str] | None  # None: python was never started
    env: dict[str, str]  # its environment then
    paths: dict[str, Path]  # container path -> scratch directory of each named-volume mount


@functools.cache
def _start_intake(
    argv: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    paths: tuple[tuple[str, Path], ...],
) -> IntakeStart:
    root = scratch_dir("intake-")
    (root / "bin").mkdir()
    fake = root / "bin" / "python"
    fake.write_text(_FAKE_INTAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    mapping = dict(paths)
    run_env = {key: remap_paths(value, mapping) for key, value in env}
    run_env |= {
        "PATH": os.pathsep.join([str(root / "bin"), "/usr/bin", "/bin"]),
        "HOME": str(root),
        "STI_REAL_PYTHON": sys.executable,
        "STI_FAKE_OUT": str(root / "started.json"),
    }
    command = [remap_paths(token, mapping) for token in argv]
    result = subprocess.run(
        command or ["true"], cwd=REPO, env=run_env, capture_output=True, text=True, timeout=60
    )
    started = root / "started.json"
    recorded = json.loads(started.read_text(encoding="utf-8")) if started.exists() else {}
    env_seen = {
        key: value for key, value in recorded.get("env", {}).items() if not key.startswith("STI_")
    }
    return IntakeStart(
        result.returncode, result.stdout + result.stderr, recorded.get("argv"), env_seen, mapping
    )


def start_national_intake(stack: Stack, init: InitRuns) -> tuple[str, IntakeStart] | None:
    """Run the national intake's entrypoint + command with a recording `python`, its named
    volumes the ones national-intake-init wrote (first run; a volume the init does not write is
    an empty directory)."""
    intakes = services_running(stack, NATIONAL_INTAKE_MODULE)
    if len(intakes) != 1:
        return None
    [name] = intakes
    service = stack.services()[name]
    env_example = stack.env_example()
    paths = {}
    for target, (volume, _) in named_mounts(service).items():
        directory = init.volumes.get(volume)
        if directory is None:
            directory = scratch_dir(f"empty-{volume}-")
        paths[target] = directory
    argv = tuple(
        interpolate(token, env_example)
        for key in ("entrypoint", "command")
        for token in as_argv(service.get(key))
    )
    env = tuple(sorted((k, interpolate(v, env_example)) for k, v in environment(service).items()))
    return name, _start_intake(argv, env, tuple(sorted(paths.items())))


def catalogue_provinces(stack: Stack) -> set[str]:
    """The province codes of the catalogue's sources (national systems have none)."""
    return {
        str(source["province_code"])
        for source in catalogue_sources(stack)
        if source.get("province_code") is not None
    }


def check_national_intake(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The stand-in national intake: one service running local.national_intake from the project
    image, restarted when it stops, listening for the other containers (--host 0.0.0.0),
    published on 127.0.0.1 only at a port of docker/.env, healthchecked on /health, started after
    a healthy warehouse and once national-intake-init has made its credentials. Its database is
    its own on the warehouse's server (not the warehouse's, not Airflow's, not as the warehouse's
    owner) with its password from a file (PGPASSFILE), and nothing of docker/.env that is secret
    reaches it: its secrets are the init's files, on volumes it mounts read-only."""
    problems: list[str] = []
    services = stack.services()
    env_example = stack.env_example()
    intakes = services_running(stack, NATIONAL_INTAKE_MODULE)
    if len(intakes) != 1:
        return [f"one service must run `python -m {NATIONAL_INTAKE_MODULE}`, found {intakes}"]
    [(name, args)] = intakes.items()
    intake = services[name]
    common = stack.compose().get("x-airflow-common") or {}
    if intake.get("image") != common.get("image"):
        problems.append(f"{name}: must run the project image {common.get('image')!r}")
    if str(intake.get("restart", "no")) not in {"always", "unless-stopped"}:
        problems.append(f"{name}: must restart (unless-stopped), as the other services do")
    options = module_options(args)
    port = last_option(options, "--port")
    host = last_option(options, "--host", "127.0.0.1")
    if host not in {"0.0.0.0", "::"}:
        problems.append(f"{name}: --host must be 0.0.0.0 (Airflow's tasks post to it), is {host!r}")
    health = " ".join(as_argv((intake.get("healthcheck") or {}).get("test")))
    if not port or not re.search(rf"//(localhost|127\.0\.0\.1):{re.escape(port)}/health\b", health):
        problems.append(f"{name}: healthcheck must GET http://localhost:{port}/health")
    raw_ports = [str(entry) for entry in intake.get("ports") or []]
    if not any(
        re.fullmatch(rf"127\.0\.0\.1:\$\{{{_VAR_NAME}\}}:{re.escape(port)}(/tcp)?", entry)
        for entry in raw_ports
    ):
        problems.append(
            f"{name}: must publish port {port} on 127.0.0.1 at a host port of docker/.env"
            f" (127.0.0.1:${{NATIONAL_INTAKE_HOST_PORT}}:{port}), has {raw_ports}"
        )
    deps = depends_on(intake)
    if deps.get("warehouse", {}).get("condition") != "service_healthy":
        problems.append(f"{name}: must wait for a healthy warehouse")
    init = credentials_init(stack)
    init_name = init[0] if init else "national-intake-init"
    if deps.get(init_name, {}).get("condition") != "service_completed_successfully":
        problems.append(f"{name}: must wait for {init_name} (its credentials) to complete")
    # Its own database on the warehouse's server.
    env = environment(intake)
    warehouse = services.get("warehouse") or {}
    warehouse_env = environment(warehouse)
    url = urlsplit(interpolate(env.get(DATABASE_URL_ENV, ""), env_example))
    database = url.path.lstrip("/")
    metadata_db = urlsplit(
        interpolate(environment(common).get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""), env_example)
    ).path.lstrip("/")
    if url.hostname != "warehouse" or (url.port or 5432) != 5432:
        problems.append(
            f"{name}: {DATABASE_URL_ENV} must be on the warehouse's server (warehouse:5432),"
            f" is {url.hostname}:{url.port}"
        )
    if not database or database in {warehouse_env.get("POSTGRES_DB", "sti"), metadata_db}:
        problems.append(
            f"{name}: {DATABASE_URL_ENV} must name a database of its own, not the warehouse's"
            f" or Airflow's: {database!r}"
        )
    if not url.username or url.username == warehouse_env.get("POSTGRES_USER", "sti"):
        problems.append(
            f"{name}: {DATABASE_URL_ENV} must connect as a role of its own, not the warehouse's"
            f" owner: {url.username!r}"
        )
    if url.password:
        problems.append(f"{name}: {DATABASE_URL_ENV} holds a password (PGPASSFILE has it)")
    if init:
        steps = credentials_steps(init[1], env_example, "database")
        made = {last_option(module_options(step), "--database", INTAKE_DB) for step in steps}
        if not steps or made != {database} or url.username != database:
            problems.append(
                f"{name}: {init_name} makes role and database {sorted(made)}; {name} uses"
                f" database {database!r} as {url.username!r}"
            )
        pgpass = mount_of(intake, env.get("PGPASSFILE", ""))
        read = {
            where[:2]
            for step in steps
            if (where := mount_of(init[1], last_option(module_options(step), "--pgpass-file")))
        }
        if pgpass is None or read != {pgpass[:2]}:
            problems.append(
                f"{name}: PGPASSFILE must be the file {init_name}'s database step reads"
                f" (volume, path: {sorted(read)}), is {pgpass and pgpass[:2]}"
            )
    referenced = set()
    for value in walk_strings(intake):
        referenced |= referenced_variables(value)
    for variable in sorted(referenced):
        if _SECRET_KEY.search(variable) and not _NOT_A_SECRET_KEY.search(variable):
            problems.append(
                f"{name}: gets ${{{variable}}} of docker/.env; its secrets must come from"
                f" {init_name}'s files"
            )
    for target, (volume, read_only) in sorted(named_mounts(intake).items()):
        if not read_only:
            problems.append(f"{name}: must mount {volume} read-only (at {target})")
    return problems


def check_national_intake_credentials(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """national-intake-init makes the national feed's credentials with nothing from the
    repository: a one-shot service, as root (fresh named volumes belong to root), handing its
    files to the image's user (mode 0600, directories 0700); kept when it runs again (every
    `up`), all replaced by `docker compose run --rm <init> --rotate`; then the stand-in's role
    and database, with the password of the file the intake reads. Run for real on scratch
    volumes, then the intake's command on them: the intake gets a client secret and public key
    for every province of the catalogue, an admin token, and never a private key (not in its
    environment, not in a file it can read)."""
    problems: list[str] = []
    found = credentials_init(stack)
    if found is None:
        return [f"no service runs `python -m {CREDENTIALS_MODULE} files`"]
    name, service = found
    env_example = stack.env_example()
    if str(service.get("restart", "no")) != "no":
        problems.append(f'{name}: a one-shot step, restart must be "no"')
    if str(service.get("user", "")).partition(":")[0] not in {"0", "root"}:
        problems.append(
            f'{name}: must run as root (user "0:0"): fresh named volumes belong to root'
        )
    users = [a for k, a in dockerfile_instructions(stack.dockerfile_path) if k == "USER"]
    runtime_uid = users[-1].partition(":")[0] if users else ""
    files_steps = credentials_steps(service, env_example, "files")
    for step in files_steps:
        owner = last_option(module_options(step), "--owner")
        if owner.partition(":")[0] != runtime_uid:
            problems.append(
                f"{name}: --owner must hand the files to the image's user {runtime_uid},"
                f" is {owner!r}"
            )
    database_steps = credentials_steps(service, env_example, "database")
    if not database_steps:
        problems.append(f"{name}: does not run `python -m {CREDENTIALS_MODULE} database`")
    warehouse_url = interpolate(shared_warehouse_url(stack), env_example)
    for step in database_steps:
        variable = last_option(module_options(step), "--admin-url-env", "WAREHOUSE_URL")
        value = interpolate(environment(service).get(variable, ""), env_example)
        if not value or value != warehouse_url:
            problems.append(
                f"{name}: --admin-url-env {variable} must be the warehouse's URL (its owner's),"
                f" is {value!r}"
            )
    runs = run_init(stack, None, None, ("--rotate",))
    assert runs is not None
    for index, (code, output) in enumerate(runs.results):
        if code != 0:
            problems.append(f"{name}: run {index + 1} failed (exit {code}): {output[-800:]}")
    if problems:
        return problems
    first, again, rotated = runs.snapshots
    steps = [call[2] for call in runs.calls[0] if call[:2] == ("-m", CREDENTIALS_MODULE)]
    if steps != ["files", "database"]:
        problems.append(f"{name}: must run `files`, then `database`; runs {steps}")
    if all(path.endswith("/") for path in first):
        return [*problems, f"{name}: wrote no files"]
    for step in database_steps:
        options = module_options(step)
        database = last_option(options, "--database", INTAKE_DB)
        where = mount_of(service, last_option(options, "--pgpass-file"))
        if where is None or not pgpass_password(runs.volumes[where[0]] / where[1], database):
            problems.append(
                f"{name}: its database step reads {last_option(options, '--pgpass-file')!r},"
                f" where its files step wrote no password for {database!r}"
            )
    for path, (mode, uid, _) in sorted(first.items()):
        expected = 0o700 if path.endswith("/") else 0o600
        if mode != expected:
            problems.append(f"{name}: {path} has mode {mode:o}, not {expected:o}")
        if os.geteuid() == 0 and runtime_uid.isdigit() and uid != int(runtime_uid):
            problems.append(f"{name}: {path} belongs to uid {uid}, not {runtime_uid}")
    if again != first:
        changed = sorted(path for path in first if again.get(path) != first[path])
        problems.append(f"{name}: running again changed {changed}: credentials must be kept")
    files = [path for path in first if not path.endswith("/")]
    unchanged = sorted(path for path in files if rotated.get(path, (0, 0, ""))[2] == first[path][2])
    if unchanged:
        problems.append(
            f"{name}: `docker compose run --rm {name} --rotate` left {unchanged} as they were"
        )
    # The intake on these volumes.
    started = start_national_intake(stack, runs)
    if started is None:
        return [*problems, f"one service must run `python -m {NATIONAL_INTAKE_MODULE}`"]
    intake_name, intake = started
    if intake.returncode != 0 or not intake.argv:
        return [
            *problems,
            f"{intake_name}: its command did not start python (exit {intake.returncode}):"
            f" {intake.output[-800:]}",
        ]
    if intake.argv[:2] != ["-m", NATIONAL_INTAKE_MODULE]:
        problems.append(f"{intake_name}: starts python with {intake.argv[:2]}")
    try:
        clients = parse_clients(intake.env.get(CLIENTS_ENV, ""))
    except ValueError as error:
        clients = {}
        problems.append(f"{intake_name}: {CLIENTS_ENV} from {name}'s files: {error}")
    missing = sorted(catalogue_provinces(stack) - set(clients))
    if missing:
        problems.append(f"{intake_name}: no client for the catalogue's provinces {missing}")
    if not intake.env.get(ADMIN_TOKEN_ENV):
        problems.append(f"{intake_name}: no {ADMIN_TOKEN_ENV} from {name}'s files")
    if any("PRIVATE KEY" in value for value in intake.env.values()):
        problems.append(f"{intake_name}: a private key is in its environment")
    for target, directory in sorted(intake.paths.items()):
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "PRIVATE KEY" in path.read_text(errors="replace"):
                problems.append(f"{intake_name}: can read a private key ({target}/{path.name})")
    database = urlsplit(intake.env.get(DATABASE_URL_ENV, "")).username or ""
    pgpass = Path(intake.env.get("PGPASSFILE", "/nonexistent"))
    if not pgpass_password(pgpass, database):
        problems.append(f"{intake_name}: PGPASSFILE holds no password for {database!r}")
    return problems


_AIRFLOW_CONNECTIONS_PROBE = r"""
import json, sys
from airflow.configuration import ensure_secrets_loaded
from airflow.models.connection import Connection
from airflow.sdk.configuration import ensure_secrets_loaded as sdk_secrets_loaded
from airflow.sdk.execution_time.context import _get_connection
from airflow.sdk.execution_time.secrets import DEFAULT_SECRETS_SEARCH_PATH_WORKERS
from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

def names(backends):
    return [type(backend).__name__ for backend in backends]

def fields(get, conn_id):
    try:
        conn = get(conn_id)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"host": conn.host, "login": conn.login, "password": conn.password,
            "extra": conn.extra_dejson}

ids = json.loads(sys.argv[1])
print("@@PROBE@@" + json.dumps({
    "chains": {
        "task": names(sdk_secrets_loaded(default_backends=DEFAULT_SECRETS_SEARCH_PATH_WORKERS)),
        "supervisor": names(ensure_secrets_backend_loaded()),
        "server": names(ensure_secrets_loaded()),
    },
    "sdk": {conn_id: fields(_get_connection, conn_id) for conn_id in ids},
    "server": {conn_id: fields(Connection.get_connection_from_secrets, conn_id) for conn_id in ids},
}))
"""


@functools.cache
def _probe_airflow_connections(
    env: tuple[tuple[str, str], ...], conn_ids: tuple[str, ...], files: tuple[str, ...]
) -> dict[str, Any]:
    home = scratch_dir("airflow-home-")
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))},
        **dict(env),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    result = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_CONNECTIONS_PROBE, json.dumps(list(conn_ids))],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("@@PROBE@@")]
    assert result.returncode == 0 and lines, f"probing Airflow's connections failed:\n{result}"
    return json.loads(lines[-1].removeprefix("@@PROBE@@"))


def check_national_feed_connections(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Every Airflow component can resolve national_intake_<code> for each province of the
    catalogue, from the file national-intake-init writes (Airflow's LocalFilesystemBackend,
    searched before the AIRFLOW_CONN_* variables and the metadata DB; the other connections
    resolve as before): the volume mounted read-only in every Airflow component (never the
    intake's own), each connection pointing at the intake's service and port with the client
    secret and a key whose public half the intake holds. The components wait for the init; the
    ones running the feed's tasks for a healthy intake. Proved with the installed Airflow, as a
    task and as the API server (execution API) resolve connections."""
    problems: list[str] = []
    services = stack.services()
    env_example = stack.env_example()
    common = stack.compose().get("x-airflow-common") or {}
    common_env = environment(common)
    airflow = [name for name in [*AIRFLOW_SERVICE_COMMANDS, "airflow-worker"] if name in services]
    backend = common_env.get("AIRFLOW__SECRETS__BACKEND", "")
    if backend != SECRETS_BACKEND:
        problems.append(f"x-airflow-common: AIRFLOW__SECRETS__BACKEND must be {SECRETS_BACKEND}")
    try:
        kwargs = json.loads(
            interpolate(common_env.get("AIRFLOW__SECRETS__BACKEND_KWARGS", "{}"), env_example)
        )
    except json.JSONDecodeError:
        kwargs = {}
    connections_path = str((kwargs or {}).get("connections_file_path", ""))
    if not connections_path:
        return [*problems, "x-airflow-common: AIRFLOW__SECRETS__BACKEND_KWARGS has no file"]
    init = credentials_init(stack)
    if init is None:
        return [*problems, f"no service runs `python -m {CREDENTIALS_MODULE} files`"]
    init_name, init_service = init
    intakes = services_running(stack, NATIONAL_INTAKE_MODULE)
    intake_name = next(iter(intakes), "national-intake")
    intake_volumes = {v for v, _ in named_mounts(services.get(intake_name) or {}).values()}
    mounted = set()
    for name in airflow:
        service = services[name]
        where = mount_of(service, connections_path)
        if where is None:
            problems.append(f"{name}: {connections_path} is on no volume it mounts")
            continue
        if not where[2]:
            problems.append(f"{name}: must mount {where[0]} read-only")
        mounted.add(where[:2])
        for volume in sorted(intake_volumes & {v for v, _ in named_mounts(service).values()}):
            problems.append(f"{name}: mounts {volume}, the national intake's own")
        deps = depends_on(service)
        if name != "airflow-init":
            condition = deps.get(init_name, {}).get("condition")
            if condition != "service_completed_successfully":
                problems.append(f"{name}: must wait for {init_name} to complete")
        condition = deps.get(intake_name, {}).get("condition")
        if name in FEED_RUNNERS and condition != "service_healthy":
            problems.append(f"{name}: runs the feed's tasks: must wait for {intake_name}")
    if len(mounted) != 1:
        return [*problems, f"the Airflow components read {connections_path} from {mounted}"]
    [(volume, relative)] = mounted
    if volume not in {v for v, read_only in named_mounts(init_service).values() if not read_only}:
        problems.append(f"{volume}: {init_name} does not write it")
    if volume in intake_volumes:
        problems.append(f"{intake_name}: mounts {volume} (the private keys)")
    if problems:
        return problems
    runs = run_init(stack)
    assert runs is not None
    written = runs.volumes[volume] / relative
    if runs.results[0][0] != 0 or not written.is_file():
        return [f"{init_name} does not write {volume}/{relative} ({runs.results[0][1][-500:]})"]
    connections = json.loads(written.read_text(encoding="utf-8"))
    started = start_national_intake(stack, runs)
    clients = {}
    if started and started[1].returncode == 0:
        with contextlib.suppress(ValueError):
            clients = parse_clients(started[1].env.get(CLIENTS_ENV, ""))
    port = last_option(module_options(intakes.get(intake_name, [])), "--port")
    provinces = sorted(catalogue_provinces(stack))
    for province in provinces:
        conn_id = connection_id(province)
        conn = connections.get(conn_id)
        if not isinstance(conn, dict):
            problems.append(f"{volume}/{relative}: no {conn_id}")
            continue
        try:
            intake = IntakeConnection.from_fields(
                conn.get("host", ""),
                conn.get("login", ""),
                conn.get("password", ""),
                conn.get("extra") or {},
            )
        except RuntimeError as error:
            problems.append(f"{conn_id}: {error}")
            continue
        target = urlsplit(intake.base_url)
        if target.hostname != intake_name or str(target.port or 80) != port:
            problems.append(
                f"{conn_id}: host must be http://{intake_name}:{port}, is {intake.base_url}"
            )
        client = clients.get(province)
        if intake.client_id != f"province-{province}":
            problems.append(f"{conn_id}: login must be province-{province}")
        if client is None or client.client_secret != intake.client_secret:
            problems.append(f"{conn_id}: the intake has another client secret for {province}")
        elif client.public_keys.get(intake.key_id) != public_key_pem(intake.signing_key_pem):
            problems.append(f"{conn_id}: the intake has not the public key of its signing key")
    if problems:
        return problems
    # The installed Airflow, with the components' secrets settings and connections.
    env = {
        key: interpolate(value, env_example)
        for key, value in common_env.items()
        if key.startswith(("AIRFLOW__SECRETS__", "AIRFLOW__WORKERS__SECRETS", "AIRFLOW_CONN_"))
    }
    mount_dir = connections_path[: len(connections_path) - len(relative)].rstrip("/")
    env = {key: value.replace(mount_dir, str(runs.volumes[volume])) for key, value in env.items()}
    env_ids = sorted(key.removeprefix("AIRFLOW_CONN_").lower() for key in env if "_CONN_" in key)
    national_ids = [connection_id(province) for province in provinces]
    probe = _probe_airflow_connections(
        tuple(sorted(env.items())), tuple(national_ids + env_ids), (written.read_text(),)
    )
    for chain, backends in probe["chains"].items():
        if backends[:1] != [SECRETS_BACKEND.rpartition(".")[2]] or ENV_SECRETS_BACKEND not in (
            backends
        ):
            problems.append(
                f"Airflow's {chain} secrets chain must search the connections file first, then"
                f" the AIRFLOW_CONN_* variables: {backends}"
            )
    for path in ("sdk", "server"):
        for conn_id in national_ids:
            got = probe[path][conn_id]
            stored = connections[conn_id]
            expected = {k: stored.get(k) for k in ("host", "login", "password", "extra")}
            if got != expected:
                problems.append(f"Airflow ({path}) resolves {conn_id} as {got.get('error', got)}")
        for conn_id in env_ids:
            got = probe[path][conn_id]
            if "error" in got:
                problems.append(f"Airflow ({path}) no longer resolves {conn_id}: {got['error']}")
    return problems


ALL_CHECKS: dict[str, Callable[..., list[str]]] = {
    "services_build": check_services_build,
    "python_modules": check_python_modules,
    "python_module_options": check_python_module_options,
    "airflow_commands": check_airflow_commands,
    "airflow_config_variables": check_airflow_config_variables,
    "connections_expected": check_connections_expected,
    "connections_in_catalogue": check_connections_in_catalogue,
    "variables_defined": check_variables_defined,
    "dockerfile_copy_sources": check_dockerfile_copy_sources,
    "bind_mounts": check_bind_mounts,
    "depends_on": check_depends_on,
    "published_ports": check_published_ports,
    "no_literal_secrets": check_no_literal_secrets,
    "dockerignore": check_dockerignore,
    "dockerfile_contract": check_dockerfile_contract,
    "compose_contract": check_compose_contract,
    "celery_variant": check_celery_variant,
    "event_intake": check_event_intake,
    "event_dispatcher": check_event_dispatcher,
    "airflow_users": check_airflow_users,
    "airflow_init": check_airflow_init,
    "airflow_pythonpath": check_airflow_pythonpath,
    "national_intake": check_national_intake,
    "national_intake_credentials": check_national_intake_credentials,
    "national_feed_connections": check_national_feed_connections,
}


# --------------------------------------------------------------------------------------------
# Tests


# Checks that need the (slower) facts about the installed Airflow.
NEEDS_AIRFLOW = {"airflow_commands", "airflow_config_variables"}


def run_check(check: str, stack: Stack, request: pytest.FixtureRequest) -> list[str]:
    facts = request.getfixturevalue("airflow_facts") if check in NEEDS_AIRFLOW else None
    return ALL_CHECKS[check](stack, facts)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=list(ALL_CHECKS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_stack(variant: str, check: str, request: pytest.FixtureRequest) -> None:
    problems = run_check(check, Stack(REPO, variant), request)
    assert not problems, "\n".join(problems)


def test_missing_catalogue_fails_clearly(stack_copy: Stack) -> None:
    stack_copy.catalogue_path.unlink()
    with pytest.raises(AssertionError, match=r"catalogue dags/sources\.yml is missing"):
        check_connections_in_catalogue(stack_copy)


def test_env_example_holds_no_real_secret() -> None:
    """Placeholders only: secret-looking values in .env.example say change-me (or are empty).
    A Standard Webhooks secret (whsec_ + base64) says it in its decoded bytes, so that the
    placeholder still works on a throw-away stack."""
    for key, value in Stack(REPO).env_example().items():
        if _SECRET_KEY.search(key) and value:
            if value.startswith("whsec_"):
                value = base64.b64decode(value.removeprefix("whsec_")).decode("utf-8", "replace")
            assert "change-me" in value, f"docker/.env.example: {key} looks like a real secret"


def test_docker_env_is_gitignored() -> None:
    """docker/.env (the real secrets) must never be committed."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        [git, "check-ignore", "-q", "--no-index", "docker/.env"], cwd=REPO, capture_output=True
    )
    assert result.returncode == 0, "add docker/.env (or .env) to .gitignore"


def test_national_intake_database_step(tmp_path: Path) -> None:
    """national-intake-init's `database` step on a real server (WAREHOUSE_URL, a superuser's):
    a login role and a database of its own, owned by it, closed to PUBLIC, with the password of
    the pgpass file; run again with another password (rotation) it only changes the password.
    The stand-in can create its schema there as that role."""
    admin_url = os.environ.get("WAREHOUSE_URL")
    if not admin_url:
        pytest.skip("WAREHOUSE_URL (a PostgreSQL superuser's URL) is not set")
    import psycopg

    name = f"sti_test_intake_{uuid.uuid4().hex[:10]}"
    pgpass = tmp_path / "pgpass"

    def run(password: str) -> str:
        pgpass.write_text(pgpass_line(name, password), encoding="utf-8")
        pgpass.chmod(0o600)
        result = subprocess.run(
            [
                *[sys.executable, "-m", CREDENTIALS_MODULE, "database"],
                *["--pgpass-file", str(pgpass), "--database", name],
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("select rolpassword from pg_authid where rolname = %s", (name,))
            return row.fetchone()[0]

    try:
        first = run("first-password")
        second = run("second-password")
        assert first and second and first != second, "the role's password was not set again"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            owner, public_connect = conn.execute(
                "select pg_get_userbyid(datdba), has_database_privilege('public', datname,"
                " 'CONNECT') from pg_database where datname = %s",
                (name,),
            ).fetchone()
            role = conn.execute(
                "select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole from pg_roles"
                " where rolname = %s",
                (name,),
            ).fetchone()
        assert owner == name and not public_connect
        assert role == (True, False, False, False)
        parts = urlsplit(admin_url)
        netloc = f"{name}:second-password@{parts.hostname}:{parts.port or 5432}"
        with psycopg.connect(parts._replace(netloc=netloc, path=f"/{name}").geturl()) as conn:
            conn.execute("create schema intake")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'drop role if exists "{name}"')


# Mutations of a copy of the stack files, each of which one check must catch.
# (check, file relative to the repo, old text, new text)
MUTATIONS = [
    (
        "services_build",
        "docker/compose.yaml",
        "dockerfile: docker/Dockerfile",
        "dockerfile: docker/Nope",
    ),
    ("services_build", "docker/compose.yaml", "context: ..", "context: ../missing-dir"),
    ("python_modules", "docker/compose.yaml", "- local.registry", "- local.registri"),
    ("python_module_options", "docker/compose.yaml", "- --bad-share", "- --bad-shares"),
    ("airflow_commands", "docker/compose.yaml", "airflow db migrate &&", "airflow db migrat &&"),
    ("airflow_commands", "docker/compose.yaml", '"dag-processor"]', '"dag-processer"]'),
    (
        "airflow_commands",
        "docker/compose.yaml",
        "api-server --port 8080",
        "api-server --portt 8080",
    ),
    (
        "airflow_commands",
        "docker/compose.yaml",
        "--job-type TriggererJob",
        "--job-typ TriggererJob",
    ),
    ("airflow_config_variables", "docker/compose.yaml", "__LOAD_EXAMPLES:", "__LOAD_EXAMPLEZ:"),
    (
        "connections_expected",
        "docker/compose.yaml",
        "AIRFLOW_CONN_NINH_BINH_REGISTRY:",
        "AIRFLOW_CONN_NINH_BINH:",
    ),
    (
        "connections_expected",
        "docker/compose.yaml",
        '{"conn_type": "http",',
        '{"conn_type": "http"',
    ),
    (
        "connections_in_catalogue",
        "docker/compose.yaml",
        "AIRFLOW_CONN_NINH_BINH_REGISTRY:",
        "AIRFLOW_CONN_NOT_IN_CATALOGUE:",
    ),
    (
        "variables_defined",
        "docker/compose.yaml",
        "POSTGRES_PASSWORD: ${WAREHOUSE_PASSWORD}",
        "POSTGRES_PASSWORD: ${WAREHOUSE_PASSWD}",
    ),
    (
        "variables_defined",
        "docker/.env.example",
        "\nWAREHOUSE_HOST_PORT=",
        "\nWAREHOUSE_HOST_PORTX=",
    ),
    (
        "dockerfile_copy_sources",
        "docker/Dockerfile",
        "COPY pyproject.toml uv.lock ./",
        "COPY pyproject.toml uv.lok ./",
    ),
    ("dockerfile_copy_sources", ".dockerignore", "\n.venv\n", "\n.venv\nuv.lock\n"),
    ("bind_mounts", "docker/compose.yaml", "./init-warehouse.sh:", "./init-warehouse-missing.sh:"),
    (
        "bind_mounts",
        "docker/compose.yaml",
        "- airflow-logs:/opt/airflow/logs",
        "- airflow-logz:/opt/airflow/logs",
    ),
    (
        "depends_on",
        "docker/compose.yaml",
        "condition: service_completed_successfully",
        "condition: service_completed",
    ),
    (
        "depends_on",
        "docker/compose.yaml",
        "  airflow-init:\n    condition:",
        "  airflow-initx:\n    condition:",
    ),
    ("depends_on", "docker/compose.yaml", '    restart: "no"\n', "    restart: always\n"),
    (
        "published_ports",
        "docker/.env.example",
        "WAREHOUSE_HOST_PORT=5433",
        "WAREHOUSE_HOST_PORT=8080",
    ),
    (
        "no_literal_secrets",
        "docker/compose.yaml",
        "POSTGRES_PASSWORD: ${WAREHOUSE_PASSWORD}",
        "POSTGRES_PASSWORD: hunter2",
    ),
    (
        "no_literal_secrets",
        "docker/compose.yaml",
        "postgresql://sti:${WAREHOUSE_PASSWORD}@",
        "postgresql://sti:hunter2@",
    ),
    (
        "no_literal_secrets",
        "docker/compose.yaml",
        '"password": "${NINH_BINH_REGISTRY_CLIENT_SECRET}"',
        '"password": "hunter2"',
    ),
    ("dockerignore", ".dockerignore", "**/.env\n", ""),
    ("dockerfile_contract", "docker/Dockerfile", "\nUSER 50000\n", "\n"),
    ("dockerfile_contract", "docker/Dockerfile", "FROM python:3.11-slim", "FROM python:3.12-slim"),
    (
        "dockerfile_contract",
        "docker/Dockerfile",
        "&& dbt parse --project-dir",
        "&& dbt compile --project-dir",
    ),
    (
        "compose_contract",
        "docker/compose.yaml",
        "AIRFLOW__CORE__EXECUTOR: LocalExecutor",
        "AIRFLOW__CORE__EXECUTOR: CeleryExecutor",
    ),
    ("compose_contract", "docker/compose.yaml", "http://registry:8080", "http://registri:8080"),
    (
        "celery_variant",
        "docker/compose.celery.yaml",
        "AIRFLOW__CORE__EXECUTOR: CeleryExecutor",
        "AIRFLOW__CORE__EXECUTOR: LocalExecutor",
    ),
    (
        "celery_variant",
        "docker/compose.celery.yaml",
        "  airflow-worker:\n    environment: *celery-env\n",
        "",
    ),
    (
        "celery_variant",
        "docker/compose.celery.yaml",
        "redis://redis:6379/0",
        "redis://cache:6379/0",
    ),
    (
        "celery_variant",
        "docker/compose.celery.yaml",
        "@warehouse:5432/airflow",
        "@warehouse/celery",
    ),
    (
        "celery_variant",
        "docker/compose.celery.yaml",
        "    depends_on:\n      redis:\n        condition: service_healthy\n",
        "",
    ),
    ("celery_variant", "docker/compose.yaml", '["CMD", "redis-cli", "ping"]', '["CMD", "true"]'),
    ("celery_variant", "docker/compose.yaml", "      replicas: 2\n", "      replicas: 1\n"),
    (
        "celery_variant",
        "docker/compose.yaml",
        '    image: redis:7\n    profiles: ["celery"]\n',
        "    image: redis:7\n",
    ),
    # The change-event chain: registry -> event-intake -> ops.event_inbox -> event-dispatcher.
    (
        "event_intake",
        "docker/compose.yaml",
        '"--host", "0.0.0.0", "--port", "8090"',
        '"--host", "127.0.0.1", "--port", "8090"',
    ),
    ("event_intake", "docker/compose.yaml", "http://event-intake:8090", "http://event-intake:8091"),
    (
        "event_intake",
        "docker/compose.yaml",
        "ninh_binh=ninh-binh-registry",
        "ninh_binh=thanh-hoa-registry",
    ),
    (
        "event_intake",
        "docker/compose.yaml",
        "STANDIN_REGISTRY_EVENTS_SECRET_NINH_BINH: ${NINH_BINH_REGISTRY_EVENTS_SECRET}",
        "STANDIN_REGISTRY_EVENTS_SECRET_NINH_BINH: ${NINH_BINH_REGISTRY_CLIENT_SECRET}",
    ),
    (
        "event_intake",
        "docker/.env.example",
        "NINH_BINH_REGISTRY_EVENTS_SECRET=whsec_",
        "NINH_BINH_REGISTRY_EVENTS_SECRET=change-me-",
    ),
    ("event_intake", "docker/compose.yaml", "localhost:8090/healthz", "localhost:8090/health"),
    (
        "event_intake",
        "docker/compose.yaml",
        '"127.0.0.1:${EVENT_INTAKE_HOST_PORT}:8090"',
        '"${EVENT_INTAKE_HOST_PORT}:8090"',
    ),
    (
        "event_dispatcher",
        "docker/compose.yaml",
        '"host": "http://airflow-api-server:8080"',
        '"host": "http://airflow-scheduler:8080"',
    ),
    ("event_dispatcher", "docker/compose.yaml", '"login": "sti_dispatcher"', '"login": "admin"'),
    (
        "event_dispatcher",
        "docker/compose.yaml",
        '"password": "${AIRFLOW_DISPATCHER_PASSWORD}"',
        '"password": "${AIRFLOW_ADMIN_PASSWORD}"',
    ),
    (
        "event_dispatcher",
        "docker/compose.yaml",
        "      airflow-api-server:\n        condition: service_healthy\n",
        "",
    ),
    ("event_dispatcher", "docker/compose.yaml", "sti_dispatcher:op", "sti_dispatcher:viewer"),
    ("airflow_users", "docker/compose.yaml", "admin:admin,sti_dispatcher:op", "admin:admin"),
    (
        "airflow_users",
        "docker/compose.yaml",
        '"sti_dispatcher": "AIRFLOW_DISPATCHER_PASSWORD"',
        '"sti_dispatcher": "AIRFLOW_ADMIN_PASSWORD"',
    ),
    ("airflow_users", "docker/compose.yaml", "os.fchmod(fd, 0o600)", "os.fchmod(fd, 0o644)"),
    (
        "airflow_users",
        "docker/compose.yaml",
        "' &&\n        exec airflow",
        "'\n        exec airflow",
    ),
    (
        "airflow_users",
        "docker/compose.yaml",
        "        if unset:\n            sys.exit(",
        "        if unset:\n            print(",
    ),
    ("airflow_init", "docker/compose.yaml", "python -m local.airflow_stack pools &&", "true &&"),
    (
        "airflow_pythonpath",
        "docker/compose.yaml",
        "PYTHONPATH: /opt/sti/local/airflow_config:/opt/sti",
        "PYTHONPATH: /opt/sti:/opt/sti/local/airflow_config",
    ),
    (
        "airflow_pythonpath",
        "docker/compose.yaml",
        "PYTHONPATH: /opt/sti/local/airflow_config:/opt/sti",
        "PYTHONPATH: /opt/sti",
    ),
    (
        "connections_in_catalogue",
        "docker/compose.yaml",
        "AIRFLOW_CONN_NINH_BINH_REGISTRY_EVENTS:",
        "AIRFLOW_CONN_NINH_BINH_EVENTS:",
    ),
    (
        "no_literal_secrets",
        "docker/compose.yaml",
        "local.national_intake --host 0.0.0.0 --port 8095",
        "local.national_intake --host 0.0.0.0 --port 8095 --admin-token hunter2",
    ),
    (
        "depends_on",
        "docker/compose.yaml",
        '    user: "0:0"\n    restart: "no"\n',
        '    user: "0:0"\n    restart: unless-stopped\n',
    ),
    # The national feed: national-intake-init -> volumes -> national-intake and Airflow.
    (
        "national_intake",
        "docker/compose.yaml",
        "local.national_intake --host 0.0.0.0",
        "local.national_intake --host 127.0.0.1",
    ),
    ("national_intake", "docker/compose.yaml", "localhost:8095/health'", "localhost:8096/health'"),
    (
        "national_intake",
        "docker/compose.yaml",
        '"127.0.0.1:${NATIONAL_INTAKE_HOST_PORT}:8095"',
        '"${NATIONAL_INTAKE_HOST_PORT}:8095"',
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "@warehouse:5432/national_intake",
        "@warehouse:5432/sti",
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "postgresql://national_intake@warehouse",
        "postgresql://sti@warehouse",
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "      PGPASSFILE: /var/lib/national-intake/pgpass\n",
        "      PGPASSWORD: ${WAREHOUSE_PASSWORD}\n",
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "      national-intake-init:\n        condition: service_completed_successfully\n"
        "    healthcheck:",
        "    healthcheck:",
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "- national-intake-server:/var/lib/national-intake:ro",
        "- national-intake-server:/var/lib/national-intake",
    ),
    (
        "national_intake",
        "docker/compose.yaml",
        "    init: true\n    restart: unless-stopped\n    command:\n      - sh\n",
        "    init: true\n    command:\n      - sh\n",
    ),
    ("national_intake_credentials", "docker/compose.yaml", '    user: "0:0"\n', ""),
    (
        "national_intake_credentials",
        "docker/compose.yaml",
        '--owner 50000:0 "$$@" &&',
        "--owner 50000:0 &&",
    ),
    ("national_intake_credentials", "docker/compose.yaml", "--owner 50000:0", "--owner 0:0"),
    (
        "national_intake_credentials",
        "docker/compose.yaml",
        "--pgpass-file /var/lib/national-intake/pgpass",
        "--pgpass-file /var/lib/national-intake/password",
    ),
    (
        "national_intake_credentials",
        "docker/compose.yaml",
        "--admin-url-env WAREHOUSE_URL",
        "--admin-url-env DATABASE_URL",
    ),
    (
        "national_intake_credentials",
        "docker/compose.yaml",
        "- national-intake-server:/var/lib/national-intake:ro",
        "- national-feed-connections:/var/lib/national-intake:ro",
    ),
    (
        "national_intake_credentials",
        "docker/compose.yaml",
        "export NATIONAL_INTAKE_CLIENTS NATIONAL_INTAKE_ADMIN_TOKEN &&",
        "export NATIONAL_INTAKE_CLIENTS &&",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "AIRFLOW__SECRETS__BACKEND: airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND: airflow.secrets.environment_variables"
        ".EnvironmentVariablesBackend",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        '/opt/airflow/national-feed/connections.json"}',
        '/opt/airflow/national-feed/national_intake.json"}',
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "    - national-feed-connections:/opt/airflow/national-feed:ro\n",
        "",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "    - national-feed-connections:/opt/airflow/national-feed:ro\n",
        "    - national-feed-connections:/opt/airflow/national-feed:ro\n"
        "    - national-intake-server:/var/lib/national-intake:ro\n",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "--intake-url http://national-intake:8095",
        "--intake-url http://national-intake:8096",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "      national-intake:\n        condition: service_healthy\n    healthcheck:",
        "    healthcheck:",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "  national-intake-init:\n    condition: service_completed_successfully\n",
        "",
    ),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "    AIRFLOW__SECRETS__BACKEND_KWARGS:",
        "    AIRFLOW__WORKERS__SECRETS_BACKEND: airflow.secrets.environment_variables"
        ".EnvironmentVariablesBackend\n    AIRFLOW__SECRETS__BACKEND_KWARGS:",
    ),
]

# The same, on the celery variant (compose.yaml + compose.celery.yaml, profile celery).
CELERY_MUTATIONS = [
    ("airflow_commands", "docker/compose.yaml", '"celery", "worker"]', '"celery", "wroker"]'),
    (
        "compose_contract",
        "docker/compose.celery.yaml",
        "  airflow-triggerer:\n    environment: *celery-env\n",
        "",
    ),
    (
        "airflow_config_variables",
        "docker/compose.celery.yaml",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY:",
        "AIRFLOW__CELERY__WORKERS_CONCURRENCY:",
    ),
    ("depends_on", "docker/compose.yaml", "      start_period: 5s\n", "      disable: true\n"),
    (
        "national_feed_connections",
        "docker/compose.yaml",
        "      registry:\n        condition: service_healthy\n      national-intake:\n"
        "        condition: service_healthy\n    healthcheck:\n      test:\n        - CMD-SHELL",
        "      registry:\n        condition: service_healthy\n    healthcheck:\n      test:\n"
        "        - CMD-SHELL",
    ),
]
ALL_MUTATIONS = [("local", *m) for m in MUTATIONS] + [("celery", *m) for m in CELERY_MUTATIONS]


@pytest.fixture
def stack_copy(tmp_path: Path) -> Stack:
    """A scratch repository: copies of the stack files, symlinks to everything else."""
    root = tmp_path / "repo"
    root.mkdir()
    # Copied, never symlinked: tests edit or delete these (dags/ for its catalogue).
    copied = {"docker", ".dockerignore", "dags"}
    for entry in REPO.iterdir():
        if entry.name in {".git", ".venv"} or entry.name in copied:
            continue
        (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name in copied:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, symlinks=True)
        elif source.exists():
            shutil.copy2(source, root / name)
    return Stack(root)


@pytest.mark.parametrize(
    ("variant", "check", "file", "old", "new"),
    ALL_MUTATIONS,
    ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(ALL_MUTATIONS)],
)
def test_check_catches_breakage(
    variant: str,
    check: str,
    file: str,
    old: str,
    new: str,
    stack_copy: Stack,
    request: pytest.FixtureRequest,
) -> None:
    stack = dataclasses.replace(stack_copy, variant=variant)
    assert not run_check(check, stack, request), "the unbroken copy must pass"
    target = stack.repo / file
    text = target.read_text(encoding="utf-8")
    assert old in text, f"mutation no longer applies: {old!r} is not in {file}"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert run_check(check, stack, request), f"{check} did not catch {old!r} -> {new!r}"


def test_every_check_has_a_mutation() -> None:
    assert set(ALL_CHECKS) == {m[1] for m in ALL_MUTATIONS}


def test_compose_files_merge_as_compose_merges_them() -> None:
    base = {
        "x-a": {"k": 1},
        "services": {
            "s": {
                "image": "i",
                "command": ["a", "b"],
                "environment": {"A": "1", "B": "2"},
                "depends_on": ["db"],
                "ports": ["1:1"],
                "healthcheck": {"test": ["CMD", "x"], "interval": "5s"},
            }
        },
        "volumes": {"v": None},
    }
    override = {
        "services": {
            "s": {
                "command": ["c"],
                "environment": ["B=3", "C=4"],
                "depends_on": {"cache": {"condition": "service_healthy"}},
                "ports": ["2:2"],
                "healthcheck": {"test": ["CMD", "y"]},
            },
            "t": {"image": "j"},
        },
        "volumes": {"w": None},
    }
    merged = merge_compose(base, override)
    assert merged["services"]["s"] == {
        "image": "i",
        "command": ["c"],
        "environment": {"A": "1", "B": "3", "C": "4"},
        "depends_on": {
            "db": {"condition": "service_started"},
            "cache": {"condition": "service_healthy"},
        },
        "ports": ["1:1", "2:2"],
        "healthcheck": {"test": ["CMD", "y"], "interval": "5s"},
    }
    assert merged["services"]["t"] == {"image": "j"}
    assert merged["volumes"] == {"v": None, "w": None} and merged["x-a"] == {"k": 1}
    assert base["services"]["s"]["environment"] == {"A": "1", "B": "2"}  # base untouched


def test_shell_command_parsing() -> None:
    assert shell_commands(
        'airflow db migrate && exec airflow jobs check --hostname "$HOSTNAME"'
    ) == [
        ["airflow", "db", "migrate"],
        ["airflow", "jobs", "check", "--hostname", "$HOSTNAME"],
    ]
    assert expand_shell(["bash", "-c", "X=1 python -m local.registry --port 1; true"]) == [
        ["python", "-m", "local.registry", "--port", "1"],
        ["true"],
    ]


def test_interpolation() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("${A}-$A-${B:-d}-${E:-d}-${E-d}-$${A}", env) == "1-1-d-d--${A}"
    assert referenced_variables("${A} $B $${C} ${D:-x}") == {"A", "B", "D"}


def test_dockerignore_matching() -> None:
    rules = [
        (False, _ignore_pattern_regex("**/.env")),
        (False, _ignore_pattern_regex("docs")),
        (True, _ignore_pattern_regex("docs/keep.md")),
        (False, _ignore_pattern_regex("*.pyc")),
    ]
    assert is_dockerignored(rules, ".env")
    assert is_dockerignored(rules, "docker/.env")
    assert is_dockerignored(rules, "docs/a.md")
    assert not is_dockerignored(rules, "docs/keep.md")
    assert is_dockerignored(rules, "x.pyc")
    assert not is_dockerignored(rules, "pkg/x.pyc")  # `*` does not cross directories
    assert not is_dockerignored(rules, "uv.lock")


def test_airflow_cli_problem(airflow_facts: AirflowFacts) -> None:
    cli = airflow_facts.cli
    assert airflow_cli_problem(cli, ["db", "migrate"]) is None
    assert airflow_cli_problem(cli, ["api-server", "--port", "8080"]) is None
    assert airflow_cli_problem(cli, ["db"])  # group without subcommand
    assert airflow_cli_problem(cli, ["webserver"])  # gone in Airflow 3
    assert airflow_cli_problem(cli, ["scheduler", "--bogus"])
