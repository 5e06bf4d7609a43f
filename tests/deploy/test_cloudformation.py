"""deploy/aws/atende.yaml: cfn-lint passes it, and the template keeps its promises: the load
balancer asks /health/ready but serves neither it nor /metrics to the internet, no secret
setting travels as plain environment, the deployment's LLM can be configured, the services
wait for the migration, and every container writes to a log group of its own."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from pydantic import SecretStr

from atende.config import Settings
from tests.deploy.conftest import DEPLOY, run, tool
from tests.deploy.test_environment import environment_names

TEMPLATE = DEPLOY / "aws" / "atende.yaml"
PARAMETERS = DEPLOY / "aws" / "atende.parameters.example.json"
SERVICES = {"ApiService": "ApiTaskDefinition", "WorkerService": "WorkerTaskDefinition"}
TASKS = ("ApiTaskDefinition", "WorkerTaskDefinition", "MigrationTaskDefinition")
CFN_LINT_ERROR, CFN_LINT_WARNING = 2, 4  # cfn-lint's exit code is a bitmask (8: informational)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def containers(template: dict[str, Any], task: str) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = template["Resources"][task]["Properties"]["ContainerDefinitions"]
    return definitions


def unconditional(items: list[Any]) -> list[dict[str, Any]]:
    """The entries of a list, with ``Fn::If`` ones taken as their "true" branch."""
    return [item["Fn::If"][1] if "Fn::If" in item else item for item in items]


def refs(value: Any) -> set[str]:
    """Every resource or parameter name a value refers to (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Ref":
                found.add(str(inner))
            elif key == "Fn::GetAtt":
                found.add(str(inner[0] if isinstance(inner, list) else inner.split(".")[0]))
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text))}
                if isinstance(inner, list):
                    found |= refs(inner[1])
            else:
                found |= refs(inner)
        return found
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


def test_cfn_lint_finds_no_error_and_no_warning() -> None:
    out = run(tool("cfn-lint"), "--", str(TEMPLATE))
    assert out.returncode & ~8 == 0, f"cfn-lint (exit {out.returncode}):\n{out.stdout}{out.stderr}"
    assert not out.returncode & (CFN_LINT_ERROR | CFN_LINT_WARNING)


