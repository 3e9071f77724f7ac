"""Cut Atlassian's Jira Cloud platform REST API v3 description (swagger-v3.v3.json, Apache 2.0: LICENSE) down to
what the Jira connector sends: the OPERATIONS below and every `#/components/...` they reference, transitively.
The operations' `x-*` extension keys and their response examples are dropped (they are long and no test reads them).

    python tests/specs/jira/cut.py PATH/TO/swagger-v3.v3.json tests/specs/jira/rest-subset.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from openapi_cut import referenced_components  # noqa: E402

OPERATIONS = (
    ("/rest/api/3/myself", "get"),
    ("/rest/api/3/field", "get"),
    ("/rest/api/3/search/jql", "get"),
    ("/rest/api/3/changelog/bulkfetch", "post"),
)
KEPT_TOP_LEVEL = ("openapi", "info", "servers", "externalDocs")


def without_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: without_examples(value) for key, value in node.items() if key not in ("example", "examples")}
    if isinstance(node, list):
        return [without_examples(value) for value in node]
    return node


def operation(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    node = spec["paths"][path][method]
    kept = {key: value for key, value in node.items() if not key.startswith("x-")}
    return without_examples(kept)


def cut(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key: spec[key] for key in KEPT_TOP_LEVEL if key in spec}
    out["paths"] = {}
    for path, method in OPERATIONS:
        out["paths"].setdefault(path, {})[method] = operation(spec, path, method)
    out["components"] = referenced_components(spec, out["paths"], without_examples)
    schemes = spec["components"].get("securitySchemes", {})
    if "basicAuth" in schemes:
        out["components"]["securitySchemes"] = {"basicAuth": schemes["basicAuth"]}
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    Path(argv[2]).write_text(json.dumps(cut(spec), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
