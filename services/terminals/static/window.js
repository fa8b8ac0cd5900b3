/* 窗口工作台: the clerk's day at the window terminal. The terminal's device key, then the clerk's (or chief
   representative's) sign-in, whose token carries the window and centre. At the top, always: the current ticket
   and the calling controls (sign in, call next, recall, skip, start, finish, transfer, away with a message, back,
   sign out) and the waiting counts, live over the display feed; the terminal beats every 30 s. Below, in tabs:
   accepting a case for the current ticket (or the one-time notice when required materials are missing) with its
   receipt PDF; the clerk's open cases coloured by their clock; a chief representative's approvals; the
   first-inquiry register (首问); the window's messages (notify's window feed). */
"use strict";

(async () => {
  const { api, el } = Hall;
  const $ = (id) => document.getElementById(id);
  const OPEN_STATES = ["in_progress", "supplement", "special", "extension_pending", "refusal_pending", "forwarded"];
  const STATUS_WORDS = {
    in_progress: "办理中", supplement: "补正中（暂停计时）", special: "特别程序（暂停计时）",
    extension_pending: "延期待审批", refusal_pending: "不予办理待审批", forwarded: "已上报（暂停计时）",
    completed: "已办结", delivered: "已送达", withdrawn: "已撤回",
  };
  const TICKET_WORDS = { called: "已呼叫，等候办事人到窗口", serving: "办理中" };
  const WINDOW_WORDS = { open: "在岗", away: "暂离", closed: "暂停服务", signed_out: "未签到" };
  // what the services say in English, said in Chinese for the clerk (a problem with Chinese words is shown as is)
  const CODES = {
    window_taken: "本窗口已有其他工作人员签到，请其先签退", ticket_active: "当前号票尚未办结，请先办结或转办",
    not_signed_in: "您尚未在本窗口签到", not_called: "该号票不是已呼叫状态", not_serving: "该号票尚未开始办理",
    not_assigned: "您不是本窗口的 A 岗或 B 岗人员", already_away: "已是暂离状态", not_away: "当前不是暂离状态",
    unknown_window: "没有这个窗口", unknown_service: "没有这项业务", wrong_window: "本终端不属于该窗口",
    wrong_department: "该事项不属于您的单位", unknown_item: "没有这个事项（或已停用）",
    invalid_id_number: "身份证号码有误，请核对", invalid_phone: "手机号码有误，请核对",
    invalid_contact: "联系方式有误：请填写手机号码或电子邮箱", case_overdue: "办件已超期，不能再暂停或延期",
    second_supplement: "每件只能补正一次", second_extension: "每件只能延期一次",
    refusal_needs_approval: "不予办理须经首席代表审批", not_last_stage: "尚未到最后环节，请先转入下一环节",
    last_stage: "已是最后环节", extension_too_long: "延期天数超过事项允许的上限", not_shorter: "新的承诺时限须短于原时限",
    limit_in_past: "新的时限已经过去", illegal_transition: "办件当前状态不允许此操作",
    notice_used: "该告知书已用于受理", notice_other_item: "该告知书属于其他事项",
    notice_other_applicant: "该告知书属于其他申请人", unknown_notice: "没有这份一次性告知书",
    promise_in_past: "承诺答复时间须晚于现在", no_outcome: "请填写答复、引导窗口或承诺答复时间",
    answered_at_once: "当场答复的不再填写引导窗口或承诺时间", unknown_material: "材料不在该事项的清单中",
    rate_limited: "操作过于频繁，请稍后再试", day_closed: "今日已停止办理",
  };

  function words(error) {
    if (error.code && CODES[error.code]) return CODES[error.code];
    if (/[\u3400-\u9fff]/.test(error.message || "")) return error.message;
    if (error.status === 0 || error.status >= 500) return "服务暂时不可用，请稍后再试";
    if (error.status === 403) return "无权进行此操作";
    if (error.status === 404) return "未找到";
    return "操作未完成，请核对后重试";
  }

  const device = await Hall.DeviceSession.open("terminal");
  const session = await Staff.PersonSession.open("window", { roles: ["clerk", "chief_rep"], terminal: device });
  const center = session.center;
  const number = session.window;
  const me = session.claims.sub;
  const role = session.claims.role;
  const department = session.claims.department;
  const chief = role === "chief_rep";
  const c = encodeURIComponent(center);

  const state = {
    window: null, services: [], windows: [], waiting: {}, windowState: "signed_out", mine: false,
    awayMessage: null, current: null, items: [], cases: [], approvals: [], messages: [], unread: 0,
    accepted: null, notice: null, loads: 0, beats: 0,
  };
  window.hallWindowTerminal = { state, session, device, feeds: {} };

  /* A call with the person's token; an expired one is renewed once, a refused renewal signs out. */
  async function call(path, options = {}) {
    try {
      return await api(path, { ...options, token: await session.token() });
    } catch (error) {
      if (error.status !== 401) throw error;
      session.expire();
      try {
        return await api(path, { ...options, token: await session.token() });
      } catch (again) {
        if (again.status === 401 && !session.refreshToken) location.reload();
        throw again;
      }
    }
  }

  /* A PDF fetched with the token (a plain link sends none) and saved through a blob URL. */
  async function download(path, filename) {
    const send = async () => fetch(Hall.API + path, { headers: { Authorization: `Bearer ${await session.token()}` }, cache: "no-store" });
    let response = await send();
    if (response.status === 401) { session.expire(); response = await send(); }
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (_) { problem = null; }
      throw new Hall.ApiError(response.status, problem);
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  /* Runs a button's action once at a time, its refusal in words. */
  async function act(button, work) {
    if (button && button.disabled) return;
    if (button) button.disabled = true;
    try { await work(); } catch (error) { Hall.showStatus(words(error), "error"); } finally {
      if (button) button.disabled = false;
      render();
    }
  }

  const localDate = (value) => {
    const [, m, d] = value.split("-").map(Number);
    return `${m}月${d}日`;
  };
  const localTime = (value) => new Date(value).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Shanghai" });
  const serviceName = (code) => (state.services.find((s) => s.code === code) || { name: code }).name;
  const itemOf = (code) => state.items.find((i) => i.code === code);

  // the calling area

  function render() {
    const signedIn = state.mine && state.windowState !== "signed_out";
    const away = signedIn && state.windowState === "away";
    const current = signedIn ? state.current : null;
    $("wt-state").dataset.state = signedIn ? state.windowState : "signed_out";
    $("wt-state").textContent = signedIn ? (away ? `暂离：${state.awayMessage || ""}` : WINDOW_WORDS[state.windowState] || state.windowState) : "未签到";
    $("current-number").textContent = current ? current.number : "—";
    $("current-status").textContent = !signedIn ? "未签到，请先签到上岗"
      : away ? "暂离中，回岗后继续叫号"
      : current ? `${serviceName(current.service_code)} · ${TICKET_WORDS[current.status] || current.status}${current.recalls ? `（已重呼 ${current.recalls} 次）` : ""}`
      : "空闲，可呼叫下一位";
    document.body.dataset.ticket = current ? current.status : "none";
    const enable = {
      "sign-in": !signedIn, "call-next": signedIn && !away && !current, recall: !!current && current.status === "called",
      skip: !!current && current.status === "called", start: !!current && current.status === "called",
      finish: !!current && current.status === "serving", "transfer-open": !!current && current.status === "serving",
      "away-open": signedIn && !away && !current, back: away, "sign-out": signedIn && !current,
    };
    for (const [id, on] of Object.entries(enable)) $(id).disabled = !on;
    $("sign-in").hidden = signedIn;
    $("sign-out").hidden = !signedIn;  // one takes the other's place
    $("back").hidden = !away;
    $("away-open").hidden = away;
    if (!enable["transfer-open"]) closeInline("transfer-form");
    if (!enable["away-open"]) closeInline("away-form");
    const served = state.window ? state.window.services.map((s) => s.service_code) : [];
    $("waiting").replaceChildren(...served.map((code) => el("li", { "data-service": code },
      el("span", { text: serviceName(code) }), el("strong", { class: "count", text: `${state.waiting[code] ?? 0} 人` }))));
    const ticketLabel = current ? `关联当前号票 ${current.number}` : "关联当前号票（暂无）";
    $("accept-ticket-label").textContent = ticketLabel;
    $("accept-ticket").disabled = !current;
  }

  function applyStatus(status) {
    state.services = status.services;
    for (const s of status.services) state.waiting[s.code] = s.waiting;
    const w = status.windows.find((x) => x.number === number);
    if (!w) return;
    state.windowState = w.state;
    state.mine = !!w.clerk && w.clerk.id === me;
    state.awayMessage = w.away_message;
    state.current = w.current_ticket && state.mine ? { ...w.current_ticket, recalls: (state.current && state.current.id === w.current_ticket.id) ? state.current.recalls : 0 } : null;
  }

  let loading = 0;
  let buffered = [];  // display-feed events that arrive while the hall's state is being read: applied after it
  async function loadHall() {
    loading += 1;
    try {
      const [status, win] = await Promise.all([
        call(`/queue/centers/${c}/status`), call(`/queue/centers/${c}/windows/${encodeURIComponent(number)}`)]);
      state.window = win;
      applyStatus(status);
      $("wt-window").textContent = `${number} 号窗口`;
      $("wt-window-name").textContent = win.name;
      state.loads += 1;
    } finally {
      loading -= 1;
      if (!loading) {
        const events = buffered;
        buffered = [];
        events.forEach(applyEvent);
      }
    }
    render();
  }

  function applyEvent(envelope) {
    if (loading) { buffered.push(envelope); return; }
    const d = envelope.data;
    if (envelope.type === "queue.waiting_counts") {
      if (d.center_id === center) Object.assign(state.waiting, d.waiting);
      render();
      return;
    }
    const at = (d.call && d.call.window) || d.window;
    if (at !== number) return;
    switch (envelope.type) {
      case "ticket.called":
      case "ticket.recalled":
        if (!state.current || state.current.id !== d.ticket.ticket_id) {
          state.current = { id: d.ticket.ticket_id, number: d.ticket.number, service_code: d.ticket.service_code, status: "called", recalls: d.recalls || 0 };
        }
        break;
      case "window.signed_in":
        state.mine = d.clerk.id === me;
        state.windowState = "open";
        if (!state.mine) { state.current = null; Hall.showStatus(`本窗口已由${d.clerk.display_name || "其他工作人员"}签到接替`, "error", 0); }
        break;
      case "window.signed_out":
        if (!d.clerk_id || d.clerk_id === me) { state.windowState = "signed_out"; state.current = null; }
        break;
      case "window.away": state.windowState = "away"; state.awayMessage = d.message; break;
      case "window.back": state.windowState = "open"; state.awayMessage = null; break;
      case "window.closed": state.windowState = "closed"; state.current = null; loadHall().catch(() => {}); return;
      case "window.upserted": loadHall().catch(() => {}); return;
      default: return;
    }
    render();
  }

  function closeInline(id) {
    const form = $(id);
    if (form.hidden) return;
    form.hidden = true;
    const opener = $(id === "transfer-form" ? "transfer-open" : "away-open");
    opener.setAttribute("aria-expanded", "false");
  }

  function openInline(id, opener) {
    const other = id === "transfer-form" ? "away-form" : "transfer-form";
    closeInline(other);
    $(id).hidden = false;
    opener.setAttribute("aria-expanded", "true");
    $(id).querySelector("select, input").focus();
  }

  const ticketPath = (action) => `/queue/tickets/${state.current.id}/${action}`;
  const windowPath = (action) => `/queue/centers/${c}/windows/${encodeURIComponent(number)}/${action}`;

  const actions = {
    "sign-in": async () => { await call(windowPath("sign-in"), { method: "POST" }); await loadHall(); Hall.showStatus("已签到上岗"); },
    "call-next": async () => {
      try {
        const ticket = await call(windowPath("call-next"), { method: "POST" });
        if (!ticket) { Hall.showStatus("当前没有等候的号票"); return; }
        state.current = { id: ticket.id, number: ticket.number, service_code: ticket.service_code, status: ticket.status, recalls: ticket.recalls };
      } catch (error) {
        if (error.code === "ticket_active") await loadHall();
        throw error;
      }
    },
    recall: async () => { const t = await call(ticketPath("recall"), { method: "POST" }); state.current.recalls = t.recalls; Hall.showStatus(`已重呼 ${t.number}`); },
    skip: async () => { const t = await call(ticketPath("skip"), { method: "POST" }); state.current = null; Hall.showStatus(`${t.number} 已过号`); },
    start: async () => { const t = await call(ticketPath("start"), { method: "POST" }); state.current.status = t.status; },
    finish: async () => { const t = await call(ticketPath("finish"), { method: "POST" }); state.current = null; Hall.showStatus(`${t.number} 已办结`); },
    back: async () => { await call(windowPath("back"), { method: "POST" }); state.windowState = "open"; state.awayMessage = null; },
    "sign-out": async () => { await call(windowPath("sign-out"), { method: "POST" }); state.windowState = "signed_out"; state.mine = false; state.current = null; Hall.showStatus("已签退"); },
  };
  for (const [id, work] of Object.entries(actions)) $(id).addEventListener("click", () => act($(id), work));

  $("transfer-open").addEventListener("click", () => {
    const mine = state.current ? state.current.service_code : null;
    const services = state.services.filter((s) => s.code !== mine).map((s) => el("option", { value: `service:${s.code}`, text: `业务：${s.name}` }));
    const windows = state.windows.filter((w) => w.number !== number && w.active).map((w) => el("option", { value: `window:${w.number}`, text: `窗口：${w.number} 号（${w.name}）` }));
    $("transfer-target").replaceChildren(el("optgroup", { label: "转至业务（排在首位）" }, services), el("optgroup", { label: "转至窗口" }, windows));
    openInline("transfer-form", $("transfer-open"));
  });
  $("away-open").addEventListener("click", () => openInline("away-form", $("away-open")));
  document.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => closeInline(b.dataset.close)));
  $("transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const [kind, target] = $("transfer-target").value.split(":");
    act(event.submitter, async () => {
      const body = kind === "window" ? { to_window: target } : { to_service_code: target };
      const t = await call(ticketPath("transfer"), { method: "POST", body });
      state.current = null;
      closeInline("transfer-form");
      Hall.showStatus(`${t.number} 已转${kind === "window" ? ` ${target} 号窗口` : `“${serviceName(target)}”`}`);
    });
  });
  $("away-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const message = $("away-message").value.trim();
    if (!message) { $("away-message").focus(); return; }
    act(event.submitter, async () => {
      const w = await call(windowPath("away"), { method: "POST", body: { message } });
      state.windowState = w.state;
      state.awayMessage = w.away_message;
      closeInline("away-form");
      $("back").focus();
    });
  });
  $("logout").addEventListener("click", () => act($("logout"), async () => {
    if (state.mine && state.windowState !== "signed_out" && !state.current) {
      await call(windowPath("sign-out"), { method: "POST" }).catch(() => {});
    }
    await session.logout();
    location.reload();
  }));

  const KEYS = { F2: "call-next", F3: "recall", F4: "skip", F7: "start", F8: "finish" };
  document.addEventListener("keydown", (event) => {
    const id = KEYS[event.key];
    if (!id || $("ask").open) return;
    event.preventDefault();
    $(id).click();
  });

  // tabs

  const tabs = [...document.querySelectorAll("[role=tab]")];
  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "tab-messages") { state.unread = 0; renderMessages(); }
    if (tab.id === "tab-cases") loadCases().catch((e) => Hall.showStatus(words(e), "error"));
    if (tab.id === "tab-approvals") loadApprovals().catch((e) => Hall.showStatus(words(e), "error"));
  }
  tabs.forEach((tab) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const shown = tabs.filter((t) => !t.hidden);
      const at = shown.indexOf(tab);
      const next = event.key === "ArrowRight" ? shown[(at + 1) % shown.length] : event.key === "ArrowLeft" ? shown[(at - 1 + shown.length) % shown.length] : null;
      if (next) { event.preventDefault(); select(next); next.focus(); }
    });
  });

  // accepting a case

  function drawItems() {
    const active = state.items.filter((i) => i.active);
    $("accept-item").replaceChildren(...active.map((i) => el("option", { value: i.code, text: `${i.name}（${i.code}）` })));
    $("inquiry-item").replaceChildren(el("option", { value: "", text: "不涉及具体事项" }), ...active.map((i) => el("option", { value: i.code, text: i.name })));
    drawMaterials();
  }

  function drawMaterials() {
    const item = itemOf($("accept-item").value);
    const list = item ? item.materials : [];
    $("accept-materials-list").replaceChildren(...(list.length ? list.map((m) => el("label", { class: "wt-check" },
      el("input", { type: "checkbox", name: "material", value: m.code, "data-name": m.name, "data-required": m.required ? "1" : null }),
      ` ${m.name} `, el("span", { class: m.required ? "badge required" : "badge", text: m.required ? "必交" : "选交" })))
      : [el("p", { class: "hint", text: "该事项无需提交材料清单" })]));
    checkMaterials();
  }

  function missingRequired() {
    return [...document.querySelectorAll("#accept-materials-list input[data-required]")].filter((b) => !b.checked);
  }

  function checkMaterials() {
    const missing = missingRequired();
    const box = $("accept-missing");
    box.hidden = !missing.length;
    box.textContent = missing.length ? `缺少必交材料：${missing.map((b) => b.dataset.name).join("、")}。提交将出具一次性告知书，不予受理。` : "";
    $("accept-submit").textContent = missing.length ? "出具一次性告知书" : "受理";
  }

  $("accept-item").addEventListener("change", drawMaterials);
  $("accept-materials").addEventListener("change", checkMaterials);

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid=true]").forEach((x) => x.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((x) => { x.hidden = true; x.textContent = ""; });
  }

  /* The refusal under the field it names (applicant.id_number -> id_number), else in the form's alert. */
  function refuse(form, error, alertBox) {
    const field = ((error.problem && error.problem.field) || "").split(".").pop();
    const box = $(`${form.id}-${field}-error`);
    if (box) {
      box.textContent = words(error);
      box.hidden = false;
      const input = form.elements[field];
      if (input && input.setAttribute) { input.setAttribute("aria-invalid", "true"); input.focus(); }
      return;
    }
    alertBox.textContent = words(error);
    alertBox.hidden = false;
    alertBox.focus && alertBox.focus();
  }

  function fieldMissing(form, name, text) {
    const box = $(`${form.id}-${name}-error`);
    box.textContent = text;
    box.hidden = false;
    form.elements[name].setAttribute("aria-invalid", "true");
    form.elements[name].focus();
  }

  $("accept-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    clearErrors(form);
    $("accept-error").hidden = true;
    const name = form.elements.name.value.trim();
    const id = form.elements.id_number.value.trim().toUpperCase();
    if (!name) { fieldMissing(form, "name", "请填写申请人姓名"); return; }
    if (!/^\d{17}[\dX]$/.test(id)) { fieldMissing(form, "id_number", "请填写 18 位身份证号码"); return; }
    const applicant = { name, id_number: id };
    const phone = form.elements.phone.value.trim();
    if (phone) applicant.phone = phone;
    const item = itemOf($("accept-item").value);
    if (!item) { $("accept-error").textContent = "请先选择办理事项"; $("accept-error").hidden = false; return; }
    const boxes = [...document.querySelectorAll("#accept-materials-list input")];
    const missing = missingRequired();
    act($("accept-submit"), async () => {
      try {
        if (missing.length) {
          const notice = await call("/cases/notices/incomplete", { method: "POST", body: {
            center, item_code: item.code, applicant, missing: missing.map((b) => b.value) } });
          showNotice(notice);
        } else {
          const body = { center, item_code: item.code, applicant, materials: boxes.filter((b) => b.checked).map((b) => b.dataset.name) };
          const noticeNo = form.elements.notice_no.value.trim();
          if (noticeNo) body.notice_no = noticeNo;
          if (state.current && $("accept-ticket").checked) body.ticket_id = state.current.id;
          const accepted = await call("/cases/cases", { method: "POST", body, idempotent: true });
          showAccepted(accepted, item);
          loadCases().catch(() => {});
        }
      } catch (error) {
        refuse(form, error, $("accept-error"));
      }
    });
  });

  function showAccepted(accepted, item) {
    state.accepted = accepted;
    $("accepted-no").textContent = accepted.case_no;
    $("accepted-code").textContent = accepted.lookup_code;
    $("accepted-item").textContent = item.name;
    $("accepted-due").textContent = `${localDate(accepted.due_date)}（${accepted.kind === "immediate" ? "即办件" : `承诺 ${item.promised_limit_days} 个工作日`}）`;
    $("accept-form").hidden = true;
    $("accept-result").hidden = false;
    $("accept-result").focus();
  }

  function showNotice(notice) {
    state.notice = notice;
    $("notice-no").textContent = notice.notice_no;
    $("notice-item").textContent = notice.item_name;
    $("notice-missing").replaceChildren(...notice.missing.map((m) => el("li", { text: m.name })));
    $("accept-form").hidden = true;
    $("notice-result").hidden = false;
    $("notice-result").focus();
  }

  document.querySelectorAll(".wt-new-case").forEach((b) => b.addEventListener("click", () => {
    const form = $("accept-form");
    const notice = state.notice;
    form.reset();
    clearErrors(form);
    $("accept-result").hidden = true;
    $("notice-result").hidden = true;
    form.hidden = false;
    if (notice) { $("accept-item").value = notice.item_code; form.elements.notice_no.value = notice.notice_no; }
    state.accepted = state.notice = null;
    drawMaterials();
    render();
    $("accept-item").focus();
  }));
  $("receipt-pdf").addEventListener("click", () => act($("receipt-pdf"), async () => {
    const a = state.accepted;
    await download(`/cases/cases/${encodeURIComponent(a.case_no)}/documents/receipt.pdf?code=${encodeURIComponent(a.lookup_code)}`, `受理回执-${a.case_no}.pdf`);
  }));
  $("notice-pdf").addEventListener("click", () => act($("notice-pdf"), async () => {
    const n = state.notice;
    await download(`/cases/notices/${encodeURIComponent(n.notice_no)}.pdf`, `一次性告知书-${n.notice_no}.pdf`);
  }));

  // the open cases, by their clock

  /* green: running; yellow: past its early-warning moment (预警); red: past its due moment (超期). */
  function level(kase) {
    const now = Hall.hallNow().getTime();
    if (now > Date.parse(kase.due_at)) return ["red", "超期"];
    if (kase.warn_at && now >= Date.parse(kase.warn_at)) return ["yellow", "预警"];
    return ["green", "正常"];
  }

  async function openCases(query) {
    const pages = await Promise.all(OPEN_STATES.map((s) => call(`/cases/cases?center=${c}&status=${s}&limit=200${query}`)));
    return pages.flatMap((p) => p.items).sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at));
  }

  async function loadCases() {
    state.cases = await openCases(`&handler=${encodeURIComponent(me)}`);
    renderCases();
  }

  function caseActions(kase) {
    const last = kase.stage_index >= Math.max(1, kase.stages.length) - 1;
    const out = [];
    const add = (action, label) => out.push(el("button", { type: "button", class: "small", "data-action": action, "data-case": kase.case_no, text: label }));
    switch (kase.status) {
      case "in_progress":
        if (last) add("complete", "办结"); else add("advance", "下一环节");
        add("request-supplement", "补正");
        add("request-extension", "延期");
        add("start-special", "特别程序");
        add("forward", "上报");
        add("propose-refusal", "不予办理");
        break;
      case "supplement": add("supplement", "材料已补齐"); break;
      case "special": add("end-special", "结束特别程序"); break;
      case "forwarded": add("record-forward-result", "录入上级结果"); break;
      case "extension_pending":
        if (!last) add("advance", "下一环节");
        break;
      default: break;
    }
    return out;
  }

  function renderCases() {
    $("cases-count").textContent = state.cases.length ? String(state.cases.length) : "";
    $("cases-empty").hidden = state.cases.length > 0;
    $("cases").replaceChildren(...state.cases.map((k) => {
      const [colour, label] = level(k);
      const item = itemOf(k.item_code);
      return el("tr", { "data-case": k.case_no, "data-due": colour, class: `due-row due-row-${colour}` },
        el("td", { class: "wt-case-no", text: k.case_no }),
        el("td", { text: item ? item.name : k.item_code }),
        el("td", { text: k.applicant_name_masked }),
        el("td", {}, STATUS_WORDS[k.status] || k.status, k.stages.length > 1 ? el("span", { class: "hint", text: ` · ${k.stage}` }) : null),
        el("td", {}, el("span", { class: `due due-${colour}`, text: `${label} ${localDate(k.due_date)}` })),
        el("td", { class: "wt-actions" }, caseActions(k)));
    }));
  }

  $("cases-reload").addEventListener("click", () => act($("cases-reload"), loadCases));
  $("cases").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const kase = state.cases.find((k) => k.case_no === button.dataset.case);
    if (kase) caseAction(kase, button.dataset.action, button.textContent, loadCases);
  });

  /* A small form in the dialog; resolves with its values, or null when cancelled. */
  function ask(title, subject, fields) {
    const dialog = $("ask");
    $("ask-title").textContent = title;
    $("ask-case").textContent = subject || "";
    $("ask-error").hidden = true;
    $("ask-fields").replaceChildren(...fields.map((f) => {
      const id = `ask-${f.name}`;
      if (f.type === "checks") {
        return el("fieldset", { class: "wt-materials" }, el("legend", { text: f.label }),
          ...f.options.map((o) => el("label", { class: "wt-check" }, el("input", { type: "checkbox", name: f.name, value: o }), ` ${o}`)));
      }
      const input = f.type === "select"
        ? el("select", { id, name: f.name }, ...f.options.map(([v, t]) => el("option", { value: v, text: t })))
        : f.type === "textarea" ? el("textarea", { id, name: f.name, rows: 3, maxlength: 2000, required: f.required })
        : el("input", { id, name: f.name, type: f.type || "text", required: f.required, min: f.min, max: f.max, value: f.value, maxlength: f.type === "number" ? null : 200 });
      return el("div", {}, el("label", { for: id, text: f.label }), input);
    }));
    return new Promise((resolve) => {
      const form = $("ask-form");
      const finish = (values) => { form.onsubmit = null; $("ask-cancel").onclick = null; dialog.onclose = null; if (dialog.open) dialog.close(); resolve(values); };
      form.onsubmit = (event) => {
        event.preventDefault();
        const values = {};
        for (const f of fields) {
          if (f.type === "checks") values[f.name] = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((x) => x.value);
          else values[f.name] = form.elements[f.name].value.trim();
          if (f.required && (!values[f.name] || (Array.isArray(values[f.name]) && !values[f.name].length))) {
            $("ask-error").textContent = `请填写：${f.label}`;
            $("ask-error").hidden = false;
            return;
          }
        }
        finish(values);
      };
      $("ask-cancel").onclick = () => finish(null);
      dialog.onclose = () => finish(null);
      dialog.showModal();
      const first = $("ask-fields").querySelector("input, select, textarea") || $("ask-ok");
      first.focus();
    });
  }

  const confirmOnly = [];
  async function caseAction(kase, action, label, reload) {
    const item = itemOf(kase.item_code);
    const subject = `${kase.case_no} · ${item ? item.name : kase.item_code} · ${kase.applicant_name_masked}`;
    const forms = {
      advance: [confirmOnly, () => ({})],
      complete: [[{ name: "note", label: "办结说明（选填）" }], (v) => ({ result: "approved", note: v.note || null })],
      "request-supplement": [[
        { name: "materials", label: "需补正的材料（一次性告知全部）", type: "checks", options: item ? item.materials.map((m) => m.name) : [] },
        { name: "other", label: "其他材料（多项用顿号分隔，选填）" }, { name: "reason", label: "说明（选填）" }],
      (v) => ({ missing_materials: [...v.materials, ...v.other.split(/[、,，;；]/).map((x) => x.trim()).filter(Boolean)], reason: v.reason || null })],
      supplement: [confirmOnly, () => ({})],
      "request-extension": [[
        { name: "days", label: `延期工作日数${item ? `（最多 ${item.max_extension_days} 个）` : ""}`, type: "number", min: 1, max: 365, required: true, value: item ? Math.min(5, item.max_extension_days || 5) : 5 },
        { name: "reason", label: "延期理由", type: "textarea", required: true }], (v) => ({ days: Number(v.days), reason: v.reason })],
      "start-special": [[
        { name: "procedure", label: "程序", type: "select", options: [["site_inspection", "现场勘查"], ["expert_review", "专家评审"], ["hearing", "听证"], ["testing", "检验检测"], ["other", "其他"]] },
        { name: "reason", label: "理由", type: "textarea", required: true }], (v) => v],
      "end-special": [confirmOnly, () => ({})],
      forward: [[{ name: "to_authority", label: "上报机关", required: true }, { name: "reason", label: "说明（选填）" }],
        (v) => ({ to_authority: v.to_authority, reason: v.reason || null })],
      "record-forward-result": [[{ name: "result", label: "上级办理结果", type: "select", options: [["approved", "准予"], ["refused", "不予"]] }, { name: "note", label: "说明（选填）" }],
        (v) => ({ result: v.result, note: v.note || null })],
      "propose-refusal": [[{ name: "reason", label: "不予办理理由", type: "textarea", required: true }, { name: "legal_basis", label: "法律依据", required: true }], (v) => v],
      "approve-extension": [[{ name: "note", label: "审批意见（选填）" }], (v) => ({ note: v.note || null })],
      "decline-extension": [[{ name: "reason", label: "不同意的理由", type: "textarea", required: true }], (v) => v],
      "approve-refusal": [[{ name: "note", label: "审批意见（选填）" }], (v) => ({ note: v.note || null })],
      "return-refusal": [[{ name: "reason", label: "退回理由", type: "textarea", required: true }], (v) => v],
    };
    const [fields, body] = forms[action];
    const values = await ask(label.trim(), subject, fields);
    if (!values) return;
    try {
      await call(`/cases/cases/${encodeURIComponent(kase.case_no)}/${action}`, { method: "POST", body: body(values) });
      Hall.showStatus(`${kase.case_no}：${label.trim()}完成`);
    } catch (error) {
      Hall.showStatus(words(error), "error");
    }
    await reload().catch(() => {});
  }

  // a chief representative's approvals

  async function loadApprovals() {
    if (!chief) return;
    const [pending, running] = await Promise.all([
      Promise.all(["extension_pending", "refusal_pending"].map((s) => call(`/cases/cases?center=${c}&status=${s}&limit=200`))),
      call(`/cases/cases?center=${c}&status=in_progress&limit=200`)]);
    state.approvals = pending.flatMap((p) => p.items);
    $("approvals-count").textContent = state.approvals.length ? String(state.approvals.length) : "";
    $("approvals-empty").hidden = state.approvals.length > 0;
    $("approvals").replaceChildren(...state.approvals.map((k) => {
      const item = itemOf(k.item_code);
      const [colour, label] = level(k);
      const asks = k.status === "extension_pending" ? `延期 ${k.extension_request_days} 个工作日` : `不予办理：${k.refusal_reason || ""}（依据：${k.refusal_basis || ""}）`;
      const buttons = k.status === "extension_pending"
        ? [["approve-extension", "批准延期"], ["decline-extension", "不同意"]]
        : [["approve-refusal", "批准不予办理"], ["return-refusal", "退回"]];
      return el("tr", { "data-case": k.case_no },
        el("td", { class: "wt-case-no", text: k.case_no }), el("td", { text: item ? item.name : k.item_code }),
        el("td", { text: k.handler_name }), el("td", { text: asks }),
        el("td", {}, el("span", { class: `due due-${colour}`, text: `${label} ${localDate(k.due_date)}` })),
        el("td", { class: "wt-actions" }, buttons.map(([a, t]) => el("button", { type: "button", class: "small", "data-action": a, "data-case": k.case_no, text: t }))));
    }));
    $("expedite-case").replaceChildren(...running.items.map((k) => el("option", { value: k.case_no, text: `${k.case_no} · ${(itemOf(k.item_code) || { name: k.item_code }).name} · 承诺 ${k.promised_limit_days} 个工作日` })));
  }

  $("approvals-reload").addEventListener("click", () => act($("approvals-reload"), loadApprovals));
  $("approvals").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const kase = state.approvals.find((k) => k.case_no === button.dataset.case);
    if (kase) caseAction(kase, button.dataset.action, button.textContent, loadApprovals);
  });
  $("expedite-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const no = form.elements.case.value;
    if (!no || form.elements.days.value === "" || !form.elements.reason.value.trim()) { Hall.showStatus("请选择办件并填写新的时限和理由", "error"); return; }
    act(event.submitter, async () => {
      await call(`/cases/cases/${encodeURIComponent(no)}/expedite`, { method: "POST", body: {
        promised_limit_days: Number(form.elements.days.value), reason: form.elements.reason.value.trim() } });
      form.reset();
      Hall.showStatus(`${no} 已特事特办`);
      await loadApprovals();
    });
  });

  // 首问登记

  const outcomeBoxes = { answered: "inquiry-answered", referred: "inquiry-referred", pending: "inquiry-pending" };
  $("inquiry-form").addEventListener("change", (event) => {
    if (event.target.name !== "outcome") return;
    for (const [value, id] of Object.entries(outcomeBoxes)) $(id).hidden = value !== event.target.value;
  });

  function localInput(date) {
    const p = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false })
      .formatToParts(date).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}T${p.hour === "24" ? "00" : p.hour}:${p.minute}`;
  }

  $("inquiry-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    clearErrors(form);
    $("inquiry-error").hidden = true;
    $("inquiry-done").hidden = true;
    const question = form.elements.question.value.trim();
    if (!question) { fieldMissing(form, "question", "请填写咨询内容"); return; }
    const outcome = form.elements.outcome.value;
    const body = { center, channel: form.elements.channel.value, question };
    if (form.elements.item.value) body.item_code = form.elements.item.value;
    if (form.elements.contact.value.trim()) body.contact = form.elements.contact.value.trim();
    if (outcome === "answered") {
      if (!form.elements.answer.value.trim()) { fieldMissing(form, "answer", "请填写答复内容"); return; }
      body.answer = form.elements.answer.value.trim();
    } else if (outcome === "referred") {
      body.referred_window = form.elements.referred_window.value;
    } else {
      if (!form.elements.promised_reply_at.value) { fieldMissing(form, "promised_reply_at", "请填写承诺答复时间"); return; }
      body.promised_reply_at = `${form.elements.promised_reply_at.value}:00+08:00`;
    }
    act(event.submitter, async () => {
      try {
        const inquiry = await call("/cases/inquiries", { method: "POST", body });
        form.reset();
        for (const [value, id] of Object.entries(outcomeBoxes)) $(id).hidden = value !== "answered";
        form.elements.promised_reply_at.value = localInput(new Date(Hall.hallNow().getTime() + 2 * 3600000));
        $("inquiry-done").textContent = `已登记首问（第 ${inquiry.id} 号，${inquiry.status === "answered" ? "已当场答复" : inquiry.status === "referred" ? `已引导至 ${inquiry.referred_window} 号窗口` : "待答复"}）`;
        $("inquiry-done").hidden = false;
        await loadInquiries();
      } catch (error) {
        refuse(form, error, $("inquiry-error"));
      }
    });
  });

  async function loadInquiries() {
    const now = Hall.hallNow();
    const today = new Date(`${localInput(now).slice(0, 10)}T00:00:00+08:00`).toISOString();
    const page = await call(`/cases/inquiries?center=${c}&since=${encodeURIComponent(today)}&limit=200`);
    const mine = page.items.filter((i) => i.taken_by === me).reverse();
    const STATUS = { answered: "已答复", referred: "已引导", pending: "待答复" };
    $("inquiries").replaceChildren(...(mine.length ? mine.map((i) => el("li", { "data-inquiry": i.id },
      el("span", { class: "hint", text: localTime(i.registered_at) }), " ", el("span", { class: "badge", text: STATUS[i.status] || i.status }), " ", i.question,
      i.status === "pending" ? el("button", { type: "button", class: "small", "data-answer": i.id, text: "答复" }) : null))
      : [el("li", { class: "hint", text: "今日尚无登记" })]));
  }

  $("inquiries").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-answer]");
    if (!button) return;
    const values = await ask("答复首问", "", [{ name: "answer", label: "答复内容", type: "textarea", required: true }]);
    if (!values) return;
    act(button, async () => {
      await call(`/cases/inquiries/${button.dataset.answer}/answer`, { method: "POST", body: { answer: values.answer } });
      await loadInquiries();
    });
  });

  // the window's messages (notify's window feed, read with the terminal's token: the window's own)

  function renderMessages() {
    const badge = $("messages-unread");
    badge.hidden = !state.unread;
    badge.textContent = state.unread ? `${state.unread} 条新消息` : "";
    $("messages-empty").hidden = state.messages.length > 0;
    $("messages").replaceChildren(...state.messages.map((m) => el("li", { "data-ref": m.ref || null },
      el("time", { text: localTime(m.at) }), " ", m.text)));
  }

  function onMessage(envelope) {
    const d = envelope.data;
    if (envelope.type !== "delivery.feed_posted") return;
    state.messages.unshift({ at: envelope.occurred_at, text: d.text, ref: d.refs && d.refs.case_no });
    state.messages.splice(200);
    if ($("tab-messages").getAttribute("aria-selected") !== "true") state.unread += 1;
    renderMessages();
    if (d.refs && d.refs.case_no) casesSoon();
  }

  let casesTimer = null;  // a burst of messages about cases (the feed's replay) reads the cases once
  function casesSoon() {
    clearTimeout(casesTimer);
    casesTimer = setTimeout(() => loadCases().catch(() => {}), 1500);
  }

  // start: what the page shows first, then the live feeds and the heartbeat

  $("wt-clerk").textContent = "";
  $("wt-role").textContent = chief ? "首席代表" : "窗口工作人员";
  $("tab-approvals").hidden = !chief;
  api(`/auth/public/users/${encodeURIComponent(me)}`).then((u) => { $("wt-clerk").textContent = u.display_name; }).catch(() => {});
  Hall.everyMinute((text) => { $("clock").textContent = text; });
  $("inquiry-promised").value = localInput(new Date(Date.now() + 2 * 3600000));
  Hall.clockReady.then(() => { $("inquiry-promised").value = localInput(new Date(Hall.hallNow().getTime() + 2 * 3600000)); });

  if (!number) {
    Hall.showStatus("本终端未绑定窗口，请联系管理员", "error", 0);
    return;
  }
  $("terminal").hidden = false;
  for (;;) {
    try {
      // everything the first screen needs, asked at once (one round trip, not two)
      const [windows, items] = await Promise.all([
        call(`/queue/centers/${c}/windows`),
        department ? call(`/cases/items?center=${c}&department=${encodeURIComponent(department)}`) : Promise.resolve([]),
        loadHall(), loadCases(), loadInquiries(), chief ? loadApprovals() : null]);
      state.windows = windows;
      state.items = items;
      $("inquiry-window").replaceChildren(...windows.filter((w) => w.number !== number && w.active).map((w) => el("option", { value: w.number, text: `${w.number} 号窗口（${w.name}）` })));
      drawItems();
      break;
    } catch (error) {
      Hall.showStatus(words(error), "error");
      await Hall.sleep(5000);
    }
  }
  render();
  renderMessages();
  document.body.dataset.ready = "1";  // drawn (the UI benchmark waits for it)

  const live = $("live");
  const liveState = (text) => (s) => { live.dataset.state = s; live.textContent = s === "open" ? text : "重新连接中"; };
  if (chief) {
    // the display feed is for clerks and screens: a chief representative's terminal reads the hall every 15 s
    live.dataset.state = "open";
    live.textContent = "定时刷新";
    setInterval(() => loadHall().catch(() => {}), 15000);
  } else {
    // live from the moment it connects; the hall read once more then covers what changed before
    let first = true;
    const shown = liveState("实时");
    const feed = new Hall.Feed(`/queue/feeds/display?center=${c}`, session, {
      onEvent: applyEvent, onGap: () => loadHall().catch(() => {}),
      onState: (s) => { shown(s); if (s === "open" && first) { first = false; loadHall().catch(() => {}); } },
    });
    window.hallWindowTerminal.feeds.display = feed;
    feed.start();
  }
  const messages = new Hall.Feed(`/notify/feeds/window:${c}:${encodeURIComponent(number)}`, device, {
    onEvent: onMessage,
    onGap: () => { $("messages-live").textContent = "更早的消息已不在实时记录中"; },
    onState: (s) => { $("messages-live").textContent = s === "open" ? "实时接收中" : "重新连接中…"; },
  });
  window.hallWindowTerminal.feeds.messages = messages;
  messages.start(0);  // the window's messages still kept by the feed, then live

  const heartbeat = async () => {
    try {
      await api(windowPath("heartbeat"), { method: "POST", token: await device.token() });
      state.beats += 1;
    } catch (_) { /* the next beat tries again */ }
  };
  heartbeat();
  setInterval(heartbeat, 30000);
  setInterval(() => { if (state.cases.length) renderCases(); }, 60000);  // a case turns yellow or red as time passes
})();
