/* 办事指南: the centre's item catalogue, searchable by name, code or department; each item opens to its limits
   (法定/承诺时限), fees, materials, conditions and procedure, its QR code and its printable guide (PDF). `?item=`
   opens one at once (the address its QR code carries). No token. */
"use strict";

(() => {
  const { api, el, API, UI } = Hall;
  const P = Public;
  const $ = (id) => document.getElementById(id);
  const center = P.center;
  const wanted = document.body.dataset.item || null;
  const KINDS = { immediate: "即办件", promised: "承诺件", joint: "联办件", reported: "上报件" };
  const OBJECTS = {
    natural_person: "自然人", enterprise: "企业法人", public_institution: "事业单位法人",
    social_organization: "社会组织法人", unincorporated_enterprise: "非法人企业", government_agency: "行政机关",
    other_organization: "其他组织",
  };
  const FILES = { form: "申请表", sample: "示范文本" };
  let items = [];

  const days = (n) => (n ? `${n} 个工作日` : "即办（当场办结）");
  const path = (code) => `${encodeURIComponent(center)}/${encodeURIComponent(code)}`;
  const section = (title, ...content) => [el("h3", { text: title }), ...content];

  function limits(item) {
    const due = item.promised_limit_days
      ? `今日受理的，${P.fullDay(item.due_date_if_accepted_today)}前办结` : "材料齐全的，当场办结";
    const facts = [
      el("dt", { text: "办件类型" }), el("dd", { text: KINDS[item.kind] || item.kind }),
      el("dt", { text: "法定时限" }), el("dd", { class: "legal-limit", text: days(item.legal_limit_days) }),
      el("dt", { text: "承诺时限" }), el("dd", { class: "promised-limit", text: days(item.promised_limit_days) }),
    ];
    if (item.speedup_percent !== null && item.speedup_percent > 0) {
      facts.push(el("dt", { text: "提速" }), el("dd", { text: `比法定时限快 ${Math.round(item.speedup_percent)}%` }));
    }
    facts.push(el("dt", { text: "办结日期" }), el("dd", { text: due }));
    if (item.service_objects.length) {
      facts.push(el("dt", { text: "服务对象" }), el("dd", { text: item.service_objects.map((o) => OBJECTS[o] || o).join("、") }));
    }
    facts.push(el("dt", { text: "收费标准" }), el("dd", { class: "fees", text: item.fees || "不收费" }));
    if (item.fee_basis) facts.push(el("dt", { text: "收费依据" }), el("dd", { text: item.fee_basis }));
    const parts = [el("dl", { class: "facts" }, facts)];
    if (item.fallback_years.length && item.promised_limit_days) {
      parts.push(el("p", { class: "hint", text: `${item.fallback_years.join("、")}年的节假日安排尚未公布，办结日期按周一至周五推算，可能调整。` }));
    }
    if (item.stages.length > 1) {
      parts.push(...section("各环节时限", el("ul", {}, item.stages.map((s) => el("li", { text: `${s.name}：${days(s.limit_days)}` })))));
    }
    return parts;
  }

  function body(item) {
    const main = [...limits(item)];
    main.push(...section("申请材料", item.materials.length
      ? el("ol", { class: "materials" }, item.materials.map((m) => el("li", {}, m.name, " ",
        el("span", { class: m.required ? "badge" : "badge paused", text: m.required ? "必交" : "按需提交" }))))
      : el("p", { class: "hint", text: "无需提交材料" })));
    if (item.conditions.length) {
      main.push(...section("申请条件", el("ul", { class: "conditions" }, item.conditions.map((c) => el("li", { text: c })))));
    }
    if (item.procedure.length) {
      main.push(...section("办理流程", el("ol", { class: "procedure" }, item.procedure.map((step) => el("li", {},
        el("strong", { text: step.name }), step.description ? `：${step.description}` : null)))));
    }
    if (item.legal_basis) main.push(...section("设定依据", el("p", { text: item.legal_basis })));
    const links = [el("li", {}, el("a", { href: `${API}/cases/public/items/${path(item.code)}/guide.pdf`, class: "guide-pdf",
      type: "application/pdf", text: "下载打印版办事指南（PDF）" }))];
    for (const f of item.files) {
      links.push(el("li", {}, el("a", { href: `${API}/cases/public/items/${path(item.code)}/files/${encodeURIComponent(f.name)}`,
        text: `${FILES[f.kind] || "附件"}：${f.name}` })));
    }
    main.push(...section("下载", el("ul", { class: "item-links" }, links)));
    const qr = el("figure", { class: "item-qr" },
      el("img", { src: `${UI}/qr/guide/${path(item.code)}.svg`, width: 164, height: 164, class: "qr",
        alt: `“${item.name}”办事指南页面的二维码` }),
      el("figcaption", { text: "手机扫码查看本指南" }));
    return el("div", { class: "item-body" }, el("div", { class: "item-main" }, main), qr);
  }

  function entry(item) {
    const details = el("details", { class: "item", id: `item-${item.code}`, "data-code": item.code },
      el("summary", {},
        el("span", { class: "item-name", text: item.name }),
        el("span", { class: "item-meta" },
          el("span", { text: `编码 ${item.code}` }), el("span", { text: item.department_name }),
          el("span", { text: `承诺时限 ${days(item.promised_limit_days)}` }))));
    details.addEventListener("toggle", () => {
      if (details.open && !details.querySelector(".item-body")) details.append(body(item));  // the QR loads now
      const query = new URLSearchParams({ center });
      if (details.open) query.set("item", item.code);
      history.replaceState(null, "", `${location.pathname}?${query}`);
    });
    return el("li", { "data-search": `${item.name} ${item.code} ${item.department_name}`.toLowerCase(),
      "data-department": item.department }, details);
  }

  function filter() {
    const words = $("search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const department = $("department").value;
    let shown = 0;
    for (const li of $("items").children) {
      const match = words.every((w) => li.dataset.search.includes(w)) && (!department || li.dataset.department === department);
      li.hidden = !match;
      if (match) shown += 1;
    }
    $("match-count").textContent = words.length || department ? `找到 ${shown} 项（共 ${items.length} 项）` : `共 ${items.length} 项`;
    $("no-match").hidden = shown > 0 || !items.length;
  }

  function open(code) {
    const details = document.getElementById(`item-${code}`);
    if (!details) { $("item-missing").hidden = false; return; }
    details.append(body(items.find((i) => i.code === code)));  // now, not at the toggle event: to scroll to it
    details.open = true;
    details.scrollIntoView({ block: "start" });
    details.querySelector("summary").focus({ preventScroll: true });
  }

  async function load() {
    try {
      items = await api(`/cases/public/items?center=${encodeURIComponent(center)}`);
    } catch (error) {
      P.show($("guide-error"), error.status === 404 ? "未找到该服务中心，请核对链接" : P.explain(error));
      return;
    } finally {
      $("loading").hidden = true;
    }
    const departments = new Map(items.map((i) => [i.department, i.department_name]));
    $("department").append(...[...departments].map(([code, name]) => el("option", { value: code, text: name })));
    $("items").replaceChildren(...items.map(entry));
    if (!items.length) P.show($("guide-error"), "本中心的办事指南暂未发布事项", "ok");
    filter();
    if (wanted) open(wanted);
  }

  $("search").addEventListener("input", filter);
  $("department").addEventListener("change", filter);
  $("search-form").addEventListener("submit", (event) => event.preventDefault());
  load().finally(P.ready);
})();
