"""Static checks of the Docker stack: docker/compose.yaml, docker/Dockerfile, docker/.env.example
and .dockerignore. No Docker engine is needed (none is available in CI).

Each check is a function returning a list of problems. The real files must have none, and
``test_check_catches_breakage`` breaks a copy of the files in a temporary directory, one mutation
at a time, to prove that every check can fail.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# The connection ids the stack must provide even before (or without) the catalogue.
WAREHOUSE_CONN_ID = "sti_warehouse"
EXPECTED_CONN_IDS = {WAREHOUSE_CONN_ID, "ninh_binh_registry"}

EXPECTED_SERVICES = {
    "warehouse",
    "registry",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
# Airflow service -> the airflow subcommand it must run.
AIRFLOW_SERVICE_COMMANDS = {
    "airflow-init": ["db", "migrate"],
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

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
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_SHELLS = {"sh", "bash", "dash", "ash"}
_SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")"}


# --------------------------------------------------------------------------------------------
# Loading


@dataclasses.dataclass(frozen=True)
class Stack:
    repo: Path

    @property
    def docker(self) -> Path:
        return self.repo / "docker"

    @property
    def compose_path(self) -> Path:
        return self.docker / "compose.yaml"

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
        # safe_load resolves anchors, aliases and `<<` merge keys.
        data = yaml.safe_load(self.compose_path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), f"{self.compose_path} is not a YAML mapping"
        return data

    def services(self) -> dict[str, dict[str, Any]]:
        services = self.compose().get("services")
        assert isinstance(services, dict) and services, "compose.yaml has no services"
        return services

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
    assert stack.catalogue_path.is_file(), (
        f"the source catalogue {stack.catalogue_path.relative_to(stack.repo)} is missing: "
        "compose's AIRFLOW_CONN_* ids cannot be checked against the connection ids the DAGs use"
    )
    ids: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "connection_id" and isinstance(value, str):
                    ids.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(stack.catalogue_path.read_text(encoding="utf-8")))
    assert ids, f"{stack.catalogue_path} has no connection_id keys"
    return ids


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
    executor = environment(Stack(REPO).compose().get("x-airflow-common") or {}).get(
        "AIRFLOW__CORE__EXECUTOR", "LocalExecutor"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
        "AIRFLOW__CORE__EXECUTOR": executor,  # executors can add CLI commands
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


@functools.cache
def _module_help_options(repo: Path, module: str) -> frozenset[str]:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"`python -m {module} --help` failed:\n{result.stderr}"
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", result.stdout))


def check_python_module_options(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """The --options passed to repo modules are ones their argument parser knows."""
    problems = []
    for name, where, argv in all_commands(stack):
        module = python_module(argv)
        if module is None or repo_module_path(stack.repo, module[0]) is None:
            continue  # missing modules are check_python_modules' business
        known = _module_help_options(stack.repo, module[0])
        for token in module[1]:
            option = token.partition("=")[0]
            is_option = token.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", token)
            if is_option and option not in known:
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
    known = set(EXPECTED_CONN_IDS)
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
    """Every AIRFLOW_CONN_<ID> is a connection_id of dags/sources.yml (or the warehouse's)."""
    referenced = catalogue_connection_ids(stack) | {WAREHOUSE_CONN_ID}
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


def check_no_literal_secrets(stack: Stack, facts: AirflowFacts | None = None) -> list[str]:
    """Secrets appear in compose.yaml only as ${VAR} references (their values live in .env)."""
    problems = []
    compose = stack.compose()
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            is_secret = _SECRET_KEY.search(key) and not _NOT_A_SECRET_KEY.search(key)
            if is_secret and not _ONLY_REFERENCE.match(value.strip()):
                problems.append(f"{name}: {key} must be a ${{VAR}} reference, not a literal")
        for value in walk_strings(service):
            for match in _URI_PASSWORD.finditer(value):
                if not _ONLY_REFERENCE.match(match["password"]):
                    problems.append(f"{name}: literal password in URI {value!r}")
            for match in _JSON_SECRET.finditer(value):
                if not _ONLY_REFERENCE.match(match["value"]):
                    problems.append(f"{name}: literal {match['key']} in {value!r}")
        for key in ("command", "entrypoint"):
            for token in as_argv(service.get(key)):
                if _SECRET_FLAG.match(token):
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
    """The services, shared Airflow settings and hostnames the stack is specified to have."""
    problems = []
    compose = stack.compose()
    services = compose["services"]
    for missing in sorted(EXPECTED_SERVICES - set(services)):
        problems.append(f"service {missing} is missing")
    common = compose.get("x-airflow-common")
    if not isinstance(common, dict):
        return [*problems, "no x-airflow-common anchor block"]
    common_env = environment(common)
    env_example = stack.env_example()
    for name, expected in AIRFLOW_SERVICE_COMMANDS.items():
        service = services.get(name)
        if service is None:
            continue
        if environment(service) != common_env:
            problems.append(f"{name}: environment differs from x-airflow-common")
        if service.get("image") != common.get("image"):
            problems.append(f"{name}: image differs from x-airflow-common")
        commands = [
            airflow_argv(argv)
            for where, argv in service_commands(service, env_example)
            if where == "command"
        ]
        if not commands or not commands[0] or commands[0][: len(expected)] != expected:
            problems.append(f"{name}: must run `airflow {' '.join(expected)}`, runs {commands}")
    required = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/sti/dags",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-api-server:8080/execution/",
    }
    for key, value in required.items():
        if common_env.get(key, "").lower() != value.lower():
            problems.append(
                f"x-airflow-common: {key} must be {value!r}, is {common_env.get(key)!r}"
            )
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        if not common_env.get(key):
            problems.append(f"x-airflow-common: {key} is not set")
    driver = urlsplit(common_env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")).scheme
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
}


