"""The field-policy mechanism: every request field is mapped, ignored (named in a header) or refused.

Each API writes its policy as a table in its own fields.py: a `Shape` per object (the request, a
message, a content block of each type, a tool of each type ...), a `Field` per field in it. Before
Pydantic sees a request, `apply_policy` walks the JSON document with that table:

- a *mapped* field stays, for the API's Pydantic schema to validate and its translator to use;
- an *ignored* field (a hint that cannot change the kind of answer the client reads) is taken out
  and its path named, so the route can list it in the `x-ignored-fields` response header;
- a *refused* field (where ignoring it would hand the client a different kind of answer) is a 400
  naming it;
- a field the table does not know is ignored like a known one, so that a client's next release keeps
  working, unless the operator sets STRICT_REQUEST_FIELDS, which refuses it.

A field's class may depend on its value (`when`): `n` is mapped at 1 and refused above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from claude_code_api.errors import UnsupportedParameterError

FieldClass = Literal["mapped", "ignored", "refused"]

# The response header that names what a request carried and the gateway did not act on.
IGNORED_FIELDS_HEADER = "x-ignored-fields"
# Past this many names the header says how many more there were (headers have size limits), and a
# name longer than this is cut.
HEADER_NAMES_LIMIT = 40
HEADER_NAME_LENGTH = 100

# (the field's value, the object that holds it) -> whether the field's `when` class applies.
Condition = Callable[[Any, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Field:
    """One row of a table: what the gateway does with a field.

    `kind` is its class; with `when`, `kind` applies only where `when(value, parent)` holds and
    `otherwise` elsewhere (`condition` says when, for the docs). `inner` describes what the value holds (an
    object, or each object in a list); `values` classifies the strings of a list of strings (such as
    `include`). An ignored field with `keep` stays in the document, for an API that restates it in
    its answer (the Responses API echoes `temperature`), and is still named.
    """

    kind: FieldClass
    reason: str = ""
    inner: Shape | Variants | None = None
    when: Condition | None = None
    otherwise: FieldClass = "mapped"
    values: Mapping[str, Field] | None = None
    keep: bool = False
    condition: str = ""


@dataclass(frozen=True)
class Shape:
    """The fields of one kind of object."""

    fields: Mapping[str, Field]


@dataclass(frozen=True)
class Variants:
    """Objects told apart by a `key` field (a block's `type`, a message's `role`).

    A variant is a Shape, or a Field for a whole kind that is ignored (dropped, named) or refused.
    An object without the key counts as `default`. Kinds not listed are unknown, treated as unknown
    fields, unless `unknown_validated`, which leaves them to Pydantic (an unknown role is an error).
    """

    key: str
    variants: Mapping[str, Shape | Field]
    default: str | None = None
    unknown_validated: bool = False


@dataclass(frozen=True)
class Policy:
    """An API's field table and the names of what a request's document did not keep."""

    name: str
    shape: Shape


@dataclass(frozen=True)
class Applied:
    """A request document with its ignored fields taken out, and their paths."""

    document: Any
    ignored: tuple[str, ...] = ()


@dataclass
class _Walk:
    strict: bool
    ignored: list[str] = field(default_factory=list)

    def ignore(self, path: str) -> None:
        self.ignored.append(path)

    def unknown(self, path: str) -> None:
        if self.strict:
            raise UnsupportedParameterError(
                path, "this gateway does not know this field (STRICT_REQUEST_FIELDS is on)."
            )
        self.ignored.append(path)


def apply_policy(document: Any, policy: Policy, *, strict: bool = False) -> Applied:
    """The request `document` as the API's schema should see it: ignored and unknown fields taken out
    and named, a 400 (UnsupportedParameterError naming the field) for a refused one.

    A document that is not an object is left to Pydantic, which says what is wrong with it.
    """
    if not isinstance(document, dict):
        return Applied(document)
    walk = _Walk(strict)
    cleaned = _object(document, policy.shape, "", walk)
    return Applied(cleaned, tuple(walk.ignored))


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _class_of(rule: Field, value: Any, parent: Mapping[str, Any]) -> FieldClass:
    if rule.when is None:
        return rule.kind
    try:
        applies = rule.when(value, parent)
    except (TypeError, ValueError, AttributeError):
        applies = False  # a value of the wrong type: Pydantic names it
    return rule.kind if applies else rule.otherwise


def _object(obj: dict[str, Any], shape: Shape, path: str, walk: _Walk) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in obj.items():
        where = _path(path, key)
        rule = shape.fields.get(key)
        if rule is None:
            walk.unknown(where)
            continue
        kind = _class_of(rule, value, obj)
        if kind == "refused":
            raise UnsupportedParameterError(where, rule.reason or "not supported by this gateway.")
        if kind == "ignored":
            walk.ignore(where)
            if rule.keep:
                kept[key] = value
            continue
        cleaned = _value(value, rule, where, walk)
        if cleaned is not _DROPPED:
            kept[key] = cleaned
    return kept


def _value(value: Any, rule: Field, path: str, walk: _Walk) -> Any:
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            cleaned = _item(item, rule, _path(path, index), walk)
            if cleaned is not _DROPPED:
                items.append(cleaned)
        return items
    if isinstance(value, dict) and rule.inner is not None:
        return _node(value, rule.inner, path, walk)  # _DROPPED for a kind that is ignored whole
    return value


_DROPPED = object()


def _item(item: Any, rule: Field, path: str, walk: _Walk) -> Any:
    if isinstance(item, str) and rule.values is not None:
        value_rule = rule.values.get(item)
        if value_rule is None:
            walk.unknown(path)
            return _DROPPED
        if value_rule.kind == "refused":
            raise UnsupportedParameterError(path, f"'{item}': {value_rule.reason}")
        if value_rule.kind == "ignored":
            walk.ignore(path)
            return _DROPPED
        return item
    if isinstance(item, dict) and rule.inner is not None:
        return _node(item, rule.inner, path, walk)
    return item


def _node(obj: dict[str, Any], node: Shape | Variants, path: str, walk: _Walk) -> Any:
    if isinstance(node, Shape):
        return _object(obj, node, path, walk)
    kind = obj.get(node.key, node.default)
    variant = node.variants.get(kind) if isinstance(kind, str) else None
    if variant is None:
        if node.unknown_validated:
            return obj
        walk.unknown(path)
        return _DROPPED
    if isinstance(variant, Field):
        if _class_of(variant, obj, obj) == "refused":
            raise UnsupportedParameterError(path, f"'{kind}': {variant.reason}")
        walk.ignore(path)
        return _DROPPED
    # The discriminator itself is always part of the variant.
    fields = variant.fields if node.key in variant.fields else {**variant.fields, node.key: MAPPED}
    return _object(obj, Shape(fields), path, walk)


def header_value(ignored: Iterable[str]) -> str:
    """The `x-ignored-fields` value: the paths, comma-separated, at most HEADER_NAMES_LIMIT of them.

    Field names are the client's: anything but printable ASCII (and the comma) is written as a `\\u`
    escape, so that a name can neither split the header (CR, LF) nor fail its Latin-1 encoding.
    """
    names = list(dict.fromkeys(_header_safe(name) for name in ignored))
    shown = ", ".join(names[:HEADER_NAMES_LIMIT])
    if len(names) > HEADER_NAMES_LIMIT:
        shown += f", (+{len(names) - HEADER_NAMES_LIMIT} more)"
    return shown


def _header_safe(name: str) -> str:
    if len(name) > HEADER_NAME_LENGTH:
        name = name[:HEADER_NAME_LENGTH] + "..."
    return "".join(char if " " <= char <= "~" and char != "," else f"\\u{ord(char):04x}" for char in name)


# --- building tables ------------------------------------------------------------------------------

MAPPED = Field("mapped")


def mapped(
    inner: Shape | Variants | None = None, *, reason: str = "", values: Mapping[str, Field] | None = None
) -> Field:
    """A field the gateway acts on; `inner` describes what it holds."""
    return Field("mapped", reason, inner=inner, values=values)


def ignored(reason: str, *, keep: bool = False) -> Field:
    """A field the gateway accepts and does not act on, for `reason`."""
    return Field("ignored", reason, keep=keep)


def refused(reason: str) -> Field:
    """A field that gets a 400: ignoring it would change the kind of answer."""
    return Field("refused", reason)


def refused_when(
    when: Condition,
    condition: str,
    reason: str,
    *,
    otherwise: FieldClass = "mapped",
    inner: Shape | Variants | None = None,
) -> Field:
    """A field refused for some values (`when`, described by `condition`) and `otherwise` classed for
    the others."""
    return Field("refused", reason, inner=inner, when=when, otherwise=otherwise, condition=condition)


def shape(**fields: Field) -> Shape:
    """An object's fields, by name."""
    return Shape(fields)


