"""Declared fields: plain YAML data into immutable models, every problem with its path,
and the same declarations as JSON Schema.

A model is a subclass of ``Model`` (immutable, keyword-only, like a frozen dataclass)
whose fields come from ``field(kind, default, ...)``. A kind parses one value and
describes it as JSON Schema: ``Text``, ``Integer``, ``Number``, ``Boolean``, ``OneOf``,
``AnyValue``, ``Optional``, ``ListOf``, ``MapOf``, ``Parsed`` (a function raising
ValueError), ``Nested`` (another model) and ``Tagged`` (one of several models, chosen by
a function of the raw value). A model may define ``_check(self)``, raising ValueError,
to test fields together; it runs only once every field has parsed.

This replaces pydantic, which the plan models used until importing it and building them
cost about 250 ms on every command that reads a plan (a whole `rollout validate` took
4.7 times as long as importing typer; the target is 2.5).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable
from typing import Any

Loc = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Issue:
    """One complaint about the data at ``loc``.

    ``kind`` is "missing" (a required key), "unknown" (a key the model does not have;
    ``allowed`` lists the ones it has), "type" (a value of the wrong type or out of range;
    the message reads "must be ..." and ``value`` is what was given) or "value" (a parser's
    own message).
    """

    loc: Loc
    kind: str
    message: str
    value: Any = None
    allowed: tuple[str, ...] = ()
    hint: str | None = None


class Invalid(ValueError):
    """Raised by a kind for a value of the wrong type or range: "must be ..."."""


class Refused(ValueError):
    """A parser's or check's refusal that comes with a hint for the reader."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _refusal(loc: Loc, exc: ValueError, value: Any) -> Issue:
    return Issue(loc, "value", str(exc), value, hint=getattr(exc, "hint", None))


class PlanDataError(ValueError):
    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__(f"{len(issues)} problem(s), first: {issues[0].message}")


FAILED: Any = object()   # what a parse returns once it has recorded its issues
REQUIRED: Any = object()


class Kind:
    """How one value parses, and how it reads in JSON Schema."""

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        try:
            return self.convert(value)
        except Invalid as exc:
            issues.append(Issue(loc, "type", str(exc), value))
        except ValueError as exc:
            issues.append(_refusal(loc, exc, value))
        return FAILED

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Text(Kind):
    pattern: str | None = None
    spelled: str | None = None   # the pattern in words, for the message

    def convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if self.pattern is not None and not re.search(self.pattern, value):
            raise Invalid(f"must be {self.spelled or 'a string matching ' + self.pattern}")
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            found["pattern"] = self.pattern
        return found