def test_the_load_balancer_checks_readiness_and_redirects_http(template: dict[str, Any]) -> None:
    (group,) = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] == "/health/ready"
    assert group["Properties"]["TargetType"] == "ip"
    listeners = {
        r["Properties"]["Protocol"]: r["Properties"]
        for r in resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert refs(listeners["HTTPS"]["Certificates"]) == {"CertificateArn"}
    (redirect,) = listeners["HTTP"]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"


def alb_pattern_matches(pattern: str, path: str) -> bool:
    """An ALB path pattern against a whole path: case-sensitive, ``*`` any run of characters
    (slashes too), ``?`` exactly one."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, path) is not None


def test_the_internet_gets_404_on_metrics_and_health_checks(template: dict[str, Any]) -> None:
    (https,) = [
        name
        for name, r in resources(template, "AWS::ElasticLoadBalancingV2::Listener").items()
        if r["Properties"]["Protocol"] == "HTTPS"
    ]
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
        if refs(r["Properties"]["ListenerArn"]) == {https}
    ]

    def rule_for(path: str) -> dict[str, Any] | None:
        """The first rule, by priority, whose path patterns match (None: the default forward)."""
        for rule in sorted(rules, key=lambda r: int(r["Priority"])):
            patterns = [
                value
                for condition in rule["Conditions"]
                if condition["Field"] == "path-pattern"
                for value in condition["PathPatternConfig"]["Values"]
            ]
            if any(alb_pattern_matches(pattern, path) for pattern in patterns):
                return rule
        return None

    for path in ("/metrics", "/metrics/", "/health/ready", "/health/live", "/health/ready/"):
        rule = rule_for(path)
        assert rule is not None, f"the load balancer forwards {path} to the tasks"
        (action,) = rule["Actions"]
        assert action["Type"] == "fixed-response", path
        assert action["FixedResponseConfig"]["StatusCode"] == "404", path
    for path in ("/v1/messages", "/widget.js", "/widget/v1/wk_1/conversations", "/demo", "/docs", "/"):
        assert rule_for(path) is None, f"{path} must reach the tasks"
    # the target group's health check calls each task directly: the rule does not hide it
    (group,) = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] == "/health/ready"


def test_the_deployments_llm_is_configured_by_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for name in ("LlmBaseUrl", "LlmModel", "LlmApiKeySecretArn"):
        assert parameters[name]["Default"] == "", f"{name} must stay optional"
    for task in ("ApiTaskDefinition", "WorkerTaskDefinition"):
        (container,) = containers(template, task)
        environment = container["Environment"]
        plain = {e["Name"]: e["Value"] for e in unconditional(environment)}
        assert refs(plain["ATENDE_LLM_BASE_URL"]) == {"LlmBaseUrl"}, task
        assert refs(plain["ATENDE_LLM_MODEL"]) == {"LlmModel"}, task
        # an empty parameter sets nothing, rather than an empty setting
        conditional = {e["Fn::If"][1]["Name"]: e["Fn::If"] for e in environment if "Fn::If" in e}
        for name in ("ATENDE_LLM_BASE_URL", "ATENDE_LLM_MODEL"):
            assert conditional[name][2] == {"Ref": "AWS::NoValue"}, (task, name)
    # atende calls the deployment's LLM only with both endpoint and model: a key or an
    # endpoint given alone is refused before anything is created
    guarded = {
        (frozenset(refs(rule["RuleCondition"])), frozenset(refs(rule["Assertions"])))
        for rule in template["Rules"].values()
    }
    assert (frozenset({"LlmBaseUrl"}), frozenset({"LlmModel"})) in guarded
    assert (frozenset({"LlmApiKeySecretArn"}), frozenset({"LlmBaseUrl"})) in guarded


def test_the_migration_step_says_how_long_it_waits(template: dict[str, Any]) -> None:
    """The function gives up with Lambda's limit less a margin: the template's comment and
    deploy/aws/README.md say the same number of minutes."""
    function = template["Resources"]["MigrationFunction"]["Properties"]
    code = function["Code"]["ZipFile"]
    margin = re.search(r"get_remaining_time_in_millis\(\) > (\d+)", code)
    assert margin, "the function no longer stops waiting before Lambda's limit"
    minutes = round((function["Timeout"] - int(margin.group(1)) / 1000) / 60)
    assert f"after {minutes} minutes" in code
    comment = " ".join(TEMPLATE.read_text().split())
    readme = " ".join((DEPLOY / "aws" / "README.md").read_text().split())
    assert f"waits about {minutes} minutes" in comment
    assert f"waits about {minutes} minutes" in readme


def secret_settings() -> set[str]:
    """Every variable atende reads a secret setting from (fields typed ``SecretStr``)."""
    names = set()
    for name, field in Settings.model_fields.items():
        if "SecretStr" in str(field.annotation) or field.annotation is SecretStr:
            names.update(environment_names(name, field))
    return names


def test_no_secret_travels_as_plain_environment(template: dict[str, Any]) -> None:
    secret = secret_settings()
    assert {"ATENDE_SECRET_KEY", "ATENDE_LLM_API_KEY"} <= secret
    secret_resources = resources(template, "AWS::SecretsManager::Secret")
    for task in TASKS:
        for container in containers(template, task):
            plain = {e["Name"]: e["Value"] for e in unconditional(container.get("Environment", []))}
            from_secrets = {s["Name"]: s["ValueFrom"] for s in unconditional(container.get("Secrets", []))}
            where = f"{task}/{container['Name']}"
            assert not secret & set(plain), f"{where}: secret settings in plain environment"
            assert not {n for n in plain if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$|DSN", n)}, where
            # the database URL names no password: libpq takes PGPASSWORD from Secrets Manager
            url = plain["ATENDE_DATABASE_URL"]
            url_text = url["Fn::Sub"] if isinstance(url, dict) else url
            assert re.match(r"^postgresql://[^:@/]+@", url_text), f"{where}: {url_text}"
            assert "sslmode=require" in url_text
            assert "PGPASSWORD" in from_secrets and "ATENDE_SECRET_KEY" in from_secrets, where
            for name, value_from in from_secrets.items():
                source = refs(value_from)
                assert source and source <= {*secret_resources, *template["Parameters"]}, (where, name)
            if task != "MigrationTaskDefinition":
                # the media bucket is reached with the task role: no S3 key exists to pass
                unused = {"SENTRY_DSN", "ATENDE_MEDIA_S3_SECRET_ACCESS_KEY"}
                assert secret <= set(from_secrets) | unused, f"{where}: {secret - set(from_secrets)}"
                assert {"ATENDE_LLM_API_KEY", "ATENDE_SENTRY_DSN"} <= set(from_secrets)
    generated = [r for r in secret_resources.values() if "GenerateSecretString" in r["Properties"]]
    assert len(generated) == 2 and all(r["DeletionPolicy"] == "Retain" for r in generated)


def test_the_execution_role_reads_exactly_the_secrets_the_tasks_use(template: dict[str, Any]) -> None:
    used = set()
    for task in TASKS:
        assert refs(template["Resources"][task]["Properties"]["ExecutionRoleArn"]) == {"TaskExecutionRole"}
        for container in containers(template, task):
            used |= {frozenset(refs(s["ValueFrom"])) for s in unconditional(container.get("Secrets", []))}
    statements = template["Resources"]["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (reads,) = [s for s in statements["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"]
    allowed = {frozenset(refs(r)) for r in unconditional(reads["Resource"])}
    assert used == allowed


def test_the_media_bucket_is_private_encrypted_and_the_tasks_only_right(template: dict[str, Any]) -> None:
    (name,) = resources(template, "AWS::S3::Bucket")
    bucket = template["Resources"][name]
    assert bucket["DeletionPolicy"] == "Retain"  # customers' files outlive the stack
    properties = bucket["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    [deny] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})

    # the task role: the media bucket's objects, and listing that bucket; nothing else
    task_role = template["Resources"]["TaskRole"]["Properties"]
    assert "ManagedPolicyArns" not in task_role
    [policy_] = task_role["Policies"]
    grants = {
        (tuple(sorted(a if isinstance(a, list) else [a])), str(s["Resource"]))
        for s in policy_["PolicyDocument"]["Statement"]
        for a in [s["Action"]]
        if s["Effect"] == "Allow"
    }
    assert grants == {
        (("s3:DeleteObject", "s3:GetObject", "s3:PutObject"), str({"Fn::Sub": "${MediaBucket.Arn}/*"})),
        (("s3:ListBucket",), str({"Fn::GetAtt": ["MediaBucket", "Arn"]})),
    }
    for service, task in SERVICES.items():
        (container,) = containers(template, task)
        env = {e["Name"]: e["Value"] for e in unconditional(container["Environment"])}
        assert env["ATENDE_MEDIA_BACKEND"] == "s3", service
        assert refs(env["ATENDE_MEDIA_S3_BUCKET"]) == {name}, service


def test_the_services_start_only_after_the_migration_ran(template: dict[str, Any]) -> None:
    run_ = template["Resources"]["MigrationRun"]
    assert run_["Type"].startswith("Custom::")
    properties = run_["Properties"]
    assert refs(properties["ServiceToken"]) == {"MigrationFunction"}
    assert refs(properties["TaskDefinition"]) == {"MigrationTaskDefinition"}
    assert refs(properties["Image"]) == {"ImageUri"}  # a new image runs it again
    (migration,) = containers(template, "MigrationTaskDefinition")
    assert migration["Command"] == ["db", "upgrade"]
    assert refs(migration["Image"]) == {"ImageUri"}

    for service, task in SERVICES.items():
        resource = template["Resources"][service]
        assert "MigrationRun" in resource["DependsOn"], service
        assert refs(resource["Properties"]["TaskDefinition"]) == {task}
        (container,) = containers(template, task)
        assert refs(container["Image"]) == {"ImageUri"}
        env = {e["Name"]: e["Value"] for e in unconditional(container["Environment"])}
        assert env["ATENDE_MIGRATE_ON_START"] == "false", service  # the migration task did it
        assert resource["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"]["Rollback"]
    commands = {service: containers(template, task)[0]["Command"] for service, task in SERVICES.items()}
    assert commands == {"ApiService": ["serve"], "WorkerService": ["worker"]}

    function = template["Resources"]["MigrationFunction"]["Properties"]
    code = function["Code"]["ZipFile"]
    assert len(code) <= 4096  # CloudFormation's limit for inline code
    compile(code, "index.py", "exec")
    assert function["Timeout"] <= 900 and properties["ServiceTimeout"] > function["Timeout"]
    # during a rollback it must not run the old image's migrations over the new schema
    assert "ROLLBACK" in code and '"Delete"' in code


def test_every_container_logs_to_a_log_group_of_its_own(template: dict[str, Any]) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    seen = []
    for task in TASKS:
        for container in containers(template, task):
            logging = container["LogConfiguration"]
            assert logging["LogDriver"] == "awslogs"
            (group,) = refs(logging["Options"]["awslogs-group"])
            assert group in groups, f"{task}: {group} is not a log group of the template"
            assert refs(groups[group]["Properties"]["RetentionInDays"]) == {"LogRetentionDays"}
            seen.append(group)
    assert len(seen) == len(set(seen)) == 3
    function = template["Resources"]["MigrationFunction"]["Properties"]
    assert refs(function["LoggingConfig"]["LogGroup"]) <= set(groups)


def test_only_the_load_balancer_reaches_the_api_and_only_the_tasks_the_database(
    template: dict[str, Any],
) -> None:
    r = template["Resources"]
    (api_ingress,) = resources(template, "AWS::EC2::SecurityGroupIngress").values()
    assert refs(api_ingress["Properties"]["GroupId"]) == {"ApiSecurityGroup"}
    assert refs(api_ingress["Properties"]["SourceSecurityGroupId"]) == {"LoadBalancerSecurityGroup"}
    assert "SecurityGroupIngress" not in r["ApiSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in r["WorkerSecurityGroup"]["Properties"]
    database_ingress = r["DatabaseSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert {frozenset(refs(rule["SourceSecurityGroupId"])) for rule in database_ingress} == {
        frozenset({"ApiSecurityGroup"}),
        frozenset({"WorkerSecurityGroup"}),
    }
    assert all(rule["FromPort"] == rule["ToPort"] == 5432 for rule in database_ingress)

    database = r["Database"]
    assert database["DeletionPolicy"] == "Snapshot" and database["UpdateReplacePolicy"] == "Snapshot"
    props = database["Properties"]
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert refs(props["MultiAZ"]) == {"DbMultiAZ"} and refs(props["DeletionProtection"]) == {
        "DbDeletionProtection"
    }
    assert refs(props["BackupRetentionPeriod"]) == {"DbBackupRetentionDays"}
    assert refs(r["DatabaseSubnetGroup"]["Properties"]["SubnetIds"]) == {"PrivateSubnetIds"}
    assert "{{resolve:secretsmanager:${DatabaseSecret}" in props["MasterUserPassword"]["Fn::Sub"]


def test_both_services_scale_on_cpu_and_the_api_on_requests(template: dict[str, Any]) -> None:
    metrics: dict[str, set[str]] = {}
    targets = resources(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    for policy in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values():
        (target,) = refs(policy["Properties"]["ScalingTargetId"])
        (service,) = refs(targets[target]["Properties"]["ResourceId"]) - {"Cluster"}
        config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        metrics.setdefault(service, set()).add(
            config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        )
    assert metrics == {
        "ApiService": {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"},
        "WorkerService": {"ECSServiceAverageCPUUtilization"},
    }


def test_the_example_parameters_name_every_required_parameter(template: dict[str, Any]) -> None:
    given = {p["ParameterKey"] for p in json.loads(PARAMETERS.read_text())}
    declared = template["Parameters"]
    assert given <= set(declared), f"unknown parameters: {given - set(declared)}"
    required = {name for name, p in declared.items() if "Default" not in p}
    assert required <= given, f"the example misses {required - given}"