# --- reading tables (the docs and the tests) ------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A table row as the docs list it."""

    path: str
    kind: FieldClass
    reason: str
    conditional: FieldClass | None = None
    condition: str = ""


def table_rows(policy: Policy) -> Iterator[Row]:
    """Every row of a policy, depth first, with paths such as `messages[].content[].text`."""
    yield from _shape_rows(policy.shape, "")


def _shape_rows(node: Shape | Variants, path: str) -> Iterator[Row]:
    if isinstance(node, Shape):
        for name, rule in node.fields.items():
            where = _path(path, name)
            conditional = rule.otherwise if rule.when is not None else None
            yield Row(where, rule.kind, rule.reason, conditional, rule.condition)
            if rule.inner is not None:
                yield from _shape_rows(rule.inner, where)
            for value, value_rule in (rule.values or {}).items():
                yield Row(f"{where}[] = {value}", value_rule.kind, value_rule.reason)
        return
    for kind, variant in node.variants.items():
        where = f"{path}{{{node.key}: {kind}}}"
        if isinstance(variant, Field):
            conditional = variant.otherwise if variant.when is not None else None
            yield Row(where, variant.kind, variant.reason, conditional, variant.condition)
        else:
            yield Row(where, "mapped", "")
            yield from _shape_rows(variant, where)


def class_counts(policy: Policy) -> dict[FieldClass, int]:
    """How many rows of each class a policy has (a conditional row counts as its `kind`)."""
    counts: dict[FieldClass, int] = {"mapped": 0, "ignored": 0, "refused": 0}
    for row in table_rows(policy):
        counts[row.kind] += 1
    return counts
