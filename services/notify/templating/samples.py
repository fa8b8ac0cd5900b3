"""What each template key sees, and sample values of it: a valid instance of any payload model built from its
field types alone (previews and the checks on save render against it)."""

from __future__ import annotations

import re
import types
import uuid
from collections import abc
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from services.notify import rules
from shared import clock
from shared.events import catalog  # noqa: F401  (registers every payload model)
from shared.events.envelope import EventData, registry

ANY: Any = object()
"""The type of what a template may look into freely: a generic template's `data`, a filter's result."""

PRIVATE_SUFFIXES = ("_sealed", "_hash")
"""Fields no message may show: contacts sealed for notify, keyed hashes of personal data."""

GENERIC_CONTEXT: dict[str, Any] = {"event_type": str, "occurred_at": datetime, "center_id": str | None, "data": ANY}


def payload_model(key: str) -> type[EventData] | None:
    """The payload model a rule's template sees (the latest version of its event); None for generic_* keys."""
    if key in rules.GENERIC_KEYS:
        return None
    rule = rules.BY_KEY[key]  # KeyError for an unknown key
    event_type = "appointment.booked" if rule.event_type == rules.REMINDER_EVENT else rule.event_type
    versions = [v for (t, v) in registry if t == event_type]
    if not versions:
        raise LookupError(f"rule {key}: no payload model for event {event_type}")
    return registry[(event_type, max(versions))]


def extras_of(key: str) -> dict[str, type]:
    """The variables a key's template has beyond its payload: the common ones and the rule's."""
    rule = rules.BY_KEY.get(key)
    return {**rules.COMMON_EXTRAS, **(rule.extras if rule else {})}


def context_types(key: str) -> dict[str, Any]:
    """Name → type of every top-level variable the key's template may use."""
    model = payload_model(key)
    fields = ({name: f.annotation for name, f in model.model_fields.items()
               if not name.endswith(PRIVATE_SUFFIXES)} if model is not None else dict(GENERIC_CONTEXT))
    return {**fields, **extras_of(key)}


# --- sample values ---------------------------------------------------------------------------------------

_MATERIALS = ("营业执照副本复印件", "法定代表人身份证复印件", "经营场所使用证明", "食品安全管理制度文本")
_STRINGS: dict[str, str] = {
    # by `<parent>.<field>` first, then by field name
    "item.name": "食品经营许可", "item.code": "SP001", "item_name": "食品经营许可", "name": "食品经营许可",
    "handler.display_name": "王芳", "clerk.display_name": "王芳", "agent.display_name": "陈刚", "display_name": "王芳",
    "taken_by.display_name": "王芳", "issued_by.display_name": "王芳", "from_handler.display_name": "周敏",
    "center_name": "玄武区政务服务中心", "recipient_name": "李明", "head_name": "赵强",
    "department_name": "区市场监督管理局", "department": "SCJ", "center_id": "320102",
    "case_no": "320102-2026-000123", "notice_no": "320102-GZ-20261203-0007", "number": "A012",
    "code": "Q7K2M9", "appointment_code": "Q7K2M9", "lookup_code": "K7Q2M9",
    "window": "12", "from_window": "12", "to_window": "15", "referred_window": "15",
    "place": "玄武区政务服务中心二楼B区12号窗口", "stage": "审查", "from_stage": "受理", "to_stage": "审查",
    "reason": "申请材料需进一步核实", "legal_basis": "《食品经营许可管理办法》第十六条",
    "text": "您的投诉已收到，我们将按时处理并答复您。", "comment": "同意", "note": "已处理",
    "notice_text": "关于对区市场监督管理局予以警告的通知\n文号：320102-DC-2026-00007\n\n区市场监督管理局：\n"
                   "　　经电子监察系统监测并经督查核实，你单位承办的“食品经营许可”承诺办结时限已届满，超时2个工作日。\n"
                   "　　请你单位于2026年12月10日前完成整改。",
    "complaint.number": "320102-TS-20261203-0001", "sanction.notice_no": "320102-DC-2026-00007",
    "alert.text": "预警：办件320102-2026-000123（食品经营许可，承办人王芳）将于2026年12月10日到期，请抓紧办理。",
    "complaint.category": "服务态度", "category": "服务态度", "message": "外出办事，10分钟后回来", "announcement": "请A012号到12号窗口办理",
    "to_authority": "市市场监督管理局", "fees": "免费", "fees_settled": "免费", "service_code": "SP", "prefix": "A",
    "applicant_masked": "张*", "id_number_masked": "3201**********1234", "phone_masked": "138****5678",
    "contact_masked": "138****5678", "head_phone_masked": "139****1234", "head_email_masked": "z***@example.gov.cn",
    "email_masked": "w***@example.gov.cn", "org": "南京某某餐饮管理有限公司", "feed": "supervision:320102",
    "event_type": "case.accepted", "status_before": "waiting", "by": "u-0007", "approved_by": "u-0003",
    "proposed_by": "u-0007", "issued_by": "u-0007", "clerk_id": "u-0007", "id": "u-0007",
    "post_title": "综合受理员", "fee_basis": "不收费", "description": "窗口受理申请材料",
    "complaint_hotline": "025-12345", "missing": _MATERIALS[0], "missing_materials": _MATERIALS[0],
    "materials": _MATERIALS[0], "recipients": "department:320102:SCJ",
}
_LIST_STRINGS: dict[str, tuple[str, ...]] = {
    "missing": _MATERIALS, "missing_materials": _MATERIALS, "materials": _MATERIALS,
    "recipients": ("department:320102:SCJ", "supervision:320102"), "windows": ("12", "15"),
    "centers": ("320102", "320104"), "attended": ("SCJ", "WJW"), "absent": ("ZJJ", "GAJ"),
    "conditions": ("申请人持有合法有效的营业执照", "具有与经营的食品品种相适应的经营场所"),
}
_INTS: dict[str, int] = {
    "days": 5, "people_ahead": 3, "estimated_wait_s": 480, "wait_s": 600, "service_s": 420, "overdue_days": 2,
    "overdue_working_days": 2, "ordinal": 1, "year": 2026, "rating": 2, "limit_days": 5, "promised_limit_days": 5,
    "legal_limit_days": 20, "silent_s": 120, "away_s": 300, "behind": 3, "recalls": 1, "special_count": 1,
    "shift_days": 3, "calendar_version": 3, "clock_version": 1, "tier": 3, "priority_streak": 0, "position": 1,
}
_OFFSETS: dict[str, timedelta] = {  # instants relative to the sample's "now", by the field name's ending
    "due_at": timedelta(days=7, hours=8), "limit_at": timedelta(days=10), "warn_at": timedelta(days=6),
    "follow_up_at": timedelta(days=20), "slot_start": timedelta(days=1), "reply_at": timedelta(hours=4),
    "last_heartbeat_at": timedelta(minutes=-2), "lost_at": timedelta(minutes=-3),
}


