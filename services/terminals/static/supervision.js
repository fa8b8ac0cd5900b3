/* 电子监察: the supervision office's board. A person's sign-in (a supervisor acts; a centre or system admin only
   reads), then the centre's open alerts, findings, sanctions, complaints and follow-ups from the monitor's
   APIs, kept live by the monitor's /feeds/alerts (alert.*, finding.*, sanction.*; a feed.gap reloads), and
   the KPIs and window scores with uPlot charts. Downloads (the sanction's PDF, evidence, CSV exports) are
   fetched with the token and saved from a blob, since a plain link would send none.
   `window.hallSupervision` is for the tests. */
"use strict";

(async () => {
  const { api, el, ApiError } = Hall;
  const $ = (id) => document.getElementById(id);
  const ZONE = "Asia/Shanghai";

  const KIND = {
    early_warning: "预警", overdue: "超时", stage_overrun: "环节超时", follow_up: "跟踪提醒",
    special_procedure: "特别程序", repeated_refusal: "重点跟踪", calendar_missing: "日历缺失",
    rectification_overdue: "整改逾期", vacant_window: "空岗", long_wait: "等候过长", bad_rating: "差评",
    complaint: "投诉超时", appointment_request: "预约未答复", inquiry: "首问未答复",
  };
  const LEVEL = { info: "提示", yellow: "黄", orange: "橙", red: "红" };
  const ALERT_STATUS = { raised: "未签收", acknowledged: "已签收", resolved: "已处理" };
  const SOURCE = { overdue: "超时办件", spot_check: "现场抽查", discipline: "工作纪律", media: "媒体曝光" };
  const FINDING_STATUS = { pending: "待核查", confirmed: "已查实", excused: "已免责" };
  const SANCTION = { warning: "警告", criticism: "通报批评" };
  const SANCTION_STATUS = { issued: "待整改", rectified: "已整改", revoked: "已撤销" };
  const CHANNEL = { phone: "电话", mailbox: "意见箱", public: "网上", in_person: "现场" };
  const SEVERITY = { simple: "简单", general: "一般", major: "重大" };
  const COMPLAINT_STATUS = { open: "待处理", resolved: "已处理", upheld: "经查属实", dismissed: "经查不属实" };
  const RATING = { 1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意" };
  const DEDUCTION = { warning: "警告", criticism: "通报批评", manual_finding: "查实问题", vacancy: "空岗",
    bad_rating: "差评", complaint_upheld: "投诉属实" };
  const MAX_FILE = 5 * 1024 * 1024;
  const FILE_TYPES = ["image/jpeg", "image/png", "application/pdf"];

  const session = await Staff.PersonSession.open("supervision", { roles: ["supervisor", "center_admin", "system_admin"] });
  const acts = session.claims.role === "supervisor";  // the admins read the board; only the office decides
  let center = session.center;
  if (!center || center === "*") center = new URLSearchParams(location.search).get("center");
  if (!center || !/^[A-Za-z0-9]{2,32}$/.test(center)) {
    Hall.showStatus("系统管理员请在地址后加上 ?center=中心编号", "error", 0);
    return;
  }
  const enc = encodeURIComponent;
  const C = enc(center);

  const state = {
    alerts: new Map(), fresh: new Set(), findings: [], findingsFilter: "pending", sanctions: [], complaints: [],
    complaintsFilter: "open", followups: [], departments: new Map(), windows: [], kpis: null, scores: null,
    loads: 0, kpiLoaded: 0,
  };
  const charts = { days: null, scores: null };
  window.hallSupervision = { state, charts, feed: null };

  // --- time, as the hall says it --------------------------------------------------------------------------
  const stamp = new Intl.DateTimeFormat("zh-CN", { timeZone: ZONE, month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false });
  const fullStamp = new Intl.DateTimeFormat("zh-CN", { timeZone: ZONE, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
  const at = (iso) => (iso ? stamp.format(new Date(iso)) : "—");
  const atFull = (iso) => (iso ? fullStamp.format(new Date(iso)) : "—");
  const localDate = (date) => date.toLocaleDateString("sv-SE", { timeZone: ZONE });  // yyyy-mm-dd

  /* A deadline with its colour: red once past, amber within a day, grey once settled. */
  function deadline(iso, settled = false) {
    if (!iso) return el("span", { text: "—" });
    const left = new Date(iso) - Hall.hallNow();
    const kind = settled ? "settled" : left < 0 ? "late" : left < 86400000 ? "soon" : "ok";
    const note = settled ? "" : left < 0 ? "（已逾期）" : left < 86400000 ? "（即将到期）" : "";
    return el("span", { class: `sv-due sv-due-${kind}`, "data-due": kind }, el("time", { datetime: iso, text: atFull(iso) }), note);
  }

  // --- calls ----------------------------------------------------------------------------------------------
  async function call(path, options = {}) {
    try {
      return await api(path, { ...options, token: await session.token() });
    } catch (error) {
      if (error.status !== 401) throw error;
      session.expire();  // one retry with a renewed token (a sign-out ends it: the refresh is refused)
      return api(path, { ...options, token: await session.token() });
    }
  }

  /* Every page of a keyset-paged list (?after=), oldest first, up to `pages` pages. */
  async function all(path, pages = 10) {
    const items = [];
    let after = null;
    for (let i = 0; i < pages; i += 1) {
      const page = await call(`${path}&limit=200${after === null ? "" : `&after=${after}`}`);
      items.push(...page.items);
      if (page.next_after === null || page.next_after === undefined) break;
      after = page.next_after;
    }
    return items;
  }

  /* What to tell a person about a refusal: the service's Chinese words, else plain words for its status. */
  function words(error) {
    if (/[\u3400-\u9fff]/.test(error.message || "")) return error.message;
    return { 0: "网络连接中断，请稍后再试", 403: "无权执行此操作", 404: "未找到该记录，可能已被删除",
      409: "该事项的状态已变化，请刷新后再试", 413: "文件过大", 415: "文件类型不支持", 422: "填写的内容有误，请检查",
      429: "操作过于频繁，请稍后再试" }[error.status] || `操作未成功（${error.status}）`;
  }

  function fail(error) { Hall.showStatus(words(error), "error", 8000); }

  function fileName(disposition, fallback) {
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
    if (star) return decodeURIComponent(star[1]);
    const plain = /filename="?([^";]+)"?/i.exec(disposition || "");
    return plain ? plain[1] : fallback;
  }

  /* A file the API sends (PDF, CSV, evidence): fetched with the token, saved from a blob URL. */
  async function download(path, fallback) {
    const request = async () => fetch(Hall.API + path, { headers: { Authorization: `Bearer ${await session.token()}` }, cache: "no-store" });
    let response;
    try {
      response = await request();
      if (response.status === 401) { session.expire(); response = await request(); }
    } catch (_) { throw new ApiError(0, null); }
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (_) { problem = null; }
      throw new ApiError(response.status, problem);
    }
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: fileName(response.headers.get("content-disposition"), fallback), hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // --- the decision dialog (confirm, excuse, resolve, rectified, revoke, complaint outcomes) ----------------
  const dialog = $("decide");
  const dialogForm = $("decide-form");
  /* Asks for the text of a decision; `run(text)` performs it (its refusal is shown in the dialog). */
  function decide({ title, about, label, required, placeholder = "", ok = "确定", run }) {
    $("decide-title").textContent = title;
    $("decide-about").textContent = about || "";
    $("decide-label").textContent = label + (required ? "（必填）" : "（可选）");
    $("decide-ok").textContent = ok;
    const text = $("decide-text");
    text.value = "";
    text.placeholder = placeholder;
    text.required = !!required;
    text.removeAttribute("aria-invalid");
    $("decide-error").hidden = true;
    dialogForm.onsubmit = async (event) => {
      event.preventDefault();
      const value = text.value.trim();
      if (required && !value) {
        $("decide-error").textContent = `请填写${label}`;
        $("decide-error").hidden = false;
        text.setAttribute("aria-invalid", "true");
        text.focus();
        return;
      }
      $("decide-ok").disabled = true;
      try {
        await run(value);
        dialog.close();
      } catch (error) {
        $("decide-error").textContent = words(error);
        $("decide-error").hidden = false;
      } finally {
        $("decide-ok").disabled = false;
      }
    };
    dialog.showModal();
    text.focus();
  }
  $("decide-cancel").addEventListener("click", () => dialog.close());

  const actionButton = (text, onclick, extra = {}) => el("button", { type: "button", class: "sv-action", onclick, ...extra }, text);

  // --- alerts ---------------------------------------------------------------------------------------------
  async function loadAlerts() {
    const [raised, acknowledged] = await Promise.all([
      all(`/monitor/alerts?center=${C}&status=raised`), all(`/monitor/alerts?center=${C}&status=acknowledged`)]);
    state.alerts = new Map([...raised, ...acknowledged].map((a) => [a.id, a]));
    renderAlerts();
  }

  function renderAlerts() {
    const rows = [...state.alerts.values()].sort((a, b) => b.id - a.id);
    $("alerts").replaceChildren(...rows.map(alertItem));
    $("alerts-empty").hidden = rows.length > 0;
    $("alert-count").textContent = rows.length ? `${rows.length} 条` : "";
    const levels = ["red", "orange", "yellow"].map((l) => `${LEVEL[l]} ${rows.filter((a) => a.level === l).length}`);
    $("alert-levels").textContent = `未处理：${levels.join(" · ")}`;
  }

  function alertItem(a) {
    const meta = [a.department ? departmentName(a.department) : null, a.window ? `${a.window} 号窗口` : null,
      a.case_no ? `办件 ${a.case_no}` : null, a.overdue_days ? `超时 ${a.overdue_days} 个工作日` : null].filter(Boolean);
    const actions = [];
    if (acts && a.status === "raised") {
      actions.push(actionButton("签收", () => decide({
        title: "签收告警", about: a.text, label: "签收说明", required: false, ok: "签收",
        run: async (note) => { merge(await call(`/monitor/alerts/${a.id}/acknowledge`, { method: "POST", body: { note: note || null } })); },
      })));
    }
    if (acts) {
      actions.push(actionButton("处理完毕", () => decide({
        title: "告警处理完毕", about: a.text, label: "处理情况", required: true, ok: "提交",
        run: async (note) => { merge(await call(`/monitor/alerts/${a.id}/resolve`, { method: "POST", body: { note } })); },
      })));
    }
    return el("li", { class: `sv-alert sv-level-${a.level}${state.fresh.has(a.id) ? " sv-fresh" : ""}`, "data-alert-id": a.id,
      "data-kind": a.kind, "data-case": a.case_no || "", "data-status": a.status },
      el("p", { class: "sv-alert-head" },
        el("span", { class: `sv-badge sv-badge-${a.level}`, text: `${LEVEL[a.level] || a.level}·${KIND[a.kind] || a.kind}` }),
        el("time", { datetime: a.raised_at, text: at(a.raised_at) }),
        el("span", { class: "sv-alert-status", text: ALERT_STATUS[a.status] || a.status })),
      el("p", { class: "sv-alert-text", text: a.text }),
      meta.length ? el("p", { class: "sv-alert-meta", text: meta.join(" · ") }) : null,
      actions.length ? el("p", { class: "sv-actions" }, actions) : null);
  }

  function merge(alert) {
    if (alert.status === "resolved") state.alerts.delete(alert.id);
    else state.alerts.set(alert.id, { ...(state.alerts.get(alert.id) || {}), ...alert });
    renderAlerts();
  }

  // --- findings -------------------------------------------------------------------------------------------
  const year = () => Number(localDate(Hall.hallNow()).slice(0, 4));

  async function loadFindings() {
    state.findings = state.findingsFilter === "pending"
      ? await all(`/monitor/findings?center=${C}&status=pending`)
      : await all(`/monitor/findings?center=${C}&year=${year()}`, 5);
    renderFindings();
  }

  /* A department's name; one not known yet (made since the board opened) has the list read again. */
  let departmentsAsked = 0;
  function departmentName(code) {
    const name = state.departments.get(code);
    if (name) return name;
    if (Date.now() - departmentsAsked > 10000) {
      departmentsAsked = Date.now();
      call(`/cases/departments?center=${C}`).then((list) => {
        setDepartments(list);
        if (list.some((d) => d.code === code)) { renderAlerts(); renderFindings(); renderSanctions(); renderComplaints(); }
      }).catch(() => {});
    }
    return code;
  }

  function setDepartments(departments) {
    state.departments = new Map(departments.map((d) => [d.code, d.name]));
    const select = $("spot-department");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", text: "请选择" }),
      ...departments.filter((d) => d.active !== false).map((d) => el("option", { value: d.code, text: `${d.name}（${d.code}）` })));
    select.value = chosen;
  }

  function sanctionOf(finding) {
    const issued = state.sanctions.filter((s) => s.finding_id === finding.id && s.status !== "revoked");
    return issued.length ? issued[issued.length - 1] : null;
  }

  function renderFindings() {
    const rows = [...state.findings].sort((a, b) => b.id - a.id);
    $("findings").replaceChildren(...(rows.length ? rows.map(findingRow)
      : [el("tr", {}, el("td", { colspan: 6, class: "hint", text: state.findingsFilter === "pending" ? "没有待核查的事项。" : "本年度尚无记录。" }))]));
    const pending = state.findingsFilter === "pending" ? rows.length : rows.filter((f) => f.status === "pending").length;
    $("count-findings").textContent = pending ? String(pending) : "";
  }

  function findingRow(f) {
    const sanction = sanctionOf(f);
    const facts = [f.case_no ? `办件 ${f.case_no}` : null, f.item_name, f.handler_name ? `承办人 ${f.handler_name}` : null,
      f.overdue_days ? `超时 ${f.overdue_days} 个工作日` : null].filter(Boolean);
    const actions = [];
    if (acts && f.status === "pending") {
      actions.push(actionButton("经查实", () => decide({
        title: "经查实：确认问责", about: f.text, label: "核查意见", required: false, ok: "确认",
        run: async (reason) => {
          await call(`/monitor/findings/${f.id}/confirm`, { method: "POST", body: { reason: reason || null } });
          await Promise.all([loadSanctions(), loadFindings()]);
          const issued = sanctionOf(f);
          Hall.showStatus(issued ? `已查实，发出${SANCTION[issued.level]}（${issued.notice_no}）` : "已查实", "info", 8000);
        },
      }), { "data-act": "confirm" }));
    }
    if (acts && f.status !== "excused") {
      actions.push(actionButton("免责", () => decide({
        title: "免责", about: f.text, label: "免责理由", required: true, ok: "免责",
        run: async (reason) => {
          await call(`/monitor/findings/${f.id}/excuse`, { method: "POST", body: { reason } });
          await Promise.all([loadSanctions(), loadFindings()]);
          Hall.showStatus("已免责", "info");
        },
      }), { "data-act": "excuse" }));
    }
    const evidence = f.attachments.map((file) => el("button", { type: "button", class: "sv-link",
      onclick: () => download(`/monitor/findings/${f.id}/attachments/${file.id}`, file.name).catch(fail) }, `附件：${file.name}`));
    return el("tr", { "data-finding-id": f.id, "data-status": f.status, "data-case": f.case_no || "" },
      el("td", {}, SOURCE[f.source] || f.source, f.imported_overdue ? el("span", { class: "sv-badge sv-badge-info", text: "导入前已超时" }) : null),
      el("td", {}, departmentName(f.department), f.window ? el("div", { text: `${f.window} 号窗口` }) : null),
      el("td", { class: "sv-text" }, el("p", { text: f.text }), facts.length ? el("p", { class: "hint", text: facts.join(" · ") }) : null,
        evidence.length ? el("p", { class: "sv-files" }, evidence) : null,
        f.decision_reason ? el("p", { class: "hint", text: `核查意见：${f.decision_reason}` }) : null),
      el("td", {}, el("time", { datetime: f.occurred_at, text: atFull(f.occurred_at) })),
      el("td", {}, FINDING_STATUS[f.status] || f.status,
        sanction ? el("div", { class: `sv-badge sv-sanction-${sanction.level}`, text: SANCTION[sanction.level] }) : null),
      el("td", { class: "sv-actions" }, actions));
  }

  // the spot-check form: the finding, then each evidence file as its raw body
  const spot = $("spot-form");
  function spotError(name, text) {
    const input = spot.elements[name];
    let box = $(`spot-${name}-error`);
    if (!box) {
      box = el("p", { id: `spot-${name}-error`, class: "field-error", role: "alert" });
      input.after(box);
      input.setAttribute("aria-describedby", box.id);
    }
    box.textContent = text;
    box.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  function clearSpotErrors() {
    spot.querySelectorAll("[aria-invalid=true]").forEach((i) => i.removeAttribute("aria-invalid"));
    spot.querySelectorAll(".field-error").forEach((b) => { b.hidden = true; });
  }

  spot.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearSpotErrors();
    const result = $("spot-result");
    result.hidden = true;
    const form = spot.elements;
    const files = [...form.files.files];
    if (!form.department.value) { spotError("department", "请选择窗口单位"); return; }
    if (!form.text.value.trim()) { spotError("text", "请填写发现的问题及证据说明"); return; }
    const bad = files.find((f) => !FILE_TYPES.includes(f.type) || f.size > MAX_FILE || f.size === 0);
    if (bad) { spotError("files", `“${bad.name}”不能上传：附件须为 JPEG、PNG 或 PDF，且不超过 5 MB`); return; }
    const body = { center, source: form.source.value, department: form.department.value, text: form.text.value.trim() };
    if (form.window.value) body.window = form.window.value;
    if (form.case_no.value.trim()) body.case_no = form.case_no.value.trim();
    const button = spot.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const finding = await call("/monitor/findings", { method: "POST", body });
      let attached = 0;
      for (const file of files) {
        const send = async () => fetch(`${Hall.API}/monitor/findings/${finding.id}/attachments?name=${enc(file.name)}`, {
          method: "POST", body: file, headers: { "Content-Type": file.type, Authorization: `Bearer ${await session.token()}` } });
        const response = await send();
        if (!response.ok) {
          let problem = null;
          try { problem = await response.json(); } catch (_) { problem = null; }
          throw new ApiError(response.status, problem);
        }
        attached += 1;
      }
      spot.reset();
      result.className = "alert ok";
      result.textContent = `已登记（第 ${finding.id} 号）${attached ? `，附件 ${attached} 个` : ""}，列入待核查。`;
      result.hidden = false;
      await loadFindings();
    } catch (error) {
      const field = error.problem && error.problem.field;
      if (field && spot.elements[field]) spotError(field, words(error));
      else { result.className = "alert error"; result.textContent = words(error); result.hidden = false; }
    } finally {
      button.disabled = false;
    }
  });

  $("findings-filter").addEventListener("change", (event) => {
    state.findingsFilter = event.target.value;
    loadFindings().catch(fail);
  });

  // --- sanctions and their rectification ------------------------------------------------------------------
  async function loadSanctions() {
    state.sanctions = await all(`/monitor/sanctions?center=${C}&year=${year()}`);
    renderSanctions();
    renderFindings();  // a finding shows the level of its sanction
  }

  function renderSanctions() {
    const rows = [...state.sanctions].sort((a, b) => b.id - a.id);
    $("sanctions").replaceChildren(...rows.map(sanctionItem));
    $("sanctions-empty").hidden = rows.length > 0;
    const open = rows.filter((s) => s.status === "issued").length;
    $("count-sanctions").textContent = open ? String(open) : "";
  }

  function sanctionItem(s) {
    const actions = [actionButton("下载通知书（PDF）", () => download(`/monitor/sanctions/${s.id}.pdf`, `${s.notice_no}.pdf`).catch(fail), { "data-act": "pdf" })];
    if (acts && s.status === "issued") {
      actions.push(actionButton("整改已收到", () => decide({
        title: "整改情况", about: `${SANCTION[s.level]} ${s.notice_no}`, label: "整改情况", required: true, ok: "提交",
        run: async (note) => { await call(`/monitor/sanctions/${s.id}/rectified`, { method: "POST", body: { note } }); await loadSanctions(); },
      })));
    }
    if (acts && s.status !== "revoked") {
      actions.push(actionButton("撤销", () => decide({
        title: "撤销问责", about: `${SANCTION[s.level]} ${s.notice_no}`, label: "撤销理由", required: true, ok: "撤销",
        run: async (reason) => {
          await call(`/monitor/sanctions/${s.id}/revoke`, { method: "POST", body: { reason } });
          await Promise.all([loadSanctions(), loadFindings()]);
        },
      })));
    }
    const settled = s.status !== "issued";
    const noticeId = `notice-${s.id}`;
    return el("li", { class: `sv-sanction sv-sanction-${s.level} sv-status-${s.status}`, "data-sanction-id": s.id,
      "data-finding-id": s.finding_id, "data-level": s.level, "data-case": s.case_no || "" },
      el("h3", {}, el("span", { class: `sv-badge sv-sanction-${s.level}`, text: SANCTION[s.level] || s.level }),
        ` ${s.notice_no}`, s.reissues ? el("span", { class: "sv-badge sv-badge-info", text: "更正" }) : null,
        el("span", { class: "sv-sanction-status", text: SANCTION_STATUS[s.status] || s.status })),
      el("dl", { class: "sv-facts" },
        el("dt", { text: "单位" }), el("dd", { text: `${departmentName(s.department)}（${s.year} 年第 ${s.ordinal} 次）` }),
        s.case_no ? [el("dt", { text: "办件" }), el("dd", { text: `${s.case_no}${s.item_name ? ` · ${s.item_name}` : ""}` })] : null,
        s.handler_name ? [el("dt", { text: "承办人" }), el("dd", { text: s.handler_name })] : null,
        s.overdue_days ? [el("dt", { text: "超时" }), el("dd", { text: `${s.overdue_days} 个工作日` })] : null,
        el("dt", { text: "发出" }), el("dd", { text: atFull(s.issued_at) }),
        el("dt", { text: "限时整改" }), el("dd", {}, deadline(s.rectification_due_at, settled),
          s.rectified_at ? ` 已于 ${atFull(s.rectified_at)} 整改：${s.rectify_note || ""}` : null,
          s.revoked_at ? ` 已于 ${atFull(s.revoked_at)} 撤销：${s.revoke_reason || ""}` : null)),
      el("p", { class: "sv-notice-label", id: `${noticeId}-label`, text: "通知书全文" }),
      el("div", { class: "sv-notice", id: noticeId, tabindex: "0", role: "region", "aria-labelledby": `${noticeId}-label`, text: s.notice_text }),
      el("p", { class: "sv-actions" }, actions));
  }

  // --- complaints and follow-ups --------------------------------------------------------------------------
  async function loadComplaints() {
    const open = state.complaintsFilter === "open";
    const [complaints, followups] = await Promise.all([
      all(`/monitor/complaints?center=${C}${open ? "&status=open" : ""}`, open ? 10 : 5),
      all(`/monitor/followups?center=${C}${open ? "&status=open" : ""}`, open ? 10 : 5)]);
    state.complaints = complaints;
    state.followups = followups;
    renderComplaints();
  }

  function subjectText(c) {
    return [c.window ? `${c.window} 号窗口` : null, c.department ? departmentName(c.department) : null,
      c.case_no ? `办件 ${c.case_no}` : null].filter(Boolean).join(" · ") || "—";
  }

  function renderComplaints() {
    const complaints = [...state.complaints].sort((a, b) => b.id - a.id);
    $("complaints").replaceChildren(...(complaints.length ? complaints.map(complaintRow)
      : [el("tr", {}, el("td", { colspan: 7, class: "hint", text: "没有待处理的投诉。" }))]));
    const followups = [...state.followups].sort((a, b) => b.id - a.id);
    $("followups").replaceChildren(...(followups.length ? followups.map(followupRow)
      : [el("tr", {}, el("td", { colspan: 6, class: "hint", text: "没有待回访的差评。" }))]));
    const open = complaints.filter((c) => c.status === "open").length + followups.filter((f) => f.status === "open").length;
    $("count-complaints").textContent = open ? String(open) : "";
  }

  function complaintRow(c) {
    const actions = [];
    const close = (verb, title, label) => decide({
      title, about: `${c.number}：${c.text}`, label, required: true, ok: "提交",
      run: async (outcome) => { await call(`/monitor/complaints/${c.id}/${verb}`, { method: "POST", body: { outcome } }); await loadComplaints(); },
    });
    if (acts && c.status === "open") {
      actions.push(actionButton("已处理", () => close("resolve", "投诉已处理", "处理结果（将告知投诉人）")));
      actions.push(actionButton("经查属实", () => close("uphold", "经查属实", "查实情况及处理（将告知投诉人）")));
      actions.push(actionButton("经查不属实", () => close("dismiss", "经查不属实", "理由（将告知投诉人）")));
    }
    return el("tr", { "data-complaint-id": c.id, "data-number": c.number, "data-status": c.status },
      el("th", { scope: "row", class: "sv-number", text: c.number }),
      el("td", {}, `${CHANNEL[c.channel] || c.channel} · ${c.category}`, el("div", { class: "hint", text: `${SEVERITY[c.severity] || c.severity}投诉` })),
      el("td", { text: subjectText(c) }),
      el("td", { class: "sv-text" }, el("p", { text: c.text }), c.contact_masked ? el("p", { class: "hint", text: `联系方式 ${c.contact_masked}` }) : null,
        c.outcome ? el("p", { class: "hint", text: `结果：${c.outcome}` }) : null),
      el("td", {}, deadline(c.due_at, c.status !== "open")),
      el("td", { text: COMPLAINT_STATUS[c.status] || c.status }),
      el("td", { class: "sv-actions" }, actions));
  }

  function followupRow(f) {
    const actions = [];
    if (acts && f.status === "open") {
      actions.push(actionButton("回访完成", () => decide({
        title: "差评回访", about: `${f.window || "—"} 号窗口 · ${RATING[f.rating] || f.rating}`, label: "回访情况", required: true, ok: "提交",
        run: async (note) => { await call(`/monitor/followups/${f.id}/done`, { method: "POST", body: { note } }); await loadComplaints(); },
      })));
    }
    return el("tr", { "data-followup-id": f.id },
      el("td", { text: f.window ? `${f.window} 号窗口` : "—" }),
      el("td", { text: `${f.rating} 分（${RATING[f.rating] || ""}）` }),
      el("td", { text: f.service_code + (f.case_no ? ` · ${f.case_no}` : "") }),
      el("td", {}, deadline(f.due_at, f.status === "done")),
      el("td", { text: f.status === "done" ? `已回访：${f.note || ""}` : f.overdue ? "逾期未回访" : "待回访" }),
      el("td", { class: "sv-actions" }, actions));
  }

  $("complaints-filter").addEventListener("change", (event) => {
    state.complaintsFilter = event.target.value;
    loadComplaints().catch(fail);
  });
  $("complaints-reload").addEventListener("click", () => loadComplaints().catch(fail));

  // --- KPIs and window scores -----------------------------------------------------------------------------
  const percent = (rate) => (rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`);
  const mins = (s) => (s === null || s === undefined ? "—" : `${(s / 60).toFixed(1)} 分钟`);

  function period() {
    const today = localDate(Hall.hallNow());
    return { today, first: `${today.slice(0, 8)}01`, month: today.slice(0, 7) };
  }

  /* uPlot (vendored, static/uplot.iife.min.js), fetched when the KPIs are first shown: the board opens without it. */
  let chartLibrary = null;
  function loadChartLibrary() {
    if (window.uPlot) return Promise.resolve();
    if (!chartLibrary) {
      chartLibrary = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = `${Hall.UI}/static/uplot.iife.min.js`;
        script.onload = resolve;
        script.onerror = () => { chartLibrary = null; script.remove(); reject(new ApiError(0, { detail: "图表组件加载失败，请刷新" })); };
        document.head.append(script);
      });
    }
    return chartLibrary;
  }

  async function loadKpis() {
    await loadChartLibrary();
    const p = period();
    const base = `/monitor/kpis?center=${C}`;
    const [today, month, days, scores] = await Promise.all([
      call(`${base}&from=${p.today}&to=${p.today}`), call(`${base}&from=${p.first}&to=${p.today}`),
      call(`${base}&from=${p.first}&to=${p.today}&group_by=day`), call(`/monitor/scores?center=${C}&month=${p.month}`)]);
    state.kpis = { period: p, today, month, days };
    state.scores = scores;
    state.kpiLoaded = Date.now();
    renderKpis();
  }

  function kpiList(target, answer) {
    const c = answer.rows[0] || {};
    const h = answer.hall[0] || {};
    const pairs = [
      ["受理", c.accepted ?? 0], ["办结", c.completed ?? 0], ["承诺件按时办结率", percent(c.promised_on_time_rate)],
      ["即办件当场办结率", percent(c.immediate_on_the_spot_rate)], ["超时办结", `${c.completed_late ?? 0} 件（${c.overdue_days ?? 0} 个工作日）`],
      ["当前超时未办结", c.open_overdue ?? 0], ["提速率", percent(c.speedup_rate)], ["取号 / 已叫号", `${h.tickets ?? 0} / ${h.called ?? 0}`],
      ["等候时间（中位 / 90%）", `${mins(h.wait_p50_s)} / ${mins(h.wait_p90_s)}`], ["过号率", percent(h.no_show_rate)],
      ["满意率", `${percent(h.satisfaction_rate)}（${h.ratings ?? 0} 次评价）`],
    ];
    target.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  }

  function renderKpis() {
    const { period: p, today, month, days } = state.kpis;
    kpiList($("kpi-today"), today);
    kpiList($("kpi-month"), month);
    const last = Number(p.today.slice(8, 10));
    const x = Array.from({ length: last }, (_, i) => i + 1);
    const byDay = new Map(days.rows.map((r) => [r.key, r]));
    const key = (d) => `${p.first.slice(0, 8)}${String(d).padStart(2, "0")}`;
    const accepted = x.map((d) => (byDay.get(key(d)) || {}).accepted || 0);
    const completed = x.map((d) => (byDay.get(key(d)) || {}).completed || 0);
    $("chart-days-text").textContent = `本月累计受理 ${accepted.reduce((a, b) => a + b, 0)} 件，办结 ${completed.reduce((a, b) => a + b, 0)} 件。`;
    drawChart("days", $("chart-days"), [x, accepted, completed], {
      series: [{ label: "日期", value: (u, v) => (v === null ? "—" : `${v}日`) },
        bars("受理", "#0b3d91", -1), bars("办结", "#0a6b2d", 1)],
      xLabel: (v) => `${v}日`, yMax: Math.max(1, ...accepted, ...completed),
    });
    const order = [...state.scores.windows].sort((a, b) => a.rank - b.rank);
    if (order.length) drawChart("scores", $("chart-scores"), [order.map((_, i) => i), order.map((w) => w.score)], {
      series: [{ label: "窗口", value: (u, v) => (v === null || !order[v] ? "—" : `${order[v].window} 号`) },
        bars("得分", "#0b3d91", 0)],
      xLabel: (v) => (order[v] ? `${order[v].window}号` : ""), yMax: 100,
    });
    $("scores").replaceChildren(...(order.length ? order.map((w) => el("tr", { "data-window": w.window },
      el("td", { text: String(w.rank) }), el("th", { scope: "row", text: `${w.window} 号窗口` }),
      el("td", { class: "sv-score", text: String(w.score) }), el("td", { text: String(w.deducted) }), el("td", { text: String(w.bonus) }),
      el("td", { class: "sv-text", text: w.deductions.map((d) => `${DEDUCTION[d.kind] || d.kind} −${d.points}（${at(d.at)}）`).join("；") || "—" })))
      : [el("tr", {}, el("td", { colspan: 6, class: "hint", text: "本月尚无窗口考评数据。" }))]));
  }

  function bars(label, colour, align) {
    return { label, stroke: colour, fill: `${colour}cc`, width: 1,
      paths: uPlot.paths.bars({ size: [align === 0 ? 0.6 : 0.38, 48], align, gap: 2 }), points: { show: false } };
  }

  /* One uPlot chart, made on first use and given new data after; it takes its box's width. */
  function drawChart(name, box, data, { series, xLabel, yMax }) {
    const width = Math.max(320, box.clientWidth || 600);
    const height = Math.round(Math.min(300, Math.max(200, window.innerHeight * 0.28)));
    if (charts[name]) charts[name].destroy();
    const axis = { stroke: "#111", grid: { stroke: "#e1e5ec" }, ticks: { stroke: "#c8ced8" }, font: "13px sans-serif" };
    charts[name] = new uPlot({
      width, height, series,
      scales: { x: { time: false, range: (u, min, max) => [min - 0.7, max + 0.7] }, y: { range: () => [0, Math.ceil(yMax * 1.15)] } },
      axes: [{ ...axis, incrs: [1, 2, 5, 7, 10], values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? xLabel(v) : "")) },
        { ...axis, incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000], values: (u, splits) => splits.map((v) => String(v)) }],
      cursor: { drag: { x: false, y: false } },
    }, data, box);
    box.dataset.points = String(data[1].length);
    box.dataset.total = String(data.slice(1).flat().reduce((a, b) => a + (b || 0), 0));
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [name, chart] of Object.entries(charts)) {
        const box = $(`chart-${name}`);
        if (chart && box.clientWidth) chart.setSize({ width: Math.max(320, box.clientWidth), height: chart.height });
      }
    }, 200);
  });

  $("kpis-reload").addEventListener("click", () => loadKpis().catch(fail));

  const EXPORTS = {
    cases: (p) => [`/monitor/kpis?center=${C}&from=${p.first}&to=${p.today}&group_by=day&format=csv&table=cases`, `kpis-cases-${p.month}.csv`],
    hall: (p) => [`/monitor/kpis?center=${C}&from=${p.first}&to=${p.today}&group_by=day&format=csv&table=hall`, `kpis-hall-${p.month}.csv`],
    departments: (p) => [`/monitor/kpis?center=${C}&from=${p.first}&to=${p.today}&group_by=department&format=csv&table=cases`, `kpis-departments-${p.month}.csv`],
    scores: (p) => [`/monitor/scores?center=${C}&month=${p.month}&format=csv`, `scores-${p.month}.csv`],
  };
  document.querySelectorAll("[data-export]").forEach((button) => button.addEventListener("click", async () => {
    button.disabled = true;
    try { await download(...EXPORTS[button.dataset.export](period())); } catch (error) { fail(error); } finally { button.disabled = false; }
  }));

  // --- tabs (arrow keys move between them) ----------------------------------------------------------------
  const tabs = [...document.querySelectorAll("[role=tab]")];
  function show(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "tab-kpis" && Date.now() - state.kpiLoaded > 60000) loadKpis().catch(fail);
    else if (tab.id === "tab-kpis" && state.kpis) renderKpis();  // drawn again at the panel's width
    if (tab.id === "tab-complaints") loadComplaints().catch(fail);
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      show(next);
    });
  });

  // --- reference data, the first load, the feed -----------------------------------------------------------
  async function loadReference() {
    const [centre, departments, windows] = await Promise.all([
      call(`/monitor/centers/${C}`).catch(() => null),
      call(`/cases/departments?center=${C}`).catch(() => []),
      call(`/queue/centers/${C}/windows`).catch(() => []),
    ]);
    if (centre && centre.name) $("center-name").textContent = `${centre.name} · `;
    setDepartments(departments);
    state.windows = windows;
    $("spot-window").replaceChildren(el("option", { value: "", text: "不指定" }),
      ...windows.map((w) => el("option", { value: w.number, text: `${w.number} 号窗口${w.name ? ` · ${w.name}` : ""}` })));
  }

  /* Everything at once (one round trip): the lists draw as they come, with codes where a department's name
     has not arrived yet, and are drawn again with the names at the end. */
  async function loadAll() {
    departmentsAsked = Date.now();  // the reference data is on its way: no second read of the departments
    await Promise.all([loadReference(), loadAlerts(), loadSanctions(), loadFindings(), loadComplaints()]);
    renderAlerts(); renderFindings(); renderSanctions(); renderComplaints();
    state.loads += 1;
  }

  const pending = new Set();
  let reloadTimer = null;
  function reloadSoon(what) {
    pending.add(what);
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(async () => {
      const jobs = [...pending];
      pending.clear();
      try {
        if (jobs.includes("sanctions")) await loadSanctions();
        if (jobs.includes("findings") || jobs.includes("sanctions")) await loadFindings();
      } catch (error) { fail(error); }
    }, 300);
  }

  function apply(envelope) {
    const d = envelope.data || {};
    if (envelope.type.startsWith("alert.") && d.alert) {
      if (envelope.type === "alert.raised") {
        state.fresh.add(d.alert.id);
        setTimeout(() => { state.fresh.delete(d.alert.id); renderAlerts(); }, 60000);
      }
      merge(d.alert);
      if (envelope.type === "alert.raised") {
        $("alert-announce").textContent = `新告警（${LEVEL[d.alert.level] || ""}·${KIND[d.alert.kind] || ""}）：${d.alert.text}`;
        if (d.alert.level === "red") Hall.showStatus(`新告警：${d.alert.text}`, "error", 6000);
      }
    } else if (envelope.type.startsWith("finding.")) {
      reloadSoon("findings");
    } else if (envelope.type.startsWith("sanction.")) {
      reloadSoon("sanctions");
    }
  }

  $("who").textContent = { supervisor: "监察人员", center_admin: "中心管理员（只读）", system_admin: "系统管理员（只读）" }[session.claims.role] || "";
  $("signout").addEventListener("click", async () => { await session.logout(); location.reload(); });
  if (!acts) spot.hidden = true;
  Hall.everyMinute((text) => { $("clock").textContent = text; });
  $("sv-bar").hidden = false;
  $("board").hidden = false;

  await Hall.clockReady;
  for (;;) {
    try { await loadAll(); break; } catch (error) { fail(error); await Hall.sleep(5000); }
  }
  document.body.dataset.ready = "1";  // drawn (the UI benchmark waits for it)

  let opened = 0;
  const feed = new Hall.Feed(`/monitor/feeds/alerts?center=${C}`, session, {
    onEvent: apply,
    onGap: () => { loadAll().catch(fail); },
    onState: (s) => {
      $("live").dataset.state = s;
      $("live").textContent = s === "open" ? "实时" : "重新连接中";
      // the first connection starts from now: what happened between the first load and it is read again
      if (s === "open" && (opened += 1) === 1) loadAlerts().then(() => reloadSoon("sanctions")).catch(fail);
    },
  });
  window.hallSupervision.feed = feed;
  feed.start(null);
  setInterval(() => { loadComplaints().catch(() => {}); }, 60000);  // complaints have no live feed
  setInterval(() => { renderSanctions(); renderComplaints(); }, 60000);  // deadlines change colour as time passes
})();
