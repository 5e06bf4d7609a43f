"""docs/DEPLOYMENT.md and docs/RUNBOOK.md say only what is true of atende: every alert's
``runbook_url`` lands on a heading of the runbook, every link between the two resolves, every
``atende`` command they show (typed, through compose or ``docker run``, or as an ECS command
override) names a real command with real options, and every setting, metric, PromQL
expression and log event they name exists."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from atende.cli import app
from atende.config import Settings
from tests.conftest import ROOT
from tests.deploy.conftest import Exported
from tests.deploy.test_environment import environment_names
from tests.deploy.test_prometheus import RUNBOOK_ANCHORS, ids, rules

DEPLOYMENT = ROOT / "docs" / "DEPLOYMENT.md"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
DOCS = (DEPLOYMENT, RUNBOOK)
SHELL = {"", "sh", "bash", "shell", "console"}
FENCE = re.compile(r"^( *)```(\w*)\s*$")
# names that start like a metric but are not one: the analytics role, compose's volumes
NOT_METRICS = {"atende_analytics", "atende_postgres_data", "atende_prometheus_data"}
# options of ``docker compose exec|run`` and ``docker run`` that take a value
VALUE_OPTIONS = {
    "-e", "--env", "-u", "--user", "-w", "--workdir", "--index", "--name", "--entrypoint",
    "-v", "--volume", "-p", "--publish", "-l", "--label", "--env-file", "--env-from-file",
    "--network", "--platform", "--mount",
}  # fmt: skip
COMPOSE_OPTIONS = {"-f", "--file", "-p", "--project-name", "--env-file", "--profile", "--ansi"}
# a structlog call of atende and the event it writes: log.warning("webhook.failed", ...)
LOG_CALL = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*\"([^\"]+)\"")
# services of deploy/docker-compose.yml that run the atende image (its entry point is `atende`)
ATENDE_SERVICES = {"api", "worker"}


# --- reading Markdown ----------------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, the body dedented to its fence."""
    blocks: list[tuple[str, str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        opening = FENCE.match(line)
        if not opening:
            continue
        indent, lang = len(opening.group(1)), opening.group(2)
        body = []
        for inner in lines:
            if inner.strip() == "```":
                break
            body.append(inner[indent:] if inner[:indent].isspace() else inner.lstrip())
        blocks.append((lang, "\n".join(body)))
    return blocks


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line) or (inside and line.strip() == "```"):
            inside = not inside
            continue
        if not inside:
            kept.append(line)
    return "\n".join(kept)


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor (a repeated one gets ``-1``, ``-2`` as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(text).splitlines():
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


# --- finding the atende commands the docs show ----------------------------------------------


def without_substitutions(line: str) -> str:
    """``$( … )`` and ``$(( … ))``, nested or not, replaced by one word (their output)."""
    out, i = [], 0
    while i < len(line):
        if line.startswith("$(", i):
            depth, j = 0, i + 1
            while j < len(line):
                depth += {"(": 1, ")": -1}.get(line[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append("SUBST")
            i = j
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def shell_lines(script: str) -> Iterator[str]:
    """Logical lines of a shell script: continuations joined, a quote open at the end of a
    line continued on the next, blank lines skipped."""
    pending = ""
    for line in script.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(without_substitutions(pending), comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if pending.strip():
            yield pending
        pending = ""
    if pending.strip():
        yield pending


def segments(line: str) -> Iterator[list[str]]:
    """The words of each simple command of a shell line (split at pipes, ``;``, ``&&``…;
    redirections dropped with their target)."""
    lexer = shlex.shlex(without_substitutions(line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError as exc:  # an unbalanced quote: the docs' mistake, said by the caller
        raise ValueError(f"cannot split {line!r}: {exc}") from None
    current: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in ("|", "||", "&&", ";", "&", "(", ")", "{", "}"):
            yield current
            current = []
        elif set(token) <= set("<>&") and token:
            skip_next = True
        else:
            current.append(token)
    yield current


def leading_options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading options of a docker command (with the values of those that take one), and
    the words after them."""
    options: dict[str, str] = {}
    i = 0
    while i < len(words) and words[i].startswith("-"):
        name, eq, value = words[i].partition("=")
        if name in VALUE_OPTIONS and not eq:
            i += 1
            value = words[i] if i < len(words) else ""
        options[name] = value
        i += 1
    return options, words[i:]


def atende_arguments(words: list[str]) -> list[str] | None:
    """The arguments given to ``atende`` by one simple command, or None if it runs no atende."""
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("sudo", "exec")):
        words = words[1:]
    if not words:
        return None
    if Path(words[0]).name == "atende":
        return words[1:]
    if words[:2] == ["docker", "compose"]:
        rest = words[2:]
        while rest and rest[0] in COMPOSE_OPTIONS:
            rest = rest[2:]
        if not rest or rest[0] not in ("exec", "run"):
            return None
        subcommand = rest[0]
        options, rest = leading_options(rest[1:])
        if not rest:
            return None
        service, command = rest[0], rest[1:]
        if subcommand == "exec":
            return command[1:] if command and Path(command[0]).name == "atende" else None
        # `run` starts the image's entry point (`atende`) with the words after the service
        if service in ATENDE_SERVICES and options.get("--entrypoint") in (None, "atende"):
            return command
        return None
    if words[:2] == ["docker", "run"]:
        options, rest = leading_options(words[2:])
        entrypoint = options.get("--entrypoint")
        if rest and re.search(r"(^|/)atende(:|$)", rest[0]) and entrypoint in (None, "atende"):
            return rest[1:]
    return None


def commands_in(text: str) -> list[tuple[str, list[str]]]:
    """(where, arguments) of every atende command a document shows: in its shell blocks, its
    inline code, and ECS ``"command": [...]`` overrides."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in SHELL]
    spans = inline_code(text)
    found: list[tuple[str, list[str]]] = []
    for script in blocks + spans:
        for override in re.findall(r'"command"\s*:\s*(\[[^\]]*\])', script):
            found.append((override, list(json.loads(override))))
    # inline code is a command when it starts like one (else it quotes a message, a value…)
    commands = [span for span in spans if re.match(r"(\S*/)?atende |docker (compose|run) ", span)]
    for script in blocks + commands:
        for line in shell_lines(script):
            for words in segments(line):
                arguments = atende_arguments(words)
                if arguments is not None:
                    found.append((line.strip(), arguments))
    return found


def check_invocation(arguments: list[str]) -> list[str]:
    """What is wrong with ``atende ARGUMENTS`` (empty: nothing): an unknown command or
    option, a required option left out, or too few or too many arguments."""
    # typer ships its own click: its commands and parameters are read by duck typing
    command: Any = typer.main.get_command(app)
    path = ["atende"]
    words = list(arguments)
    while getattr(command, "commands", None) is not None:
        if not words:
            return [f"{' '.join(path)} needs a command"]
        if words[0] == "--help":
            return []
        sub = command.commands.get(words[0])
        if sub is None:
            return [f"{' '.join(path)} has no command {words[0]!r}"]
        command = sub
        path.append(words.pop(0))
    name = " ".join(path)
    options = {
        opt: param
        for param in command.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
    }
    problems, positional, given = [], [], set()
    while words:
        word = words.pop(0)
        if word == "--help":
            return []
        if word.startswith("-") and word != "-":
            option, eq, _value = word.partition("=")
            param = options.get(option)
            if param is None:
                problems.append(f"{name} has no option {option}")
                continue
            given.add(param.name)
            if not (param.is_flag or param.count) and not eq:
                if not words:
                    problems.append(f"{name} {option} needs a value")
                else:
                    words.pop(0)
        else:
            positional.append(word)
    for param in command.params:
        if param.param_type_name == "option" and param.required and param.name not in given:
            problems.append(f"{name} needs {param.opts[0]}")
    expected = [p for p in command.params if p.param_type_name == "argument"]
    required = sum(max(p.nargs, 1) for p in expected if p.required)
    most = None if any(p.nargs < 0 for p in expected) else sum(p.nargs for p in expected)
    if len(positional) < required:
        problems.append(f"{name} needs {required} argument(s), got {positional}")
    if most is not None and len(positional) > most:
        problems.append(f"{name} takes at most {most} argument(s), got {positional}")
    return problems


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", rules(), ids=ids)
def test_each_alert_links_to_a_heading_of_the_runbook(rule: dict[str, Any]) -> None:
    anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
    assert anchor in anchors(RUNBOOK.read_text()), f"docs/RUNBOOK.md has no heading whose anchor is #{anchor}"


def test_the_runbook_has_a_section_for_every_anchor_the_alerts_use() -> None:
    assert RUNBOOK_ANCHORS - anchors(RUNBOOK.read_text()) == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_between_the_docs_land_on_headings(doc: Path) -> None:
    text = doc.read_text()
    broken = []
    for target, anchor in re.findall(r"\]\(([A-Z]+\.md)?#([^)\s]+)\)", prose(text)):
        other = (doc.parent / target).read_text() if target else text
        if anchor not in anchors(other):
            broken.append(f"{target}#{anchor}")
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_atende_command_shown_exists_with_its_options(doc: Path) -> None:
    found = commands_in(doc.read_text())
    assert len(found) >= 5, "the commands of the document were not found"
    wrong = [f"{where}: {problem}" for where, arguments in found for problem in check_invocation(arguments)]
    assert wrong == []


def test_the_command_check_catches_wrong_commands() -> None:
    assert check_invocation(["db", "restore", "x.dump", "--force", "--timeout", "60"]) == []
    assert check_invocation(["jobs", "failed", "--json"]) == []
    assert check_invocation(["keys", "create", "-c", "loja", "--role", "agent"]) == []
    assert check_invocation(["db", "snapshot"]) == ["atende db has no command 'snapshot'"]
    assert check_invocation(["jobs", "failed", "--all"]) == ["atende jobs failed has no option --all"]
    assert check_invocation(["db", "backup"]) == ["atende db backup needs 1 argument(s), got []"]
    assert check_invocation(["db", "upgrade", "head"]) == [
        "atende db upgrade takes at most 0 argument(s), got ['head']"
    ]
    assert check_invocation(["db"]) == ["atende db needs a command"]
    assert check_invocation(["keys", "list"]) == ["atende keys list needs --company"]
    assert check_invocation(["keys", "list", "--company"]) == ["atende keys list --company needs a value"]


def test_commands_are_found_however_they_are_run() -> None:
    text = "\n".join(
        [
            "```sh",
            "ATENDE_DATA_DIR=/tmp/x .venv/bin/atende db backup a.dump  # a comment",
            "docker compose -f deploy/docker-compose.yml exec api atende companies list | tail",
            'docker compose -f deploy/docker-compose.yml run --rm --user "$(id -u):$(id -g)" \\',
            '  -v "$PWD/b:/b" api db restore /b/a-$(date +%F).dump --force',
            "docker compose -f deploy/docker-compose.yml run --rm --entrypoint python api -c 'print(1)'",
            "docker compose -f deploy/docker-compose.yml exec postgres psql -U atende",
            'docker run --rm -e PGPASSWORD "$REGISTRY/atende:1.0" jobs failed',
            "aws cloudformation deploy --stack-name atende --template-file deploy/aws/atende.yaml",
            """aws ecs run-task --overrides '{"containerOverrides":[{"command":["db","upgrade"]}]}'""",
            "```",
            "Run `atende worker --name w1`, not `atende_analytics`.",
        ]
    )
    assert [arguments for _, arguments in commands_in(text)] == [
        ["db", "upgrade"],
        ["db", "backup", "a.dump"],
        ["companies", "list"],
        ["db", "restore", "/b/a-SUBST.dump", "--force"],
        ["jobs", "failed"],
        ["worker", "--name", "w1"],
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_setting_named_exists(doc: Path) -> None:
    known = {env for name, field in Settings.model_fields.items() for env in environment_names(name, field)}
    named = set(re.findall(r"\bATENDE_[A-Z0-9_]+\b", doc.read_text()))
    assert named - known == set(), f"{doc.name} names no such setting"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_metric_and_promql_expression_is_atendes(doc: Path, exported: Exported) -> None:
    text = doc.read_text()
    named = set(re.findall(r"\batende_[a-z0-9_]+\b", text)) - NOT_METRICS
    assert named - exported.names == set(), f"{doc.name} names metrics atende does not export"
    expressions = [
        line for lang, body in fenced_blocks(text) if lang == "promql" for line in shell_lines(body)
    ]
    expressions += re.findall(r"--data-urlencode 'query=([^']+)'", text)
    assert doc is DEPLOYMENT or expressions, "the runbook's PromQL was not found"
    assert {expr: exported.check(expr) for expr in expressions} == {expr: [] for expr in expressions}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_log_event_named_is_one_atende_logs(doc: Path) -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "atende").rglob("*.py"))
    logged = set(LOG_CALL.findall(source))
    assert {"turn.failed_handed_off", "webhook.failed", "credential.failing"} <= logged
    text = doc.read_text()
    named = set(re.findall(r"\$?\.event\s*==?\s*\"([^\"]+)\"", text))
    namespaces = {event.split(".")[0] for event in logged}
    # `llm.failed` in prose: a dotted name in an event's namespace must be an event too
    named |= {
        span
        for span in inline_code(text)
        if re.fullmatch(r"[a-z_]+\.[a-z_]+", span) and span.split(".")[0] in namespaces
    }
    assert named - logged == set(), f"{doc.name} names log events atende never writes"
