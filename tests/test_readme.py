"""The README's two set-up commands stay true: what they name exists, and CI runs the same test command."""

import re
import shlex

from rollmatch.cli import main

from .conftest import REPO


def setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands():
    install, test = setup_commands()
    assert install.endswith("pip install -e . && rollmatch score examples/*.mid")
    assert test.endswith("pip install -e '.[test]' && python -m pytest -q")


def test_ci_runs_the_readmes_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    _, test = setup_commands()
    for step in ("python3 -m venv", "pip install -e '.[test]'", "python -m pytest -q"):
        assert step in test and step in ci


def test_the_install_commands_score_step_works(capsys, monkeypatch):
    install, _ = setup_commands()
    score = install.split("&& rollmatch ", 1)[1]
    args = shlex.split(score)
    files = sorted(str(p.relative_to(REPO)) for p in REPO.glob(args[-1]))
    assert len(files) == 5
    monkeypatch.chdir(REPO)
    assert main([*args[:-1], *files]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()] == ["GOOD", "UNMATCHED", "UNMATCHED", "VETOED", "VETOED"]
    # and exactly what the README's first screen shows
    shown = (
        (REPO / "README.md")
        .read_text()
        .split("$ rollmatch score examples/*.mid\n", 1)[1]
        .split("\nrollmatch: scored", 1)[0]
    )
    assert out.strip() == shown
