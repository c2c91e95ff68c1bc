"""Which stack `make up` runs, and running it: Docker Compose or the embedded one.

    python3 -m lakehouse.bootstrap.modes up [--no-demo] [--dry-run]   # make up
    python3 -m lakehouse.bootstrap.modes down | status | reset        # make down / status / reset
    python3 -m lakehouse.bootstrap.modes smoke                        # make docker-smoke
    python3 -m lakehouse.bootstrap.modes env                          # make docker-env
    python3 -m lakehouse.bootstrap.modes compose ARGS...              # docker compose, as make up runs it

`up` picks Docker when a Docker engine answers (`docker info`) and Compose v2 is there (`docker
compose version`, 2.24 or later), else the embedded stack; LAKEHOUSE_MODE=docker|embedded decides
instead. The choice is recorded in the state folder (`mode`), and `down`, `status` and `reset`
act on the recorded mode. The embedded path runs exactly what `make up` always ran: `make
setup`, then `lakehouse up`.

In Docker mode the configuration is the embedded mode's: config/lakehouse.yaml and .env (plus the
LAKEHOUSE_* variables of the environment, recorded in `compose.env` beside the mode), with only the
host names overridden per container. Compose cannot read YAML, so the values docker-compose.yml
interpolates (ports, sizes) are passed to it from config/lakehouse.yaml when neither the
environment nor .env sets them, and the image versions are derived from the lock files.

Standard library only, and Python 3.9 or later: it runs before any virtualenv exists, and Docker
mode needs neither a virtualenv nor Python 3.11 on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.bootstrap import dotenv, venvs
from lakehouse.bootstrap.common import PROJECT_ROOT, assignments

MODES = ("docker", "embedded")
COMPOSE_FILE = "docker-compose.yml"
PROJECT_NAME = "lakehouse"
PROFILES = ("spark", "demo", "tools")  # every profile of docker-compose.yml (down and reset cover them all)
MIN_COMPOSE = (2, 24)  # docker-compose.yml uses env_file's `required` (2.24) and depends_on's (2.20)
WAIT_TIMEOUT_S = 1200  # `up --wait`: the first start includes Airflow's migration and the Flink job's submission
MODE_FILE = "mode"
COMPOSE_ENV_FILE = "compose.env"
# LAKEHOUSE_<SECTION>__<KEY>: a setting (the environment of `make up` passes them to the containers)
SETTING = re.compile(r"^LAKEHOUSE_[A-Z0-9_]+__[A-Z0-9_]+$")


# ---- the configuration, as far as the launcher needs it (no pydantic here) ----


def env_file(root: Path, env: Mapping[str, str]) -> Path:
    """The .env the settings read (LAKEHOUSE_ENV_FILE moves it, as in lakehouse.settings)."""
    return Path(env.get("LAKEHOUSE_ENV_FILE") or root / ".env")


def read_dotenv(path: Path) -> dict[str, str]:
    return assignments(path.read_text()) if path.is_file() else {}


def yaml_settings(path: Path) -> dict[str, str]:
    """The scalar settings of config/lakehouse.yaml as LAKEHOUSE_<SECTION>__<KEY>: value. The file is
    two levels deep (sections of `key: value`); deeper mappings (extra_conf) are left out."""
    values: dict[str, str] = {}
    section, indent = None, None
    for raw in path.read_text().splitlines():
        line = re.sub(r"\s+#.*$", "", raw) if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            match = re.fullmatch(r"([A-Za-z_]\w*):", line.strip())
            section, indent = (match.group(1) if match else None), None
            continue
        if section is None:
            continue
        indent = depth if indent is None else indent
        match = re.fullmatch(r"([A-Za-z_]\w*):\s*(\S.*)?", line.strip())
        if depth != indent or not match or match.group(2) is None:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if value.startswith(("{", "[")) and not value.startswith("[*"):
            continue  # a flow mapping or list, not a scalar
        values[f"LAKEHOUSE_{section.upper()}__{match.group(1).upper()}"] = value
    return values


def config_file(root: Path, env: Mapping[str, str]) -> Path:
    return Path(env.get("LAKEHOUSE_CONFIG") or root / "config/lakehouse.yaml")


def setting(name: str, root: Path, env: Mapping[str, str]) -> str | None:
    """One setting as lakehouse.settings resolves it: the environment, then .env, then the YAML."""
    for source in (env, read_dotenv(env_file(root, env)), yaml_settings(config_file(root, env))):
        if name in source:
            return source[name]
    return None


def state_dir(root: Path, env: Mapping[str, str]) -> Path:
    path = Path(setting("LAKEHOUSE_EMBEDDED__STATE_DIR", root, env) or ".state")
    return path if path.is_absolute() else (root / path).resolve()


def artifact_version(root: Path, name: str) -> str:
    """An [[artifact]]'s version in locks/artifacts.toml (tomllib where there is one: Docker mode's
    launcher also runs on an older system python3, such as macOS's)."""
    text = (root / "locks/artifacts.toml").read_text()
    try:
        import tomllib
    except ImportError:
        for block in text.split("[[")[1:]:
            fields = dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', block, re.MULTILINE))
            if block.startswith("artifact]") and fields.get("name") == name:
                return fields["version"]
        raise KeyError(name) from None
    return next(a["version"] for a in tomllib.loads(text)["artifact"] if a["name"] == name)


