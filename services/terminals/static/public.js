/* The public pages' common helpers (no token): the centre the address names, dates and times as the hall says
   them (Asia/Shanghai, whatever the phone's zone), and a refusal's words next to the field it names. */
"use strict";

const Public = (() => {
  const WEEKDAYS = "日一二三四五六";
  const center = document.body.dataset.center || null;
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false,
  });

  /* An instant ("2026-12-09T01:00:00Z", "...+08:00") or a local date ("2026-12-09"): its local parts. */
  function local(value) {
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
      const [y, m, d] = value.split("-").map(Number);
      return { y, m, d, w: new Date(Date.UTC(y, m - 1, d)).getUTCDay(), hm: null };
    }
    const date = new Date(value);
    const p = Object.fromEntries(parts.formatToParts(date).map((x) => [x.type, x.value]));
    const [y, m, d] = [Number(p.year), Number(p.month), Number(p.day)];
    const hour = p.hour === "24" ? "00" : p.hour;
    return { y, m, d, w: new Date(Date.UTC(y, m - 1, d)).getUTCDay(), hm: `${hour}:${p.minute}` };
  }

  const key = (value) => { const t = local(value); return `${t.y}-${String(t.m).padStart(2, "0")}-${String(t.d).padStart(2, "0")}`; };
  const day = (value) => { const t = local(value); return `${t.m}月${t.d}日（周${WEEKDAYS[t.w]}）`; };
  const fullDay = (value) => { const t = local(value); return `${t.y}年${t.m}月${t.d}日`; };
  const time = (value) => local(value).hm;
  const dateTime = (value) => { const t = local(value); return `${t.y}年${t.m}月${t.d}日 ${t.hm}`; };

  const chinese = (text) => /[\u3400-\u9fff]/.test(text || "");

  /* Every field message of a form cleared. */
  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid=true]").forEach((input) => input.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((box) => { box.textContent = ""; box.hidden = true; });
  }

  /* A message under the field `name` (its box is #<form id>-<name>-error), the field marked and focused. */
  function fieldError(form, name, text) {
    const box = document.getElementById(`${form.id}-${name}-error`);
    if (!box) return false;
    box.textContent = text;
    box.hidden = false;
    const input = form.elements[name];
    const target = input && input.length !== undefined && !input.tagName ? input[0] : input;
    if (target && target.setAttribute) {
      target.setAttribute("aria-invalid", "true");
      target.focus();
    }
    return true;
  }

  /* The key of `fields` a problem's field names: itself, or what it is part of ("subject.window" -> "subject"). */
  function fieldOf(error, fields) {
    const field = error.problem && error.problem.field;
    if (!field) return null;
    if (fields[field]) return field;
    const head = field.split(".")[0];
    return fields[head] ? head : null;
  }

  /* The words for a refusal: the problem's own when it has Chinese ones, else the page's for its field or
     status. `fields`: {field: [label, what to do]}. */
  function explain(error, fields = {}, statuses = {}) {
    const field = fieldOf(error, fields);
    const known = field && fields[field];
    const invalid = error.status === 400 || error.status === 422;
    if (chinese(error.message)) return known && invalid ? `${known[0]}：${error.message}` : error.message;
    if (statuses[error.status]) return statuses[error.status];
    if (known) return `${known[0]}有误：${known[1]}`;
    if (error.status === 429) return "访问过于频繁，请稍后再试";
    if (error.status >= 500 || error.status === 0) return "服务暂时不可用，请稍后再试";
    return "提交的内容有误，请核对后重试";
  }

  /* A refusal of a form's request: in words in `box`, and under the field it names (when the page has a place
     for that field's message). */
  function refuse(form, error, box, fields = {}, statuses = {}) {
    const field = fieldOf(error, fields);
    const text = explain(error, fields, statuses);
    if (field && error.status < 500) fieldError(form, field, text);
    show(box, text);
    return text;
  }

  /* The browser's own checks of a form (required, pattern, length), told in the page's words under each field
     at fault (the forms are `novalidate`: no bubble that a screen reader misses); true when all pass. */
  function validate(form, fields = {}) {
    clearErrors(form);
    let first = true;
    for (const input of form.elements) {
      if (!input.name || !input.willValidate || input.validity.valid || !fields[input.name]) continue;
      const [label, advice] = fields[input.name];
      const verb = input.type === "radio" || input.tagName === "SELECT" ? "请选择" : "请填写";
      const text = input.validity.valueMissing ? `${verb}${label}` : `${label}有误：${advice}`;
      const box = document.getElementById(`${form.id}-${input.name}-error`);
      if (box) { box.textContent = text; box.hidden = false; }
      input.setAttribute("aria-invalid", "true");
      if (first) input.focus();
      first = false;
    }
    return first;
  }

  /* The page has drawn its first data: the UI benchmark (and the tests) wait for body[data-ready]. */
  function ready() { document.body.dataset.ready = "1"; }

  function show(box, text, kind = "error") {
    box.textContent = text;
    box.className = `alert ${kind}`;
    box.hidden = !text;
  }

  // a page that needs a centre and was opened without one has drawn all it will: the message
  if (!center && document.getElementById("no-center")) ready();

  return { center, local, key, day, fullDay, time, dateTime, chinese, clearErrors, fieldError, explain, refuse,
           validate, show, ready };
})();