_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _from_text(value: Any) -> Any:
    """A number written as text, as ``${VAR}`` gives it: "10" -> 10, "0.5" -> 0.5."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value \
            and "e" not in value.lower() else number
    return value


def _bounds(value: float, ge: float | None, le: float | None) -> None:
    if ge is not None and value < ge:
        raise Invalid(f"must be greater than or equal to {ge:g}")
    if le is not None and value > le:
        raise Invalid(f"must be less than or equal to {le:g}")


def _bounds_schema(found: dict[str, Any], ge: float | None, le: float | None
                   ) -> dict[str, Any]:
    if ge is not None:
        found["minimum"] = ge
    if le is not None:
        found["maximum"] = le
    return found


@dataclasses.dataclass(frozen=True)
class Integer(Kind):
    ge: int | None = None
    le: int | None = None

    def convert(self, value: Any) -> int:
        value = _from_text(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("must be a whole number")
        _bounds(value, self.ge, self.le)
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _bounds_schema({"type": "integer"}, self.ge, self.le)


@dataclasses.dataclass(frozen=True)
class Number(Kind):
    ge: float | None = None
    le: float | None = None

    def convert(self, value: Any) -> float:
        value = _from_text(value)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (isinstance(value, float) and not math.isfinite(value)):
            raise Invalid("must be a number")
        _bounds(value, self.ge, self.le)   # exact, even for an int too big for a float
        try:
            return float(value)
        except OverflowError:
            raise Invalid("must be a number of at most 308 digits") from None

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _bounds_schema({"type": "number"}, self.ge, self.le)


class Boolean(Kind):
    def convert(self, value: Any) -> bool:
        if isinstance(value, str):
            value = _BOOLEANS.get(value.strip().lower(), value)
        if not isinstance(value, bool):
            raise Invalid("must be true or false")
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "boolean"}


class OneOf(Kind):
    def __init__(self, *choices: str | int):
        self.choices = choices

    def convert(self, value: Any) -> Any:
        for choice in self.choices:
            if value == choice and type(value) is type(choice):
                return value
        spelled = [repr(c) for c in self.choices]
        listed = spelled[0] if len(spelled) == 1 else \
            f"{', '.join(spelled[:-1])} or {spelled[-1]}"
        raise Invalid(f"must be {listed}")

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        kind = "integer" if isinstance(self.choices[0], int) else "string"
        if len(self.choices) == 1:
            return {"const": self.choices[0], "type": kind}
        return {"enum": list(self.choices), "type": kind}


class FrozenMap(dict):  # type: ignore[type-arg]
    """A mapping that cannot change, so that a model holding one is immutable and hashable.
    ``{**frozen}`` and ``dict(frozen)`` give an ordinary, changeable copy."""

    __slots__ = ()

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a plan's mappings are immutable; copy it with dict(...)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


def freeze(value: Any) -> Any:
    """Plain YAML data made immutable: mappings as FrozenMap, lists as tuples."""
    if isinstance(value, dict):
        return FrozenMap({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


class AnyValue(Kind):
    def convert(self, value: Any) -> Any:
        return freeze(value)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {}


@dataclasses.dataclass(frozen=True)
class Optional(Kind):
    """``kind`` or null."""

    kind: Kind

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        return None if value is None else self.kind.parse(value, loc, issues)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [self.kind.schema(defs), {"type": "null"}]}

    def dump(self, value: Any) -> Any:
        return None if value is None else self.kind.dump(value)


@dataclasses.dataclass(frozen=True)
class ListOf(Kind):
    kind: Kind
    min_items: int = 0

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, list):
            issues.append(Issue(loc, "type", "must be a list", value))
            return FAILED
        if len(value) < self.min_items:
            issues.append(Issue(loc, "type", f"must have at least {self.min_items} "
                                f"item{'s' if self.min_items != 1 else ''}", value))
            return FAILED
        parsed = tuple(self.kind.parse(item, (*loc, i), issues) for i, item in enumerate(value))
        return FAILED if any(item is FAILED for item in parsed) else parsed

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        found = {"type": "array", "items": self.kind.schema(defs)}
        if self.min_items:
            found["minItems"] = self.min_items
        return found

    def dump(self, value: Any) -> Any:
        return [self.kind.dump(item) for item in value]


@dataclasses.dataclass(frozen=True)
class MapOf(Kind):
    """A mapping from string keys to ``kind``."""

    kind: Kind

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, dict):
            issues.append(Issue(loc, "type", "must be a mapping", value))
            return FAILED
        parsed = {}
        failed = False
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(Issue((*loc, key), "type", "must have a string as its key", key))
                failed = True
                continue
            parsed[key] = self.kind.parse(item, (*loc, key), issues)
            failed = failed or parsed[key] is FAILED
        return FAILED if failed else FrozenMap(parsed)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.kind.schema(defs)}

    def dump(self, value: Any) -> Any:
        return {key: self.kind.dump(item) for key, item in value.items()}


class Parsed(Kind):
    """A value read by ``read`` (which raises ValueError with its own message)."""

    def __init__(self, read: Callable[[Any], Any], schema: dict[str, Any],
                 dump: Callable[[Any], Any] = str):
        self.read, self._schema, self._dump = read, schema, dump

    def convert(self, value: Any) -> Any:
        return self.read(value)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return dict(self._schema)

    def dump(self, value: Any) -> Any:
        return self._dump(value)


class Nested(Kind):
    def __init__(self, model: type):
        self.model = model

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        return parse_model(self.model, value, loc, issues)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        name = self.model.__name__
        if name not in defs:
            defs[name] = {}   # taken, in case the model refers to itself
            defs[name] = model_schema(self.model, defs)
        return {"$ref": f"#/$defs/{name}"}

    def dump(self, value: Any) -> Any:
        return dump_model(value)


class Tagged(Kind):
    """One of several models, chosen by ``tag(value)``; None means none fits."""

    def __init__(self, tag: Callable[[Any], str | None], models: dict[str, type],
                 message: str, hint: str | None = None):
        self.tag, self.message, self.hint = tag, message, hint
        self.kinds = {name: Nested(model) for name, model in models.items()}

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        kind = self.kinds.get(self.tag(value) or "")
        if kind is None:
            issues.append(Issue(loc, "value", self.message, value, hint=self.hint))
            return FAILED
        return kind.parse(value, loc, issues)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"oneOf": [kind.schema(defs) for kind in self.kinds.values()]}

    def dump(self, value: Any) -> Any:
        return dump_model(value)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    key: str
    kind: Kind
    required: bool
    default: Any
    description: str | None
    check: Callable[[Any, dict[str, Any]], None] | None

    def fresh_default(self) -> Any:
        """The default, immutable like a parsed value (a list as a tuple, a mapping frozen)."""
        return freeze(self.default)


def field(kind: Kind, default: Any = REQUIRED, *, key: str | None = None,
          description: str | None = None,
          check: Callable[[Any, dict[str, Any]], None] | None = None) -> Any:
    """A model field. ``key`` is its YAML key when that differs from the attribute name
    (``pass``, ``json``); ``check(value, fields_so_far)`` raises ValueError to refuse a
    value that is given (not null)."""
    return _Field("", key or "", kind, default is REQUIRED, None if default is REQUIRED
                  else default, description, check)


@typing.dataclass_transform(kw_only_default=True, frozen_default=True,
                            field_specifiers=(field,))
class Model:
    """Base of the plan's models: built from keywords, immutable, equal when their fields are.

    Like a frozen, keyword-only dataclass, without generating code per class: dataclasses
    took 1 to 2 ms for each of the plan's fifteen models, on every start.
    """

    _fields: typing.ClassVar[dict[str, _Field]] = {}   # by YAML key, in declaration order

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        found = {}
        for name, declared in list(cls.__dict__.items()):
            if isinstance(declared, _Field):
                delattr(cls, name)
                key = declared.key or name
                found[key] = dataclasses.replace(declared, name=name, key=key)
        cls._fields = found

    def __init__(self, **values: Any):
        state = self.__dict__
        for f in self._fields.values():
            if f.name in values:
                state[f.name] = freeze(values.pop(f.name))
            elif f.required:
                raise TypeError(f"{type(self).__name__}() needs {f.name}=")
            else:
                state[f.name] = f.fresh_default()
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {next(iter(values))!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use fields.replace")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__[f.name] for f in self._fields.values())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={self.__dict__[f.name]!r}" for f in self._fields.values())
        return f"{type(self).__name__}({shown})"


def replace(made: Model, **changes: Any) -> Any:
    """A copy of ``made`` with some fields changed, like ``dataclasses.replace``."""
    return type(made)(**{**{f.name: made.__dict__[f.name] for f in made._fields.values()},
                         **changes})


def fields_of(cls: type[Model]) -> dict[str, _Field]:
    """A model's fields by YAML key, in declaration order."""
    return cls._fields