def versions(root: Path) -> dict[str, str]:
    """The versions Docker mode's images are built from, read from what the embedded mode installs
    (never a list of their own): docker-compose.yml uses them as image tags and build arguments."""
    main, flink = (assignments((root / lock).read_text(), "==") for lock in ("locks/main.txt", "locks/flink.txt"))
    pom = ET.parse(root / "jvm/pom.xml").getroot()
    properties = {element.tag.rsplit("}", 1)[-1]: element.text for element in pom.find("{*}properties")}
    return {
        "AIRFLOW_VERSION": main["apache-airflow"],
        "SPARK_VERSION": main["pyspark"],
        "FLINK_VERSION": flink["apache-flink"],
        "KAFKA_VERSION": properties["kafka.version"],
        "SEAWEEDFS_VERSION": artifact_version(root, "weed"),
        "PYTHON_VERSION": ".".join(map(str, venvs.PYTHON_VERSION)),
    }


def wants_spark_cluster(root: Path, env: Mapping[str, str]) -> bool:
    """The `spark` profile (a standalone master and worker) when spark.standalone is on or
    spark.master points at the profile's master."""
    standalone = (setting("LAKEHOUSE_SPARK__STANDALONE", root, env) or "").lower() in ("true", "1", "yes", "on")
    return standalone or (setting("LAKEHOUSE_SPARK__MASTER", root, env) or "").startswith("spark://spark-master")


def interpolated_settings(root: Path) -> dict[str, str | None]:
    """The settings docker-compose.yml interpolates, with the default it gives each (None: none)."""
    text = (root / COMPOSE_FILE).read_text()
    found: dict[str, str | None] = {}
    for name, default in re.findall(r"\$\{(LAKEHOUSE_[A-Z0-9_]+)(?::-([^}]*))?", text):
        found.setdefault(name, default if default else None)
    return found