def _base() -> datetime:
    """A plausible "now" for samples: this morning 09:30 local, from the process clock."""
    return clock.local_instant(clock.today_local(), time(9, 30))


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type of an annotation and the constraints (annotated_types, pattern) its Annotated layers add."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return annotation, metadata


def optional_inner(annotation: Any) -> Any:
    """X of `X | None`; the annotation itself otherwise."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _constraint(metadata: list[Any], kind: type, attr: str) -> Any:
    return next((getattr(item, attr) for item in metadata if isinstance(item, kind)), None)


def _pattern(metadata: list[Any]) -> str | None:
    return next((item.pattern for item in metadata if isinstance(getattr(item, "pattern", None), str)), None)


def _string(name: str, parent: str, metadata: list[Any]) -> str:
    value = _STRINGS.get(f"{parent}.{name}") or _STRINGS.get(name)
    if value is None:
        value = ("sealed:v1:6f2d9c" if name.endswith("_sealed") else "9f2c4e7a1b" if name.endswith("_hash")
                 else "示例")
    pattern = _pattern(metadata)
    if pattern is not None and not re.fullmatch(pattern, value):
        for candidate in ("025-12345", "320102", "A01", "1", "abc", "a"):
            if re.fullmatch(pattern, candidate):
                value = candidate
                break
        else:
            raise ValueError(f"{parent}.{name}: no sample value matches the pattern {pattern}")
    low = _constraint(metadata, annotated_types.MinLen, "min_length") or 0
    high = _constraint(metadata, annotated_types.MaxLen, "max_length")
    if len(value) < low:
        value = value + "示" * (low - len(value))
    if high is not None:
        value = value[:high]
    return value


def _number(name: str, metadata: list[Any], kind: type) -> Any:
    value: Any = kind(_INTS.get(name, 1))
    for item in metadata:
        bound: Any = next((getattr(item, a) for a in ("ge", "gt", "le", "lt") if hasattr(item, a)), None)
        if isinstance(item, annotated_types.Ge) and value < bound:
            value = bound
        elif isinstance(item, annotated_types.Gt) and value <= bound:
            value = bound + 1
        elif isinstance(item, annotated_types.Le) and value > bound:
            value = bound
        elif isinstance(item, annotated_types.Lt) and value >= bound:
            value = bound - 1
    return kind(value)


def _instant(name: str) -> datetime:
    offset = next((delta for ending, delta in _OFFSETS.items() if name.endswith(ending)), timedelta(0))
    return _base() + offset


def value_for(annotation: Any, name: str, parent: str = "", metadata: list[Any] | None = None) -> Any:
    """A sample value of `annotation` for a field called `name` (inside `parent`)."""
    annotation, more = _unwrap(annotation)
    metadata = [*(metadata or []), *more]
    annotation = optional_inner(annotation)  # an optional field is filled
    origin = get_origin(annotation)
    if annotation is ANY or annotation is Any or annotation is object:
        return "示例"
    if origin is Literal:
        options = get_args(annotation)
        # what a thing was before (previous_level, from_...) differs from what it is, where it can
        return options[1] if name.startswith(("previous", "from")) and len(options) > 1 else options[0]
    if origin in (Union, types.UnionType):
        return value_for(get_args(annotation)[0], name, parent)
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Set):
        (item, *_) = get_args(annotation) or (str,)
        low = _constraint(metadata, annotated_types.MinLen, "min_length") or 0
        high = _constraint(metadata, annotated_types.MaxLen, "max_length")
        count = max(2, low) if high is None else min(max(2, low), high)
        bare = _unwrap(optional_inner(item))[0]
        items: list[Any]
        if get_origin(bare) is Literal:
            options = get_args(bare)
            items = [options[n % len(options)] for n in range(count)]
        elif bare is str and name in _LIST_STRINGS:
            items = list(_LIST_STRINGS[name][:count])
            items += [f"{items[-1]}{n}" for n in range(len(items), count)]
        else:
            items = [_vary(value_for(item, name, parent), n) for n in range(count)]
        return (origin if origin in (tuple, set, frozenset) else list)(items)
    if origin in (dict, abc.Mapping):
        key_type, value_type = get_args(annotation) or (str, str)
        return {value_for(key_type, "key", name): value_for(value_type, name, parent)}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return sample(annotation, parent=name)
        if issubclass(annotation, bool):
            return False
        if issubclass(annotation, Enum):
            return next(iter(annotation))
        if issubclass(annotation, int):
            return _number(name, metadata, int)
        if issubclass(annotation, float):
            return _number(name, metadata, float)
        if issubclass(annotation, str):
            return _string(name, parent, metadata)
        if issubclass(annotation, datetime):
            return _instant(name)
        if issubclass(annotation, date):
            return _instant(name).astimezone(clock.LOCAL_TZ).date()
        if issubclass(annotation, time):
            return time(9, 0)
        if issubclass(annotation, timedelta):
            return timedelta(minutes=10)
        if issubclass(annotation, uuid.UUID):
            return uuid.UUID("6f2d9c1e-0000-4000-8000-000000000001")
    raise TypeError(f"{parent}.{name}: no sample for the type {annotation!r}")


def _vary(value: Any, n: int) -> Any:
    """The n-th item of a sample list: the second one differs from the first where that is easy."""
    if n == 0:
        return value
    if isinstance(value, str):
        return f"{value}{n + 1}"
    if isinstance(value, datetime):
        return value + timedelta(hours=n)
    return value


def sample(model: type[BaseModel], *, parent: str = "", sparse: bool = False) -> BaseModel:
    """A valid instance of `model` built from its fields' types: every optional field filled, two items in
    each list, constraints (ge, le, min_length, max_length, pattern) met; a field's non-empty default kept.

    `sparse`: the leanest valid instance instead, every optional field None and every list empty that may be
    (a template must not fail on the events that leave them so)."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if sparse and (empty := _empty(field)) is not _NOTHING:
            values[name] = empty
            continue
        default = field.get_default(call_default_factory=True)
        if default not in (None, [], {}, ()) and not field.is_required() and not isinstance(default, BaseModel):
            values[name] = default
            continue
        bare = _unwrap(optional_inner(_unwrap(field.annotation)[0]))[0]
        if sparse and isinstance(bare, type) and issubclass(bare, BaseModel):
            values[name] = sample(bare, parent=name, sparse=True)
            continue
        values[name] = value_for(field.annotation, name, parent, list(field.metadata))
    return model.model_validate(values)


