"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Structure: three services from one image, the documented ports, a volume for results
and logs, health checks; every command, module, setting and path they name exists.
When Debian's ``docker-compose`` is installed, ``docker-compose config`` must accept
the files too (without it those tests skip, or fail when ``GESCO_REQUIRE_COMPOSE=1``, as
``.ci/run`` sets after installing it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from svc_helpers import REPO, skip_unless_required

COMPOSE = REPO / "docker-compose.yml"
GPU = REPO / "docker-compose.gpu.yml"
SECURE = REPO / "docker-compose.secure.yml"
DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture()
def docker_compose() -> str:
    """Debian's ``docker-compose`` binary (skip without it; fail when GESCO_REQUIRE_COMPOSE=1)."""
    path = shutil.which("docker-compose")
    if path is None:
        skip_unless_required("GESCO_REQUIRE_COMPOSE", "docker-compose (Debian package) not installed")
    return path


#: the services running gesco's image (``postgres`` is the database's own image)
GESCO_SERVICES = {"sender", "channel", "receiver", "receiver-worker"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def gesco_services(compose: dict) -> dict:
    return {n: s for n, s in compose["services"].items() if n in GESCO_SERVICES}


def module_of(service: str) -> str:
    """The module a gesco service runs (``receiver-worker``: the receiver in its worker role)."""
    return "receiver" if service == "receiver-worker" else service


def settings_class(service: str):
    service = module_of(service)
    if service == "sender":
        from sender.settings import SenderSettings as cls
    elif service == "channel":
        from channel.settings import ChannelSettings as cls
    else:
        from receiver.settings import ReceiverSettings as cls
    return cls


def python_modules(command: list[str] | str) -> list[str]:
    """Modules run with ``python -m`` in a command (list or shell string)."""
    words = shlex.split(command) if isinstance(command, str) else command
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-m"]


def test_three_services_from_one_image(compose):
    assert set(compose["services"]) == GESCO_SERVICES | {"postgres"}
    services = gesco_services(compose)
    assert len({s["image"] for s in services.values()}) == 1
    for name, s in services.items():
        assert s["build"]["context"] == "."
        assert s["command"] == ["python", "-m", module_of(name)]
        assert importlib.util.find_spec(f"{module_of(name)}.__main__") is not None, f"python -m {name} has no __main__"
    roles = {n: s["environment"].get("GESCO_RECEIVER_ROLE") for n, s in services.items() if n.startswith("receiver")}
    assert roles == {"receiver": "receiver", "receiver-worker": "worker"}


def test_receivers_and_workers_share_one_postgres_store(compose):
    services = compose["services"]
    pg = services["postgres"]
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"] and "ports" not in pg
    assert "gesco-postgres:/var/lib/postgresql/data" in pg["volumes"] and "gesco-postgres" in compose["volumes"]
    for name in ("receiver", "receiver-worker"):
        env = services[name]["environment"]
        assert env["GESCO_RECEIVER_STORE"] == "postgresql://gesco@postgres:5432/gesco"
        assert env["GESCO_RECEIVER_DATA_DIR"] == "/data/receiver"  # the shared folder of the job files
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert pg["environment"]["POSTGRES_USER"] == "gesco" and pg["environment"]["POSTGRES_DB"] == "gesco"
    assert "ports" not in services["receiver-worker"]  # so that --scale receiver-worker=N never collides


def test_ports_volume_and_dependencies(compose):
    services = compose["services"]
    # published on loopback unless GESCO_BIND says otherwise (docs/security.md), on host
    # ports named as for `gesco up`, to the fixed ports inside the containers
    assert services["sender"]["ports"] == ["${GESCO_BIND:-127.0.0.1}:${GESCO_SENDER_PORT:-8000}:8000"]
    assert services["receiver"]["ports"] == ["${GESCO_BIND:-127.0.0.1}:${GESCO_RECEIVER_PORT:-8002}:8002"]
    assert "ports" not in services["channel"]  # internal: only the sender talks to it
    assert "gesco-data" in compose["volumes"]
    for s in gesco_services(compose).values():
        assert "gesco-data:/data" in s["volumes"]
    assert services["channel"]["depends_on"]["receiver"]["condition"] == "service_healthy"
    assert services["sender"]["depends_on"]["channel"]["condition"] == "service_healthy"


def test_environment_names_real_settings_and_paths_in_the_volume(compose):
    for name, s in gesco_services(compose).items():
        cls = settings_class(name)
        prefix = cls.model_config["env_prefix"]
        for key, value in s["environment"].items():
            assert key.startswith(prefix), key
            field = key[len(prefix):].lower()
            assert field in cls.model_fields, f"{key}: {cls.__name__} has no field {field!r}"
            if str(value).startswith("/"):
                assert str(value).startswith("/data/"), f"{key}={value} is outside the volume"
        if name != "receiver-worker":  # the workers serve nothing
            assert s["environment"][f"{prefix}HOST"] == "0.0.0.0"
    env = {n: s["environment"] for n, s in compose["services"].items()}
    assert env["sender"]["GESCO_SENDER_CHANNEL_ADDRESS"] == f"channel:{env['channel']['GESCO_CHANNEL_PORT']}"
    # every receiver replica, by DNS, spread round robin (docs/services.md#scaling-out)
    assert env["channel"]["GESCO_CHANNEL_RECEIVER_ADDRESS"] == f"dns:///receiver:{env['receiver']['GESCO_RECEIVER_GRPC_PORT']}"


def test_health_checks_probe_the_right_ports(compose):
    ports = {"sender": ["8000"], "channel": ["8001"], "receiver": ["8002", "8003"]}
    for name, s in gesco_services(compose).items():
        if name == "receiver-worker":  # no server to probe; restarted by its restart policy when it exits
            assert "healthcheck" not in s and s["restart"] == "unless-stopped"
            continue
        test = s["healthcheck"]["test"]
        command = test[1] if test[0] == "CMD-SHELL" else test[1:]
        modules = python_modules(command)
        assert modules and all(importlib.util.find_spec(m) is not None for m in modules), modules
        text = command if isinstance(command, str) else " ".join(command)
        for port in ports[name]:
            assert f"127.0.0.1:{port}" in text, (name, port)


def test_containers_are_unprivileged_and_read_only(compose):
    for name, s in gesco_services(compose).items():
        assert s["read_only"] is True and "/tmp" in s["tmpfs"], name
        uid = str(s["user"]).split(":")[0]
        assert uid.isdigit() and int(uid) != 0, name
        assert s["cap_drop"] == ["ALL"] and "no-new-privileges:true" in s["security_opt"]
        writable = {v.split(":")[1] for v in s["volumes"]} | set(s["tmpfs"])
        for key, value in s["environment"].items():  # every path a service writes is writable
            if str(value).startswith("/") and key.endswith(("DATA_DIR", "BUDGET_LOG")):
                assert any(str(value).startswith(w + "/") for w in writable), (key, value)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert "useradd --create-home --uid 1000" in DOCKERFILE.read_text()


def test_secure_override_wires_keys_and_certificates_from_secrets(compose):
    secure = yaml.safe_load(SECURE.read_text())
    declared = secure["secrets"]
    pg = secure["services"]["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert pg["environment"]["POSTGRES_PASSWORD"] == "" and pg["secrets"] == ["postgres_password"]
    for name in ("receiver", "receiver-worker"):  # the job store's password from the same secret
        env = secure["services"][name]["environment"]
        assert env["GESCO_RECEIVER_STORE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert "postgres_password" in secure["services"][name]["secrets"]
    for name, s in secure["services"].items():
        assert name in compose["services"]
        if name in ("postgres", "receiver-worker"):  # no server of gesco's: no keys, no TLS (checked above)
            continue
        cls = settings_class(name)
        prefix = cls.model_config["env_prefix"]
        mounted = set(s["secrets"])
        assert mounted <= set(declared), name
        for key, value in s["environment"].items():
            if key == "GESCO_PROBE_CA":  # read by gesco_net.probes, the health checks
                assert value == "/run/secrets/tls_ca"
                continue
            field = key[len(prefix):].lower()
            assert key.startswith(prefix) and field in cls.model_fields, key
            if str(value).startswith("/"):
                assert value.startswith("/run/secrets/") and value.rsplit("/", 1)[1] in mounted, (key, value)
        env = s["environment"]
        assert f"{prefix}TLS_CERT" in env and f"{prefix}TLS_KEY" in env
        assert any(k.endswith("API_KEYS_FILE") for k in env), name
        text = json.dumps(s["healthcheck"]["test"])
        if name != "channel":
            assert "https://127.0.0.1:" in text, name
    # every hop has a key and a CA on the client side
    assert "GESCO_SENDER_CHANNEL_API_KEY_FILE" in secure["services"]["sender"]["environment"]
    assert "GESCO_SENDER_CHANNEL_TLS_CA" in secure["services"]["sender"]["environment"]
    assert "GESCO_CHANNEL_RECEIVER_API_KEY_FILE" in secure["services"]["channel"]["environment"]
    assert "GESCO_CHANNEL_RECEIVER_TLS_CA" in secure["services"]["channel"]["environment"]
    assert "/secrets/" in (REPO / ".gitignore").read_text().split()
    assert "!secrets" not in (REPO / ".dockerignore").read_text().split()  # never in a build context


def test_gpu_override_reserves_a_gpu_for_each_worker():
    gpu = yaml.safe_load(GPU.read_text())
    assert set(gpu["services"]) == {"receiver-worker"}
    worker = gpu["services"]["receiver-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia" and devices[0]["count"] == 1
    assert worker["environment"]["GESCO_RECEIVER_DEVICE"] == "cuda"


def test_dockerfile_copies_what_exists_and_only_that_is_in_the_context():
    text = DOCKERFILE.read_text()
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    copies = re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.M)
    sources = [src for line in copies for src in line.split()]
    assert {"gesco", "gesco_net", "sender", "channel", "receiver", "proto", "pyproject.toml", "checkpoints"} <= set(sources)
    # everything is left out first, then exactly the copied sources are let back in
    assert rules[0] == "*"
    let_in = {r[1:] for r in rules if r.startswith("!")}
    assert let_in == set(sources), f".dockerignore lets in {sorted(let_in)}, the Dockerfile copies {sorted(sources)}"
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert "GESCO_CHECKPOINT_DIR=/app/checkpoints" in text  # the shipped models, outside site-packages


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, GPU], [COMPOSE, SECURE]], ids=["cpu", "gpu", "secure"])
def test_docker_compose_config_accepts_the_files(files, docker_compose):
    args = [docker_compose] + [a for f in files for a in ("-f", str(f))] + ["config", "--quiet"]
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_host_ports_follow_the_environment(docker_compose):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GESCO_")}
    env.update(GESCO_SENDER_PORT="9000", GESCO_RECEIVER_PORT="9002", GESCO_RECEIVER_URL="http://localhost:9002",
               GESCO_IMAGE="gesco-test:1")
    run = subprocess.run([docker_compose, "-f", str(COMPOSE), "config"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    services = yaml.safe_load(run.stdout)["services"]

    def published(port) -> tuple[int, int]:  # v1 prints "127.0.0.1:9000:8000/tcp", v2 a mapping
        if isinstance(port, dict):
            return int(port["published"]), int(port["target"])
        host, target = port.split("/")[0].rsplit(":", 2)[-2:]
        return int(host), int(target)

    assert [published(p) for p in services["sender"]["ports"]] == [(9000, 8000)]
    assert [published(p) for p in services["receiver"]["ports"]] == [(9002, 8002)]
    assert services["sender"]["environment"]["GESCO_SENDER_RECEIVER_URL"] == "http://localhost:9002"
    # gesco's services run one image, named by GESCO_IMAGE (other services, e.g. postgres, their own)
    assert {s["image"] for s in services.values() if "build" in s} == {"gesco-test:1"}
    assert {"sender", "channel", "receiver"} <= {n for n, s in services.items() if "build" in s}
    # inside the containers the services keep their ports
    assert services["sender"]["environment"]["GESCO_SENDER_PORT"] == "8000"
