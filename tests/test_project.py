"""What a user reads before running anything: the README documents every option, the package installs cleanly."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
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


FIRST_PARTY = ("pipelines", "connectors", "scoring", "warehouse")


def _imported_packages(path: Path) -> set[str]:
    """The top-level names of the absolute imports in a module, wherever they are (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_package_the_code_imports_is_declared():
    """A package reached only through another's dependencies breaks when that one changes its own."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_distribution(re.match(r"[A-Za-z0-9._-]+", spec)[0]) for spec in project["dependencies"]}
    imported = {name: str(path.relative_to(ROOT)) for package in FIRST_PARTY
                for path in sorted((ROOT / package).rglob("*.py")) for name in _imported_packages(path)}
    third_party = {name: module for name, module in imported.items()
                   if name not in sys.stdlib_module_names and name not in FIRST_PARTY and name != "__future__"}
    providers = importlib.metadata.packages_distributions()
    undeclared = {name: (module, providers.get(name)) for name, module in third_party.items()
                  if not declared & {_distribution(dist) for dist in providers.get(name, [name])}}
    assert not undeclared, f"declare in pyproject.toml's dependencies (import: (a module importing it, dists)): " \
                           f"{undeclared}"
