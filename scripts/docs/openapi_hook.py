"""MkDocs hook: render the REST API of ``hpsearch serve`` from the service's OpenAPI schema.

``docs/reference/rest-api.md`` holds the marker ``<!-- openapi -->``; at build time it is
replaced by Markdown made from ``make_app(...).openapi()`` — every path and method, its
parameters, body and responses, then every schema — so the page cannot drift from the
service and needs no CDN (swagger-ui) to read offline.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- openapi -->"
METHODS = ("get", "post", "put", "patch", "delete")


def on_page_markdown(markdown: str, page: Any, **_kwargs: Any) -> str:
    """Fill the marker of the REST API page; every other page passes unchanged."""
    if MARKER not in markdown:
        return markdown
    from hpsearch.service.app import make_app

    return markdown.replace(MARKER, render(make_app(None, None).app.openapi()))


def render(schema: dict[str, Any]) -> str:
    """The whole schema as Markdown: the operations, then the schemas they name."""
    parts = [_operation(path, method, op)
             for path, item in schema["paths"].items()
             for method, op in item.items() if method in METHODS]
    schemas = schema.get("components", {}).get("schemas", {})
    parts.append("## Schemas\n")
    parts += [_schema(name, body) for name, body in sorted(schemas.items())]
    return "\n".join(parts)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    lines = [f"## `{method.upper()} {path}`\n", f"**{op.get('summary', '')}.**"]
    if op.get("description"):
        lines.append(" " + _one_paragraph(op["description"]))
    lines.append("\n")
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{p['name']}` | {p['in']} | {type_of(p.get('schema', {}))} | "
                  f"{'yes' if p.get('required') else 'no'} | "
                  f"{_cell(p.get('description') or p.get('schema', {}).get('description'))} |"
                  for p in params]
        lines.append("")
    body = op.get("requestBody")
    if body:
        content = body.get("content", {}).get("application/json", {})
        lines.append(f"Body (JSON): {type_of(content.get('schema', {}))}\n")
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, answer in sorted(op.get("responses", {}).items()):
        content = answer.get("content", {}).get("application/json", {})
        lines.append(f"| {status} | {answer.get('description', '')} | "
                     f"{type_of(content.get('schema', {})) if content else '—'} |")
    return "\n".join(lines) + "\n"


def _schema(name: str, body: dict[str, Any]) -> str:
    lines = [f"### {name}\n"]
    if body.get("description"):
        lines.append(_one_paragraph(body["description"]) + "\n")
    props = body.get("properties", {})
    required = set(body.get("required", []))
    if props:
        lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        lines += [f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} | "
                  f"{_cell(spec.get('description'))} |" for field, spec in props.items()]
    else:
        lines.append(f"A value of type {type_of(body)}.")
    return "\n".join(lines) + "\n"


def type_of(spec: dict[str, Any]) -> str:
    """A JSON schema as a short type: ``integer``, ``string or null``, ``list of PointOut``."""
    if "$ref" in spec:
        return f"[{spec['$ref'].rsplit('/', 1)[-1]}](#{spec['$ref'].rsplit('/', 1)[-1].lower()})"
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return " or ".join(type_of(option) for option in spec[key])
    if "enum" in spec:
        return " \\| ".join(f"`{value}`" for value in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {type_of(spec.get('items', {}))}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {type_of(spec['additionalProperties'])}"
    return str(kind)


def _one_paragraph(text: str) -> str:
    return " ".join(text.split()).replace("``", "`")


def _cell(text: str | None) -> str:
    return _one_paragraph(text).replace("|", "\\|") if text else ""
