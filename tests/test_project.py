"""What a user reads before running anything: the README documents every option, the package installs cleanly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import typer.main

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = typer.main.get_command(app).commands


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_readme_documents_every_option_of_every_command(command):
    assert f"scorecard {command}" in README
    options = [opt for param in COMMANDS[command].params for opt in param.opts if opt.startswith("--")]
    missing = [opt for opt in options if opt not in README]
    assert not missing, f"scorecard {command}: README does not mention {', '.join(missing)}"


def test_the_readme_documents_version():
    assert "scorecard --version" in README


def test_the_license_is_an_spdx_string():
    """A TOML table (`license = {text = ...}`) makes setuptools print a deprecation warning on every install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"


def test_no_file_cites_a_document_outside_the_repository():
    tracked = [path for pattern in ("*.py", "*.md", "*.yaml", "*.toml") for path in ROOT.rglob(pattern)
               if ".venv" not in path.parts and ".demo" not in path.parts and path.name != "test_project.py"]
    citing = [str(path.relative_to(ROOT)) for path in tracked if "PRODUCT" + ".md" in path.read_text(encoding="utf-8")]
    assert not citing, f"cite the README or a docs/ page instead: {citing}"
