"""Write docs/reference/config.md from workflow/schemas/config.schema.yaml, so the reference
cannot drift from the schema that every study is validated against.

    python docs/config_reference.py          # (re)write the page
    python docs/config_reference.py --check  # exit 1 if the page differs from the schema's
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PAGE = ROOT / "docs" / "reference" / "config.md"


def kind(spec: dict[str, Any]) -> str:
    """The type column: JSON types, an enum, a reference to a definition, or alternatives."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    if "oneOf" in spec:
        return " or ".join(kind(option) for option in spec["oneOf"])
    types = spec.get("type", "any")
    types = types if isinstance(types, list) else [types]
    if "array" in types and isinstance(spec.get("items"), dict):
        types = [f"array of {kind(spec['items'])}" if t == "array" else t for t in types]
    if "object" in types and isinstance(spec.get("additionalProperties"), dict):
        inner = kind(spec["additionalProperties"])
        types = [f"map of {inner}" if t == "object" else t for t in types]
    return " or ".join(types)


def bounds(spec: dict[str, Any]) -> str:
    """Limits the schema states (minimum, maximum, pattern, sizes)."""
    words = {
        "minimum": ">= {}",
        "exclusiveMinimum": "> {}",
        "maximum": "<= {}",
        "exclusiveMaximum": "< {}",
        "pattern": "matches `{}`",
        "minItems": "at least {} items",
        "minProperties": "at least {} keys",
        "maxItems": "at most {} items",
    }
    return ", ".join(text.format(spec[key]) for key, text in words.items() if key in spec)


def rows(spec: dict[str, Any], path: str, required: set[str]) -> list[str]:
    """One table row per key under `spec`, depth first."""
    out = []
    for key, child in spec.get("properties", {}).items():
        if not isinstance(child, dict):
            continue
        full = f"{path}.{key}" if path else key
        default = json.dumps(child["default"]) if "default" in child else ""
        need = "yes" if key in required else ""
        text = "; ".join(p for p in (child.get("description", ""), bounds(child)) if p)
        cell = text.replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{full}` | {kind(child)} | {need} | {default} | {cell} |")
        out += rows(child, full, set(child.get("required", [])))
        for option in child.get("oneOf", []):
            out += rows(option, full, set(option.get("required", [])))
    return out


def table(spec: dict[str, Any], path: str = "") -> list[str]:
    head = ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
    return head + rows(spec, path, set(spec.get("required", [])))


def variants(spec: dict[str, Any]) -> list[str]:
    """Each variant of a definition that the schema tells apart by one key's value (a schedule
    by its `family`, a source by its `type`: the allOf branches) and the keys it accepts."""
    out = []
    for branch in spec.get("allOf", []):
        key, test = next(iter(branch["if"]["properties"].items()))
        then = branch["then"]
        keys = {"properties": then.get("properties", {}), "required": then.get("required", [])}
        out += ["", f"#### `{key}: {test['const']}`", "", *table(keys)]
    return out


def render(schema: dict[str, Any]) -> str:
    lines = [
        "# Config reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by `docs/config_reference.py`; do",
        "not edit by hand (`tests/docs/test_docs.py` fails when the two differ). "
        + schema.get("description", ""),
        "",
        "## Study keys",
        "",
        *table(schema),
        "",
        "## Definitions",
    ]
    for name, spec in schema.get("$defs", {}).items():
        lines += ["", f"### {name}", ""]
        if spec.get("description"):
            lines += [spec["description"], ""]
        lines += [f"Type: {kind(spec)}.", ""]
        if "properties" in spec and any(isinstance(v, dict) for v in spec["properties"].values()):
            lines += table(spec)
        if "allOf" in spec:
            lines += variants(spec)
        for option in spec.get("oneOf", []):
            if "properties" in option:
                lines += ["", *table(option)]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render(yaml.safe_load(SCHEMA.read_text()))
    if "--check" in sys.argv[1:]:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE}: out of date with {SCHEMA}; run python docs/config_reference.py")
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
