/* 投诉建议: a complaint about a window, a department or a case, filed without a token; its number and the moment
   it will be answered by (三个一) shown back. A refusal's words go under the field it names. */
"use strict";

(() => {
  const { api, el } = Hall;
  const P = Public;
  const $ = (id) => document.getElementById(id);
  const form = $("complaint-form");
  const field = (name) => form.elements.namedItem(name);
  const FIELDS = {
    category: ["投诉类别", "请选择投诉类别"],
    subject: ["投诉对象", "请填写窗口号、选择部门或填写办件编号（至少一项）"],
    window: ["窗口号", "请填写窗口上方显示的窗口号"],
    case_no: ["办件编号", "请按受理回执填写"],
    text: ["投诉内容", "请填写投诉内容（最多 4000 字）"],
    contact: ["联系电话", "请填写 11 位手机号码，或不填"],
  };
  // the API names the subject's parts as subject.window ...: each has its own place on the page
  const PARTS = { "subject.window": "window", "subject.department": "subject", "subject.case_no": "case_no" };

  async function departments() {
    try {
      const items = await api(`/cases/public/items?center=${encodeURIComponent(P.center)}`);
      const names = new Map(items.map((i) => [i.department, i.department_name]));
      field("department").append(...[...names].map(([code, name]) => el("option", { value: code, text: name })));
    } catch (_) {
      // no guide to name the departments: a window or a case number still does
    }
  }

  function subject() {
    const value = (name) => field(name).value.trim() || null;
    return { window: value("window"), department: value("department"), case_no: value("case_no") && value("case_no").toUpperCase() };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    P.show($("complaint-error"), "");
    if (!P.validate(form, FIELDS)) return;
    const about = subject();
    if (!about.window && !about.department && !about.case_no) {
      P.fieldError(form, "subject", FIELDS.subject[1]);
      field("window").focus();
      return;
    }
    $("complaint-submit").disabled = true;
    try {
      const receipt = await api("/monitor/public/complaints", {
        method: "POST",
        body: { center: P.center, category: field("category").value, subject: about, text: field("text").value.trim(),
                contact: field("contact").value.trim() || null },
      });
      $("filed-number").textContent = receipt.number;
      $("filed-received").textContent = P.dateTime(receipt.received_at);
      $("filed-due").textContent = `${P.dateTime(receipt.due_at)}前答复`;
      $("filed-text").textContent = receipt.acknowledgement;
      $("filed").dataset.number = receipt.number;
      form.reset();
      form.closest("section").hidden = true;
      $("filed").hidden = false;
      $("filed").focus();
    } catch (error) {
      const part = error.problem && PARTS[error.problem.field];
      if (part) error.problem.field = part;
      P.refuse(form, error, $("complaint-error"), FIELDS, { 404: "未找到该服务中心，请核对链接" });
      if (part === "subject") field("department").focus();
    } finally {
      $("complaint-submit").disabled = false;
    }
  });

  $("another").addEventListener("click", () => {
    $("filed").hidden = true;
    form.closest("section").hidden = false;
    field("category").focus();
  });

  departments().finally(P.ready);
})();
