"""Results as data: JSON with a schema version (the HTML report is added below as it grows).

Every result object (Comparison, BenchReport, LayerReport, NodeProfile, TuneResult) serialises through
``to_json_text`` so its JSON carries ``{"schema": "workbench.<kind>", "schema_version": N}`` and
non-finite floats become ``null`` (JSON has no NaN).
"""

from __future__ import annotations

import json
import math
from typing import Any

#: bumped when a field is renamed or removed (adding a field does not bump it)
SCHEMA_VERSION = 1


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays turned into Python ones and NaN/Inf into None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def to_json_text(kind: str, payload: dict[str, Any], indent: int | None = 2) -> str:
    """The JSON text of a result of ``kind`` (``"comparison"``, ``"benchmark"``, …)."""
    doc = {"schema": f"workbench.{kind}", "schema_version": SCHEMA_VERSION, **payload}
    return json.dumps(jsonable(doc), indent=indent, allow_nan=False)
