"""The checks a template passes before it is saved (never at send time): its syntax, every variable and
attribute path against the event's payload model, the sandbox, the channel's subject rule and the SMS length."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import SecurityError
from pydantic import BaseModel

from services.notify import rules
from services.notify.templating import samples
from services.notify.templating.env import ENV
from services.notify.templating.samples import ANY, optional_inner
from services.notify.templating.store import (
    PRIVATE_SUFFIXES,
    EnvelopeData,
    Rendered,
    context_for,
    render_source,
)
from shared.errors import AppError, NotFound
from shared.events.envelope import EventData

SMS_MAX = 500
"""Characters a rendered SMS may have (the provider splits it into 67-character parts)."""
SOURCE_MAX = 20_000

_LOOP = object()  # the type of `loop` inside a {% for %}
_LOOP_ATTRS = {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0",
               "previtem", "nextitem", "cycle", "changed"}
_LIST_FILTERS = {"sort", "reverse", "unique", "list", "select", "reject", "selectattr", "rejectattr", "batch",
                 "slice"}  # a list of the same items (batch and slice: of lists of them; good enough for checks)
_ITEM_FILTERS = {"first", "last", "random", "min", "max"}
_SAME_FILTERS = {"default", "d"}
_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class InvalidTemplate(AppError):
    """A template refused on save: the problem names the field (subject or body) and the reason."""

    status, code = 422, "invalid_template"


def channel_of(key: str) -> str:
    if key in rules.GENERIC_KEYS:
        return rules.GENERIC_KEYS[key]
    if key in rules.BY_KEY:
        return rules.BY_KEY[key].channel
    raise NotFound(f"no template {key}", field="key")


def validate(key: str, subject: str | None, body: str) -> tuple[str | None, str]:
    """The (subject, body) to save, or an InvalidTemplate (422) naming the field and the reason."""
    channel = channel_of(key)
    subject = subject if subject is not None and subject.strip() else None
    if channel == "email" and subject is None:
        raise InvalidTemplate("an e-mail template needs a subject", field="subject")
    if channel != "email" and subject is not None:
        raise InvalidTemplate(f"a {channel} template has no subject (send null)", field="subject")
    if not body.strip():
        raise InvalidTemplate("the body is empty", field="body")
    types_ = samples.context_types(key)
    for name, source in (("subject", subject), ("body", body)):
        if source is None:
            continue
        if len(source) > SOURCE_MAX:
            raise InvalidTemplate(f"at most {SOURCE_MAX} characters", field=name)
        if name == "subject" and "\n" in source.strip():
            raise InvalidTemplate("a subject is one line", field=name)
        _check_source(name, source, types_)
    rendered = _render_samples(key, subject, body)
    if channel == "sms" and len(rendered.body) > SMS_MAX:
        raise InvalidTemplate(f"the SMS is {len(rendered.body)} characters on the sample data: at most {SMS_MAX}",
                              field="body", length=len(rendered.body))
    return subject, body


def _check_source(field: str, source: str, context: dict[str, Any]) -> None:
    try:
        tree = ENV.parse(source)
        ENV.compile(tree)  # an unknown filter or test is found when compiling
    except TemplateSyntaxError as exc:
        raise InvalidTemplate(f"line {exc.lineno}: {exc.message}", field=field, line=exc.lineno) from None
    except TemplateError as exc:
        raise InvalidTemplate(f"{exc.message}", field=field) from None
    problem = next(_Checker(context).problems(tree), None)
    if problem is not None:
        line, reason = problem
        raise InvalidTemplate(f"line {line}: {reason}", field=field, line=line)


def _render_samples(key: str, subject: str | None, body: str) -> Rendered:
    """Render against the full sample (every optional filled) and the sparse one (every optional None, every
    list empty): what the sandbox refuses, or what fails on either, is refused now rather than at send time."""
    full = samples.sample_context(key)
    model = samples.payload_model(key)
    sparse = dict(full)
    if model is not None:
        lean = samples.sample(model, sparse=True)
        assert isinstance(lean, EventData)
        sparse.update(context_for(key, lean, **samples.sample_extras(key)))
    else:
        sparse["data"] = EnvelopeData()
    for which, context in (("the sample data", full), ("an event that leaves its optional fields empty", sparse)):
        for field, source in (("subject", subject), ("body", body)):
            if source is not None:
                _try_render(field, source, context, which)
    return render_source(subject, body, full)


def _try_render(field: str, source: str, context: dict[str, Any], which: str) -> None:
    try:
        ENV.from_string(source).render(context)
    except SecurityError as exc:
        raise InvalidTemplate(f"refused by the sandbox: {exc}", field=field) from None
    except UndefinedError as exc:
        raise InvalidTemplate(f"fails on {which}: {exc} (guard it with {{% if … %}})", field=field) from None
    except Exception as exc:  # noqa: BLE001 - whatever a template does wrong on sample data is the editor's 422
        raise InvalidTemplate(f"fails on {which}: {type(exc).__name__}: {exc}", field=field) from None


# --- the paths a template uses, against the types of its context --------------------------------------------

class _Checker:
    """Walks a parsed template with the type of every name in scope; yields (line, reason) of the first
    problems: an unknown name or attribute, a private one, a sealed contact or hash, a tag needing a loader."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.globals = {name: ANY for name in ENV.globals}
        self.context = context

    def problems(self, tree: nodes.Template) -> Iterator[tuple[int, str]]:
        scope = {**self.globals, **self.context}
        yield from self._block(tree.body, scope)

    def _block(self, body: list[nodes.Node], scope: dict[str, Any]) -> Iterator[tuple[int, str]]:
        for node in body:  # a {% set %} is seen by what follows it in the same block
            yield from self._node(node, scope)

    def _node(self, node: nodes.Node, scope: dict[str, Any]) -> Iterator[tuple[int, str]]:
        if isinstance(node, _FORBIDDEN):
            yield node.lineno, f"{{% {type(node).__name__.lower()} %}} is not allowed: a message stands alone"
        elif isinstance(node, nodes.For):
            item, problems = self._type(node.iter, scope)
            yield from problems
            inner = dict(scope)
            yield from self._bind(node.target, self._item(item), inner)
            inner["loop"] = _LOOP
            if node.test is not None:
                yield from self._type(node.test, inner)[1]
            yield from self._block(node.body, inner)
            yield from self._block(node.else_, dict(scope))
        elif isinstance(node, nodes.Assign):
            kind, problems = self._type(node.node, scope)
            yield from problems
            yield from self._bind(node.target, kind, scope)
        elif isinstance(node, nodes.AssignBlock):
            yield from self._block(node.body, dict(scope))
            yield from self._bind(node.target, str, scope)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=True):
                kind, problems = self._type(value, scope)
                yield from problems
                yield from self._bind(target, kind, inner)
            yield from self._block(node.body, inner)
        elif isinstance(node, nodes.Macro):
            inner = dict(scope)
            for arg in node.args:
                inner[arg.name] = ANY
            for default in node.defaults:
                yield from self._type(default, scope)[1]
            inner.update({"varargs": ANY, "kwargs": ANY, "caller": ANY})
            yield from self._block(node.body, inner)
            scope[node.name] = ANY
        elif isinstance(node, nodes.CallBlock):
            yield from self._type(node.call, scope)[1]
            inner = {**scope, **{arg.name: ANY for arg in node.args}}
            yield from self._block(node.body, inner)
        elif isinstance(node, nodes.Expr):
            yield from self._type(node, scope)[1]
        elif isinstance(node, nodes.Stmt | nodes.Template | nodes.Helper):
            for child in node.iter_child_nodes():
                if isinstance(child, nodes.Expr):
                    yield from self._type(child, scope)[1]
                else:
                    yield from self._node(child, scope)
        # anything else (TemplateData...) holds no name

    def _bind(self, target: nodes.Node, kind: Any, scope: dict[str, Any]) -> Iterator[tuple[int, str]]:
        if isinstance(target, nodes.Name):
            if target.name.startswith("_"):
                yield target.lineno, f"{target.name}: names starting with _ are not allowed"
            scope[target.name] = kind
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                yield from self._bind(item, ANY, scope)
        elif isinstance(target, nodes.NSRef):
            if target.name not in scope:
                yield target.lineno, f"{target.name}: no such variable"
            if target.attr.startswith("_"):
                yield target.lineno, f"{target.attr}: names starting with _ are not allowed"

    def _type(self, node: nodes.Node, scope: dict[str, Any]) -> tuple[Any, list[tuple[int, str]]]:
        """The type of an expression and the problems found in it."""
        problems: list[tuple[int, str]] = []
        kind = self._expr(node, scope, problems)
        return kind, problems

    def _expr(self, node: nodes.Node, scope: dict[str, Any], problems: list[tuple[int, str]]) -> Any:
        if isinstance(node, nodes.Name):
            if node.name.startswith("_"):
                problems.append((node.lineno, f"{node.name}: names starting with _ are not allowed"))
                return ANY
            if node.name.endswith(PRIVATE_SUFFIXES) and node.name not in scope:
                problems.append((node.lineno, f"{node.name}: sealed contacts and hashes are not for messages"))
                return ANY
            if node.name not in scope:
                known = ", ".join(sorted(n for n in self.context))
                problems.append((node.lineno, f"{node.name}: no such variable (this template has {known})"))
                return ANY
            return scope[node.name]
        if isinstance(node, nodes.Getattr):
            owner = self._expr(node.node, scope, problems)
            return self._member(owner, node.attr, _path(node), node.lineno, problems)
        if isinstance(node, nodes.Getitem):
            owner = self._expr(node.node, scope, problems)
            if isinstance(node.arg, nodes.Slice):
                for part in node.arg.iter_child_nodes():
                    self._expr(part, scope, problems)
                return owner
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                return self._member(owner, node.arg.value, _path(node), node.lineno, problems, item=True)
            self._expr(node.arg, scope, problems)
            return self._item(owner) if _is_sequence(owner) else _value_type(owner)
        if isinstance(node, nodes.Filter | nodes.Test):
            owner = self._expr(node.node, scope, problems) if node.node is not None else ANY
            self._arguments(node, scope, problems)
            if node.name == "attr":
                arg = node.args[0] if node.args else None
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    return self._member(owner, arg.value, f"attr({arg.value!r})", node.lineno, problems)
                problems.append((node.lineno, "attr: give the attribute as a quoted name"))
                return ANY
            if isinstance(node, nodes.Filter):
                if node.name in _LIST_FILTERS or node.name in _SAME_FILTERS:
                    return owner
                if node.name in _ITEM_FILTERS:
                    return self._item(owner)
            return ANY
        if isinstance(node, nodes.Call):
            self._expr(node.node, scope, problems)
            self._arguments(node, scope, problems)
            return ANY
        if isinstance(node, nodes.Const):
            return type(node.value)
        for child in node.iter_child_nodes():
            self._expr(child, scope, problems)
        return ANY

    def _arguments(self, node: nodes.Call | nodes.Filter | nodes.Test, scope: dict[str, Any],
                   problems: list[tuple[int, str]]) -> None:
        for arg in (*node.args, *(kw.value for kw in node.kwargs)):
            self._expr(arg, scope, problems)
        for extra in (node.dyn_args, node.dyn_kwargs):
            if extra is not None:
                self._expr(extra, scope, problems)

    def _member(self, owner: Any, name: str, path: str, line: int, problems: list[tuple[int, str]],
                item: bool = False) -> Any:
        if name.startswith("_"):
            problems.append((line, f"{path}: names starting with _ are not allowed"))
            return ANY
        if name.endswith(PRIVATE_SUFFIXES):
            problems.append((line, f"{path}: sealed contacts and hashes are not for messages"))
            return ANY
        if owner is ANY:
            return ANY
        if owner is _LOOP:
            if name in _LOOP_ATTRS:
                return ANY
            problems.append((line, f"{path}: loop has {', '.join(sorted(_LOOP_ATTRS))}"))
            return ANY
        kinds = _members(owner)
        if _is_mapping(owner):
            return ANY if hasattr(dict, name) and not item else _value_type(owner)
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                if name in kind.model_fields:
                    return kind.model_fields[name].annotation
            elif hasattr(_python_type(kind), name):
                return ANY
        what = " or ".join(_describe(k) for k in kinds)
        fields = sorted({f for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)
                         for f in k.model_fields if not f.endswith(PRIVATE_SUFFIXES)})
        hint = f" (it has {', '.join(fields)})" if fields else ""
        problems.append((line, f"{path}: {what} has no field {name}{hint}"))
        return ANY

    def _item(self, kind: Any) -> Any:
        kind = optional_inner(samples._unwrap(kind)[0])
        if kind is ANY:
            return ANY
        origin = get_origin(kind)
        if origin in (list, tuple, set, frozenset):
            args = get_args(kind)
            return args[0] if args else ANY
        if origin is dict:
            args = get_args(kind)
            return args[0] if args else ANY
        if kind is str:
            return str
        return ANY


