"""What the vendors' spec cuts (`github/cut.py`, `jira/cut.py`) share: the `#/components/...` entries a set of
operations references, transitively, so that a cut holds every schema its operations name and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` string inside `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def referenced_components(
    spec: dict[str, Any], paths: dict[str, Any], keep: Callable[[Any], Any] = lambda node: node
) -> dict[str, dict[str, Any]]:
    """The `components` of `spec` that `paths` reference, transitively, each passed through `keep`, sorted by
    section and name."""
    components: dict[str, dict[str, Any]] = {}
    pending = list(refs(paths))
    while pending:
        ref = pending.pop()
        if not ref.startswith("#/components/"):
            raise ValueError(f"unexpected reference {ref}")
        section, name = ref[len("#/components/") :].split("/", 1)
        if name in components.get(section, {}):
            continue
        node = keep(spec["components"][section][name])
        components.setdefault(section, {})[name] = node
        pending.extend(refs(node))
    return {section: dict(sorted(items.items())) for section, items in sorted(components.items())}
