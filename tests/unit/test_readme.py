"""The README is the user's manual: its first commands and configuration table must stay true."""

from pathlib import Path

from shared.config_catalog import all_env_names
from shared.topics import TOPICS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_every_environment_variable_is_documented():
    missing = sorted(env for env in all_env_names() if f"`{env}`" not in README)
    assert not missing, f"README lacks {missing}"


def test_every_topic_is_documented():
    assert all(f"`{t.name}`" in README for t in TOPICS)


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