def _members(kind: Any) -> list[Any]:
    kind = optional_inner(samples._unwrap(kind)[0])
    if get_origin(kind) in (Union, types.UnionType):
        return [optional_inner(samples._unwrap(k)[0]) for k in get_args(kind) if k is not type(None)]
    return [kind]


def _is_mapping(kind: Any) -> bool:
    return get_origin(optional_inner(samples._unwrap(kind)[0])) is dict


def _is_sequence(kind: Any) -> bool:
    return get_origin(optional_inner(samples._unwrap(kind)[0])) in (list, tuple, set, frozenset)


def _value_type(kind: Any) -> Any:
    kind = optional_inner(samples._unwrap(kind)[0])
    if get_origin(kind) is dict:
        args = get_args(kind)
        return args[1] if len(args) == 2 else ANY
    return ANY


def _python_type(kind: Any) -> Any:
    origin = get_origin(kind)
    if origin is Literal:
        return type(get_args(kind)[0])
    return origin or kind


def _describe(kind: Any) -> str:
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).replace("typing.", "")


def _path(node: nodes.Node) -> str:
    """`case.item.name` of a Getattr / Getitem chain, as the editor wrote it."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value)
    if isinstance(node, nodes.Getattr):
        return f"{_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        arg = node.arg.value if isinstance(node.arg, nodes.Const) else "…"
        return f"{_path(node.node)}[{arg!r}]"
    return "(…)"


# --- what an editor may use ---------------------------------------------------------------------------------

def variables(key: str) -> list[str]:
    """The dotted paths a key's template may use: `case.item.name`, `missing_materials[]` (a list), ..."""
    out: list[str] = []
    for name, kind in samples.context_types(key).items():
        if name == "type" or name.endswith(PRIVATE_SUFFIXES):
            continue
        out.extend(_paths(name, kind, 0))
    return out


def _paths(prefix: str, kind: Any, depth: int) -> list[str]:
    bare = optional_inner(samples._unwrap(kind)[0])
    if kind is ANY:
        return [f"{prefix}.…"]
    if isinstance(bare, type) and issubclass(bare, BaseModel) and depth < 6:
        return [path for name, field in bare.model_fields.items() if not name.endswith(PRIVATE_SUFFIXES)
                for path in _paths(f"{prefix}.{name}", field.annotation, depth + 1)]
    if get_origin(bare) in (list, tuple, set, frozenset):
        (item, *_) = get_args(bare) or (str,)
        inner = optional_inner(samples._unwrap(item)[0])
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return _paths(f"{prefix}[]", inner, depth + 1)
        return [f"{prefix}[]"]
    return [prefix]

