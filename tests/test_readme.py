"""The README's promises: its Python runs as written, its quick start is two commands that make
their own virtual environment, CI runs its test command, its command table is complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer.core
import typer.main

from specstore.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI_SCRIPT = (ROOT / ".ci" / "run").read_text()
CONSTRAINTS = ROOT / "constraints.txt"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def quick_start_commands() -> list[str]:
    body = section("Quick start")
    block = re.search(r"```console\n(.*?)```", body, re.S)
    assert block, "the quick start has no console block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_every_python_block_runs_as_written(tmp_path: Path) -> None:
    code = blocks("python")
    assert len(code) >= 2
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("SPECSTORE_")},
    )
    assert result.returncode == 0, result.stderr


def test_quick_start_is_two_commands_that_make_their_own_venv() -> None:
    demo, tests = quick_start_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install ")
        # nothing may reach the system interpreter's pip or a bare console script
        words = command.replace("&&", " ").split()
        assert "pip" not in words and "python" not in words and "specstore" not in words
    assert demo.endswith(".venv/bin/specstore demo")
    assert "-c constraints.txt" in tests and tests.endswith(".venv/bin/python -m pytest")


def test_ci_exports_ci_makes_a_venv_and_runs_the_readme_test_command() -> None:
    _, tests = quick_start_commands()
    lines = [line.strip() for line in CI_SCRIPT.splitlines()]
    assert lines[-1] == tests, "the last step of .ci/run is the README's test command"
    assert "export CI=true" in lines
    assert lines.index("export CI=true") < lines.index(tests)
    assert "set -euo pipefail" in lines
    for line in lines:
        if "pip install" in line:
            assert ".venv/bin/pip install" in line and "-c constraints.txt" in line, line
    for package in ("redis-server", "redis-tools", "python3-venv"):
        assert package in CI_SCRIPT


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt pins exact versions, not {line!r}"
            found[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return found


def test_constraints_pin_every_tool_ci_depends_on() -> None:
    pinned = pins()
    tools = ["pytest", "pytest-timeout", "hypothesis", "trustme", "mypy", "ruff"]
    runtime = ["pydantic", "pydantic-core", "redis", "fakeredis", "lupa", "msgpack", "typer"]
    for name in [*tools, *runtime, "rich"]:
        assert name in pinned, f"{name} is not pinned in constraints.txt"
    assert "bash .ci/refresh-constraints" in README
    assert (ROOT / ".ci" / "refresh-constraints").is_file()


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs with -c constraints.txt")
def test_ci_runs_the_pinned_versions() -> None:
    for name, version in pins().items():
        assert metadata.version(name) == version, name


def test_the_command_table_lists_every_option() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    body = section("The `specstore` command")
    global_names = {"--redis-url", "--prefix", "--cell-urls", "--config", "--help", "-h"}
    for name in global_names - {"-h", "--help"}:
        assert f"`{name}" in body
    assert "--version" in body
    for name, command in group.commands.items():
        row = next(
            (line for line in body.splitlines() if line.startswith(f"| `specstore {name}")), None
        )
        assert row is not None, f"no table row for {name}"
        for param in command.params:
            if not isinstance(param, typer.core.TyperOption):
                continue
            longest = max(param.opts, key=len)
            if longest in global_names:
                continue
            assert longest in row, f"{name}: {longest} is missing from the README's table"


def test_the_package_docstring_example_runs() -> None:
    import doctest

    import specstore

    result = doctest.testmod(specstore, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("ci", "expected"), [("true", 1), ("", 0)])
def test_without_redis_server_ci_fails_and_a_laptop_skips(
    tmp_path: Path, ci: str, expected: int
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)  # no redis-server, no redis-cli
    if ci:
        env["CI"] = ci
    test = "tests/test_cli_operator.py::test_repair_counts_instances_not_keys"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == expected, result.stdout
    assert "redis-server is not on PATH" in result.stdout
