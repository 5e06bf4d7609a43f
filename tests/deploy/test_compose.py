"""deploy/docker-compose.yml: valid once resolved (with deploy/.env.example standing in for
the real deploy/.env), every image pinned, health checks and start-up order, api scalable,
and the api and worker given every setting a production deployment must set."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from atende.config import DEV_SECRET, Settings
from tests.deploy.conftest import DEPLOY, ENV_EXAMPLE, run, tool

COMPOSE = DEPLOY / "docker-compose.yml"

# what compose must give each atende service; the rest keep their documented defaults
MUST_SET = {
    "api": {
        "ATENDE_DATABASE_URL",  # else the embedded PostgreSQL starts inside the container
        "ATENDE_SECRET_KEY",  # else the development secret signs and encrypts
        "ATENDE_PUBLIC_URL",  # the widget snippet and links
        "ATENDE_HOST",  # 127.0.0.1 by default: unreachable from the proxy
        "ATENDE_RUN_WORKER",  # jobs run in the worker service
    },
    "worker": {
        "ATENDE_DATABASE_URL",
        "ATENDE_SECRET_KEY",  # decrypts companies' stored secrets, signs webhooks
        "ATENDE_PUBLIC_URL",  # links in what the worker sends
        "ATENDE_HOST",  # its metrics port must be reachable by Prometheus
        "ATENDE_WORKER_METRICS_PORT",
    },
}


def config(*extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APP_ENV_FILE": ENV_EXAMPLE.name}
    return run(
        tool("docker-compose"), "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", *extra, env=env
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = config("--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_the_compose_file_is_valid() -> None:
    result = config("-q")
    assert result.returncode == 0, result.stderr


def test_without_its_secrets_compose_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("PASSWORD")}
    empty = tmp_path / ".env"  # instead of a developer's own deploy/.env
    empty.write_text("")
    result = run(
        tool("docker-compose"), "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q", env=env
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_it_runs_the_whole_stack(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) >= {"api", "worker", "postgres", "prometheus", "grafana", "metabase", "proxy"}
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")


def test_every_image_is_pinned_to_a_version(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else "latest"
        assert re.search(r"\d+\.\d+", tag), f"{name}: pin {image} to a version"


def test_api_replicas_can_be_scaled_behind_the_proxy(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in ("api", "worker"):
        assert "container_name" not in services[name], f"{name} cannot scale with a fixed name"
        assert "ports" not in services[name], f"{name} replicas would fight over a host port"
    assert [p["target"] for p in services["proxy"]["ports"]] == [80]
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert re.search(r"dynamic a \{\s*name api\s*port 8000", caddyfile), "the proxy must find every replica"
    # only the proxy listens on every interface; the tools stay on the host's loopback
    for name in ("grafana", "prometheus", "metabase"):
        assert all(p.get("host_ip") == "127.0.0.1" for p in services[name]["ports"]), name


def test_every_long_running_service_has_a_health_check_and_waits_for_its_dependencies(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    for name, service in services.items():
        if name != "node-exporter":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, how in service.get("depends_on", {}).items():
            assert how["condition"] == "service_healthy", f"{name} starts before {dependency} is healthy"
    assert "postgres" in services["api"]["depends_on"]
    assert "postgres" in services["worker"]["depends_on"]
    assert "/health/ready" in " ".join(services["api"]["healthcheck"]["test"])
    port = services["worker"]["environment"]["ATENDE_WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/metrics" in " ".join(services["worker"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", sorted(MUST_SET))
def test_the_atende_services_get_every_setting_production_needs(
    resolved: dict[str, Any], service: str
) -> None:
    environment: dict[str, str] = resolved["services"][service]["environment"]
    missing = MUST_SET[service] - {k for k, v in environment.items() if v}
    assert missing == set(), f"compose does not set {sorted(missing)} for {service}"
    assert environment["ATENDE_SECRET_KEY"] != DEV_SECRET
    assert re.fullmatch(r"postgresql://atende:[^@]+@postgres:5432/atende", environment["ATENDE_DATABASE_URL"])
    # every ATENDE_* variable is a real setting, and the values validate
    fields = {
        key.removeprefix("ATENDE_").lower(): value
        for key, value in environment.items()
        if key.startswith("ATENDE_")
    }
    unknown = set(fields) - set(Settings.model_fields)
    assert unknown == set(), f"no such setting: {sorted(unknown)}"
    settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    assert settings.host == "0.0.0.0"
    if service == "api":
        assert settings.run_worker is False
    else:
        assert settings.worker_metrics_port is not None


def test_prometheus_scrapes_the_ports_compose_serves_metrics_on(resolved: dict[str, Any]) -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    services = resolved["services"]
    ports = {
        "api": services["api"]["environment"]["ATENDE_PORT"],
        "worker": services["worker"]["environment"]["ATENDE_WORKER_METRICS_PORT"],
    }
    for name, port in ports.items():
        [sd] = jobs[name]["dns_sd_configs"]
        assert (sd["names"], str(sd["port"])) == ([name], port), f"Prometheus misses the {name} replicas"
    mounted = {v["target"] for v in services["prometheus"]["volumes"]}
    assert set(scrape["rule_files"]) <= mounted


def test_grafana_is_provisioned_from_deploy_grafana(resolved: dict[str, Any]) -> None:
    volumes = {v["target"]: v["source"] for v in resolved["services"]["grafana"]["volumes"] if "source" in v}
    assert volumes["/etc/grafana/provisioning"] == str(DEPLOY / "grafana" / "provisioning")
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    [provider] = providers["providers"]
    assert volumes[provider["options"]["path"]] == str(DEPLOY / "grafana" / "dashboards")


def test_the_example_environment_holds_no_real_secret() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    for key, value in values.items():
        if key.endswith(("PASSWORD", "SECRET_KEY", "API_KEY")):
            assert value.startswith("change-me"), f"{key} in .env.example must be a placeholder"
    ignored = run("git", "check-ignore", "-q", str(DEPLOY / ".env"))
    assert ignored.returncode == 0, "deploy/.env must be git-ignored"


def test_every_api_and_worker_replica_shares_one_media_folder(resolved: dict[str, Any]) -> None:
    # a worker stores a customer's photo; whichever api replica the agent reaches serves it
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    [media_dir] = re.findall(r"ATENDE_MEDIA_DIR=(\S+)", dockerfile)
    for service in ("api", "worker"):
        mounts = {v["target"]: v for v in resolved["services"][service]["volumes"]}
        assert mounts[media_dir]["type"] == "volume" and mounts[media_dir]["source"] == "media_data", service
    assert "media_data" in resolved["volumes"]