def compose_environment(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """What `docker compose` runs with: the environment; the settings the compose file interpolates
    that neither it nor .env sets, from config/lakehouse.yaml (so interpolation sees what
    lakehouse.settings sees); the versions from the locks; the host user, for the mounted folders;
    the state folder (compose.env lives there)."""
    result = dict(env)
    dotenv_values = read_dotenv(env_file(root, env))
    yaml_values = yaml_settings(config_file(root, env))
    for key in interpolated_settings(root):
        if key not in env and key not in dotenv_values and key in yaml_values:
            result[key] = yaml_values[key]
    result.update(versions(root))
    uid = os.getuid() if hasattr(os, "getuid") else 50000
    result.setdefault("AIRFLOW_UID", str(uid if uid != 0 else 50000))
    result["LAKEHOUSE_EMBEDDED__STATE_DIR"] = str(state_dir(root, env))
    return result


def docker_env(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """What `docker compose` by hand needs on top of the shell and .env (make docker-env): the versions,
    the host user, and the YAML's values where they differ from the compose file's defaults."""
    full, defaults = compose_environment(root, env), interpolated_settings(root)
    wanted = {**versions(root), "AIRFLOW_UID": full["AIRFLOW_UID"]}
    for key, default in defaults.items():
        if key in full and key not in env and full[key] != default:
            wanted[key] = full[key]
    if state_dir(root, env) == (root / ".state").resolve():
        wanted.pop("LAKEHOUSE_EMBEDDED__STATE_DIR", None)
    return {key: value for key, value in wanted.items() if env.get(key) != value}


# ---- the choice ----


def docker_works(env: Mapping[str, str]) -> tuple[bool, str]:
    """(True, what answered) when `docker info` succeeds and `docker compose version` is v2.24 or later."""
    docker = shutil.which("docker", path=env.get("PATH"))
    if docker is None:
        return False, "no `docker` command on PATH"
    answers = []
    for args in (["info", "--format", "{{.ServerVersion}}"], ["compose", "version"]):
        what = "docker " + " ".join(args[:2] if args[0] == "compose" else args[:1])
        try:
            result = subprocess.run([docker, *args], env=dict(env), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"`{what}` did not answer ({type(exc).__name__})"
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            return False, f"`{what}` failed: {output.splitlines()[-1] if output else f'exit {result.returncode}'}"
        answers.append(output.splitlines()[-1] if output else "")
    match = re.search(r"v?(\d+)\.(\d+)", answers[1])
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_COMPOSE:
        wanted = ".".join(map(str, MIN_COMPOSE))
        return False, f"`docker compose version` is not Compose v{wanted} or later: {answers[1]!r}"
    return True, f"Docker engine {answers[0]}, {answers[1]}"


@dataclass
class Choice:
    mode: str
    reason: str


def choose_mode(
    action: str,
    recorded: str | None,
    env: Mapping[str, str],
    probe: Callable[[Mapping[str, str]], tuple[bool, str]] = docker_works,
) -> Choice:
    """LAKEHOUSE_MODE if set; otherwise, for `up` (and `smoke`, always Docker), what this machine
    offers; for `down`, `status` and `reset`, the mode `make up` recorded (embedded if none)."""
    override = (env.get("LAKEHOUSE_MODE") or "").strip().lower()
    if override:
        if override not in MODES:
            raise SystemExit(f"LAKEHOUSE_MODE={override!r}: use one of {', '.join(MODES)}")
        if override == "docker" and action in ("up", "smoke"):
            works, why = probe(env)
            if not works:
                raise SystemExit(f"LAKEHOUSE_MODE=docker, but Docker mode cannot start here: {why}")
        return Choice(override, "LAKEHOUSE_MODE")
    if action == "smoke":
        works, why = probe(env)
        if not works:
            raise SystemExit(f"make docker-smoke needs a Docker engine with Compose v2: {why}")
        return Choice("docker", why)
    if action == "up":
        works, why = probe(env)
        if works:
            return Choice("docker", f"{why}; LAKEHOUSE_MODE=embedded runs the embedded stack instead")
        return Choice("embedded", f"{why}; LAKEHOUSE_MODE=docker once Docker works")
    if recorded in MODES:
        return Choice(recorded, "recorded by the last `make up`")
    return Choice("embedded", "no `make up` recorded")


# ---- the plans ----


@dataclass
class Step:
    command: list[str]
    what: str
    env: dict[str, str] | None = None  # None: the launcher's own environment
    check: bool = True  # stop at a failure
    parse: Callable[[str], int] | None = None  # read stdout, return the exit code (status)


@dataclass
class Plan:
    mode: str
    steps: list[Step] = field(default_factory=list)
    prepare: Callable[[], None] | None = None  # files written before the steps (not in a dry run)


def compose_base(root: Path, env: Mapping[str, str], profiles: tuple[str, ...] = ()) -> list[str]:
    docker = shutil.which("docker", path=env.get("PATH")) or "docker"
    base = [docker, "compose", "--project-name", PROJECT_NAME, "--project-directory", str(root)]
    base += ["--file", str(root / COMPOSE_FILE), "--env-file", str(env_file(root, env))]
    for profile in profiles:
        base += ["--profile", profile]
    return base


def embedded_plan(action: str, root: Path, extra: list[str]) -> Plan:
    """What the Makefile ran before Docker mode existed, step for step."""
    python = str(root / ".venv/bin/python")
    lakehouse = [python, "-m", "lakehouse"]
    plan = Plan("embedded")
    if action == "up":
        plan.steps = [
            Step([sys.executable, "-m", "lakehouse.bootstrap"], "make setup"),
            Step([*lakehouse, "up", *extra], "lakehouse up"),
        ]
    elif not Path(python).exists():  # never set up: nothing runs, nothing to stop or delete
        if action == "status":
            plan.steps = [Step([sys.executable, "-c", "raise SystemExit('not set up: run make up')"], "status")]
        else:
            plan.steps = [Step(["echo", "nothing to stop (not set up)"], "not set up")]
    elif action in ("down", "status", "reset"):
        plan.steps = [Step([*lakehouse, "status" if action == "status" else "down"], f"lakehouse {action}")]
        if action == "reset":
            code = (
                "from lakehouse.settings import load_settings; from lakehouse.services.embedded import "
                "postgres_data_dir; import shutil; s = load_settings(); shutil.rmtree(postgres_data_dir(s), "
                "ignore_errors=True); shutil.rmtree(s.state_dir, ignore_errors=True); print('deleted', s.state_dir)"
            )
            plan.steps.append(Step([python, "-c", code], "delete the state folder"))
    return plan


def docker_plan(action: str, root: Path, env: Mapping[str, str], no_demo: bool, extra: list[str]) -> Plan:
    compose_env = compose_environment(root, env)
    spark = ("spark",) if wants_spark_cluster(root, env) else ()
    base = compose_base(root, env, spark)
    every = compose_base(root, env, PROFILES)
    state = state_dir(root, env)
    plan = Plan("docker")

    def step(command: list[str], what: str, **kwargs) -> Step:
        return Step(command, what, env=compose_env, **kwargs)

    status = step([*every, "ps", "--all", "--format", "json"], "status", parse=print_status)
    if action in ("up", "smoke"):
        demo, tools = compose_base(root, env, (*spark, "demo")), compose_base(root, env, (*spark, "tools"))
        start = [*base, "up", "--detach", "--build", "--wait", "--wait-timeout", str(WAIT_TIMEOUT_S)]
        plan.steps = [step(start, "start the stack")]
        if no_demo and action == "up":
            plan.steps.append(
                step([*tools, "run", "--rm", "--no-deps", "cli", "endpoints", "--published"], "endpoints")
            )
        else:
            plan.steps += [
                step([*demo, "run", "--rm", "demo"], "the demo: load, promotion, gold summary, where to look"),
                step([*demo, "up", "--detach", "--no-deps", "generator"], "live events"),
            ]
        if action == "smoke":
            plan.steps += [
                step([*tools, "run", "--rm", "--no-deps", "cli", "demo", "check"], "check gold and bronze"),
                status,
            ]

        def prepare() -> None:
            dotenv.ensure(root, env_file(root, env))
            record_mode(state, "docker")
            settings = sorted((k, v) for k, v in env.items() if SETTING.match(k))
            (state / COMPOSE_ENV_FILE).write_text("".join(f"{k}={v}\n" for k, v in settings))

        plan.prepare = prepare
    elif action == "down":
        plan.steps = [step([*every, "down", "--remove-orphans"], "stop the stack (volumes kept)")]
    elif action == "status":
        plan.steps = [status]
    elif action == "reset":
        plan.steps = [
            step([*every, "down", "--volumes", "--remove-orphans"], "stop the stack, delete its volumes"),
            Step([sys.executable, "-c", f"import shutil; shutil.rmtree({str(state)!r}, ignore_errors=True)"], "state"),
        ]
    elif action == "compose":
        plan.steps = [step([*base, *extra], "docker compose", check=False)]
    return plan


def print_status(output: str) -> int:
    """`docker compose ps --format json` (one object per line, or one list) as the embedded status
    prints it; 1 unless every container runs healthy or is a one-shot that exited 0."""
    text = output.strip()
    if not text:
        print("no containers: start the stack with make up")
        return 1
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    ok = True
    for row in sorted(rows, key=lambda r: r.get("Service", "")):
        state, health, code = row.get("State", "?"), row.get("Health", ""), row.get("ExitCode", 0)
        good = (state == "running" and health in ("", "healthy")) or (state == "exited" and code == 0)
        ok &= good
        shown = health or ("-" if state == "running" else f"exit {code}")
        published = {f"{p['URL']}:{p['PublishedPort']}" for p in row.get("Publishers") or [] if p.get("PublishedPort")}
        print(f"{row.get('Service', '?'):<22} {state:<9} {shown:<10} {' '.join(sorted(published))}")
    return 0 if ok else 1


# ---- running ----


def recorded_mode(root: Path, env: Mapping[str, str]) -> str | None:
    path = state_dir(root, env) / MODE_FILE
    return path.read_text().strip() if path.is_file() else None


def record_mode(state: Path, mode: str) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / MODE_FILE).write_text(mode + "\n")


def run(plan: Plan, dry_run: bool) -> int:
    if dry_run:
        for step in plan.steps:
            print(f"[dry-run] {step.what}: {shlex.join(step.command)}")
        return 0
    if plan.prepare:
        plan.prepare()
    for step in plan.steps:
        try:
            if step.parse:
                result = subprocess.run(step.command, env=step.env, stdout=subprocess.PIPE, text=True)
                code = step.parse(result.stdout) if result.returncode == 0 else result.returncode
            else:
                code = subprocess.run(step.command, env=step.env).returncode
        except FileNotFoundError as exc:
            print(f"{step.what}: {exc.filename} not found")
            return 127
        except KeyboardInterrupt:
            return 130
        if code != 0 and (step.check or step.parse):
            if not step.parse:
                print(f"[{plan.mode}] {step.what} failed (exit {code}): {shlex.join(step.command)}")
            return code
    return 0


def main(argv: list[str] | None = None, root: Path = PROJECT_ROOT, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lakehouse.bootstrap.modes", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "reset", "smoke", "env", "compose"])
    parser.add_argument("--dry-run", action="store_true", help="print the choice and the commands; run nothing")
    parser.add_argument("--no-demo", action="store_true", help="up: only start the services")
    args, extra = parser.parse_known_args(argv)
    env = dict(os.environ if env is None else env)
    if args.action == "env":
        for key, value in sorted(docker_env(root, env).items()):
            print(f"export {key}={shlex.quote(value)}")
        return 0
    if args.action == "compose":
        return run(docker_plan("compose", root, env, False, extra), args.dry_run)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    recorded = recorded_mode(root, env)
    choice = choose_mode(args.action, recorded, env)
    print(f"[{choice.mode}] mode: {choice.reason}", flush=True)
    if args.action == "up" and recorded and recorded != choice.mode:
        print(
            f"[{choice.mode}] note: the last `make up` ran the {recorded} stack; its data stays where it is "
            f"(LAKEHOUSE_MODE={recorded} make down stops it)",
            flush=True,
        )
    if choice.mode == "docker":
        plan = docker_plan(args.action, root, env, args.no_demo, [])
    else:
        if args.action == "smoke":
            raise SystemExit("make docker-smoke runs Docker mode only")
        plan = embedded_plan(args.action, root, ["--no-demo"] if args.no_demo else [])
        if args.action == "up":
            plan.prepare = lambda: record_mode(state_dir(root, env), "embedded")
    return run(plan, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