def parse_model(cls: type, value: Any, loc: Loc, issues: list[Issue]) -> Any:
    if not isinstance(value, dict):
        issues.append(Issue(loc, "type", "must be a mapping", value))
        return FAILED
    spec = fields_of(cls)
    before = len(issues)
    for key in value:
        if key not in spec:
            issues.append(Issue((*loc, key), "unknown", f"unknown key {key!r}", key,
                                allowed=tuple(spec)))
    parsed: dict[str, Any] = {}
    for key, f in spec.items():
        if key not in value:
            if f.required:
                issues.append(Issue((*loc, key), "missing", "missing required key"))
            continue
        item = f.kind.parse(value[key], (*loc, key), issues)
        if item is FAILED:
            continue
        if f.check is not None and item is not None:
            try:
                f.check(item, parsed)
            except ValueError as exc:
                issues.append(_refusal((*loc, key), exc, value[key]))
                continue
        parsed[f.name] = item
    if len(issues) > before:
        return FAILED
    made = cls(**parsed)
    check = getattr(made, "_check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            issues.append(_refusal(loc, exc, value))
            return FAILED
    return made


def parse(cls: type, value: Any) -> Any:
    """``value`` as a ``cls``; raises PlanDataError listing every issue."""
    issues: list[Issue] = []
    made = parse_model(cls, value, (), issues)
    if issues:
        raise PlanDataError(issues)
    return made


def dump_model(made: Any) -> dict[str, Any]:
    """A model back to plain data under its YAML keys, as a plan file would give it."""
    return {key: f.kind.dump(getattr(made, f.name)) for key, f in fields_of(type(made)).items()}


def model_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for key, f in fields_of(cls).items():
        prop = f.kind.schema(defs)
        if f.description:
            prop["description"] = f.description
        if not f.required:
            prop["default"] = None if f.default is None else f.kind.dump(f.default)
        properties[key] = prop
    found = {"type": "object", "additionalProperties": False, "properties": properties}
    required = [key for key, f in fields_of(cls).items() if f.required]
    if required:
        found["required"] = required
    return found


def json_schema(cls: type) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = model_schema(cls, defs)
    return {**root, "$defs": dict(sorted(defs.items()))}