# --------------------------------------------------------------------------------------------
# Tests


# Checks that need the (slower) facts about the installed Airflow.
NEEDS_AIRFLOW = {"airflow_commands", "airflow_config_variables"}


def run_check(check: str, stack: Stack, request: pytest.FixtureRequest) -> list[str]:
    facts = request.getfixturevalue("airflow_facts") if check in NEEDS_AIRFLOW else None
    return ALL_CHECKS[check](stack, facts)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=list(ALL_CHECKS))
def test_stack(check: str, request: pytest.FixtureRequest) -> None:
    problems = run_check(check, Stack(REPO), request)
    assert not problems, "\n".join(problems)


def test_missing_catalogue_fails_clearly(stack_copy: Stack) -> None:
    stack_copy.catalogue_path.unlink()
    with pytest.raises(AssertionError, match=r"catalogue dags/sources\.yml is missing"):
        check_connections_in_catalogue(stack_copy)


def test_env_example_holds_no_real_secret() -> None:
    """Placeholders only: secret-looking values in .env.example say change-me (or are empty)."""
    for key, value in Stack(REPO).env_example().items():
        if _SECRET_KEY.search(key) and value:
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
    ("airflow_commands", "docker/compose.yaml", '"db", "migrate"', '"db", "migrat"'),
    ("airflow_commands", "docker/compose.yaml", '"dag-processor"]', '"dag-processer"]'),
    ("airflow_commands", "docker/compose.yaml", '"--port", "8080"', '"--portt", "8080"'),
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
]


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
    ("check", "file", "old", "new"), MUTATIONS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)]
)
def test_check_catches_breakage(
    check: str, file: str, old: str, new: str, stack_copy: Stack, request: pytest.FixtureRequest
) -> None:
    assert not run_check(check, stack_copy, request), "the unbroken copy must pass"
    target = stack_copy.repo / file
    text = target.read_text(encoding="utf-8")
    assert old in text, f"mutation no longer applies: {old!r} is not in {file}"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert run_check(check, stack_copy, request), f"{check} did not catch {old!r} -> {new!r}"


def test_every_check_has_a_mutation() -> None:
    assert set(ALL_CHECKS) == {m[0] for m in MUTATIONS}


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
