"""Cut GitHub's REST OpenAPI description (api.github.com.json, MIT: LICENSE-openapi) down to what the
simulator serves: the GET operations of PATHS and every `#/components/...` they reference, transitively.

    python tests/specs/github/cut.py PATH/TO/api.github.com.json tests/specs/github/rest-subset.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from openapi_cut import referenced_components  # noqa: E402

PATHS = (
    "/repos/{owner}/{repo}/deployments",
    "/repos/{owner}/{repo}/deployments/{deployment_id}",
    "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}",
)
METHODS = ("get",)
KEPT_TOP_LEVEL = ("openapi", "info", "servers", "externalDocs")


def cut(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key: spec[key] for key in KEPT_TOP_LEVEL if key in spec}
    out["paths"] = {
        path: {method: spec["paths"][path][method] for method in METHODS if method in spec["paths"][path]}
        for path in PATHS
    }
    out["components"] = referenced_components(spec, out["paths"])
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
