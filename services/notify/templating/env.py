"""The one Jinja2 environment of notify's templates: sandboxed, strict, plain text, with the hall's filters."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.clock import LOCAL_TZ

WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
_TRAILING_PUNCTUATION = re.compile(r"[。．.；;，,！!\s]+$")


def _blank(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:  # payload instants are aware; a naive one is taken as UTC, as the database keeps them
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ)


def local_time(value: datetime | None) -> str:
    """2026年12月3日 14:30 (Asia/Shanghai); empty for a missing value."""
    if _blank(value):
        return ""
    assert value is not None
    at = _local(value)
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def local_date(value: datetime | date | None) -> str:
    """2026年12月3日: an instant's local date, or a date as it is."""
    if _blank(value):
        return ""
    assert value is not None
    day = _local(value).date() if isinstance(value, datetime) else value
    return f"{day.year}年{day.month}月{day.day}日"


def clock(value: datetime | None) -> str:
    """14:30, local."""
    if _blank(value):
        return ""
    assert value is not None
    return f"{_local(value):%H:%M}"


def weekday(value: datetime | date | None) -> str:
    """星期四: the local weekday."""
    if _blank(value):
        return ""
    assert value is not None
    day = _local(value).date() if isinstance(value, datetime) else value
    return WEEKDAYS[day.weekday()]


def duration(seconds: int | float | None) -> str:
    """A wait as a person reads it: 不到1分钟, 约8分钟, 约1小时5分钟."""
    if _blank(seconds):
        return ""
    assert seconds is not None
    if seconds < 60:
        return "不到1分钟"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"约{minutes}分钟"
    hours, rest = divmod(minutes, 60)
    return f"约{hours}小时{rest}分钟" if rest else f"约{hours}小时"


def numbered(items: Iterable[Any] | None, start: int = 1) -> str:
    """One item a line, numbered: `1. 营业执照复印件` (the 一次性告知 lists every missing material so)."""
    if _blank(items):
        return ""
    assert items is not None
    return "\n".join(f"{n}. {item}" for n, item in enumerate(items, start))


def cn_list(items: Iterable[Any] | None) -> str:
    """Items joined with the enumeration comma: 身份证、户口簿."""
    if _blank(items):
        return ""
    assert items is not None
    return "、".join(str(item) for item in items)


def clause(value: Any) -> str:
    """A sentence without its closing punctuation, so a template can end it itself (理由：…。)."""
    if _blank(value):
        return ""
    return _TRAILING_PUNCTUATION.sub("", str(value))


LABELS: dict[str, str] = {
    # sanctions, complaints, alerts, appointments: the Literal values a notice names
    "warning": "警告", "criticism": "通报批评",
    "resolved": "已处理", "upheld": "投诉属实", "dismissed": "投诉不成立",
    "early_warning": "预警", "overdue": "超时", "vacant_window": "窗口空岗", "long_wait": "等候超时",
    "stage_overrun": "环节超时", "follow_up": "跟踪提醒", "bad_rating": "差评", "complaint": "投诉",
    "yellow": "黄色", "orange": "橙色", "red": "红色", "info": "提示",
    "approved": "准予", "refused": "不予",
    "in_person": "当面", "phone": "电话", "letter": "信函", "mailbox": "意见箱", "public": "网上",
    "window": "窗口", "post": "邮寄", "online": "网上",
}


def cn(value: Any) -> str:
    """The Chinese word of a code the events carry: warning → 警告, criticism → 通报批评; others as they are."""
    if _blank(value):
        return ""
    return LABELS.get(str(value), str(value))


def plain(value: Any) -> str:
    """Any value as a person reads it: instants and dates local and in Chinese, lists with 、, mappings as
    name：value pairs (a generic template's `data`)."""
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date):
        return local_date(value)
    if isinstance(value, Mapping):
        return "；".join(f"{k}：{plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return "、".join(plain(v) for v in value)
    return str(value)


def _finalize(value: Any) -> Any:
    # an optional field the payload leaves empty prints as nothing, never as "None"
    return "" if value is None else value


FILTERS = {"local_time": local_time, "local_date": local_date, "clock": clock, "weekday": weekday,
           "duration": duration, "numbered": numbered, "cn_list": cn_list, "clause": clause, "cn": cn, "plain": plain}
GLOBALS = {"range", "dict", "namespace"}  # of Jinja's defaults; cycler, joiner and lipsum are not needed


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False,  # SMS and plain-text mail: nothing is HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,  # a line holding only a {% tag %} leaves no empty line behind
        lstrip_blocks=True,
        finalize=_finalize,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    for name in set(env.globals) - GLOBALS:
        del env.globals[name]
    return env


ENV = _environment()