_NOTHING = object()


def _empty(field: FieldInfo) -> Any:
    """None or [] where the field takes it; _NOTHING where it does not."""
    annotation, metadata = _unwrap(field.annotation)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation):
        return None
    if get_origin(annotation) in (list, dict) and not _constraint([*metadata, *field.metadata],
                                                                   annotated_types.MinLen, "min_length"):
        return [] if get_origin(annotation) is list else {}
    return _NOTHING


def sample_extras(key: str) -> dict[str, Any]:
    """Plausible values of the key's extras (the centre's name, the recipient's, the lookup code...)."""
    return {name: value_for(kind, name) for name, kind in extras_of(key).items()}


def sample_payload(key: str) -> EventData:
    """The sample payload a key's template is checked and previewed against (a generic key: a case.accepted)."""
    model = payload_model(key) or registry[("case.accepted", 1)]
    instance = sample(model)
    assert isinstance(instance, EventData)
    return instance


def sample_context(key: str) -> dict[str, Any]:
    """The payload sample, the common extras and the rule's extras, as the template sees them when sent."""
    from services.notify.templating.store import context_for

    payload = sample_payload(key)
    envelope = {"event_type": payload.type, "occurred_at": _base(), "center_id": "320102"}
    return context_for(key, payload, envelope_fields=envelope, **sample_extras(key))
