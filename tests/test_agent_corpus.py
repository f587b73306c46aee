"""The agent corpus: unusual and malformed agent files through `plait graph`, `plait ir` and `plait plan`.

Each file in tests/agent_corpus/ names what every command must do in its header: `# expect: ok`, or the
first line of the error (`# expect plan: ...` for one command alone). A malformed agent must get exactly
that one short error and exit status 2, never a traceback; a valid one must trace, compile and plan.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app

CORPUS = Path(__file__).parent / "agent_corpus"
COMMANDS = ("graph", "ir", "plan")
runner = CliRunner()


def expectations(path: Path) -> dict[str, str]:
    """{command: "ok" or the error's first line} from the file's `# expect[ command]: ...` header lines."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not (m := re.match(r"# expect( \w+)?: (.*)", line)):
            break
        for command in [m[1].strip()] if m[1] else COMMANDS:
            found[command] = m[2]
    assert set(found) == set(COMMANDS), f"{path.name}: header must say what each command does"
    return found


def run(command: str, target: str, out: Path) -> tuple[int, str, str]:
    args = {"graph": ["graph", target], "ir": ["ir", target, "--stage", "ops"],
            "plan": ["plan", target, "--out", str(out), "--sweep", "0", "--no-simulate"]}[command]
    result = runner.invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"plait {command} {target} raised instead of reporting") from result.exception
    return result.exit_code, result.stdout, result.stderr


FILES = sorted(p for p in CORPUS.glob("*.py") if not p.name.startswith("_"))


def test_the_corpus_is_large_and_mixed() -> None:
    kinds = [expectations(p)["graph"] == "ok" for p in FILES]
    assert len(FILES) >= 50 and sum(kinds) >= 6 and len(kinds) - sum(kinds) >= 50


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_command_answers_as_the_header_says(path: Path, tmp_path: Path) -> None:
    target = f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}:main"
    for command, expected in expectations(path).items():
        code, stdout, stderr = run(command, target, tmp_path / command)
        assert "Traceback" not in stdout + stderr, f"plait {command}: {stderr}"
        if expected == "ok":
            assert code == 0, f"plait {command} {target} failed: {stderr}"
            continue
        first, *rest = stderr.splitlines()
        pattern = re.escape("error: " + expected).replace(re.escape("{file}"), r"\S+")
        assert re.fullmatch(pattern, first), f"plait {command}: got {first!r}"
        assert code == 2 and "To fix" in stderr and path.name in stderr, stderr
        assert len(rest) <= 4, f"an error is a few lines, not a dump: {stderr}"
