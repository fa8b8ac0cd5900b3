/* 办件查询: a case's state, stage and due date by its number and the receipt's lookup code (no token, nothing of
   the applicant). An unknown case and a wrong code get the same answer, as the API gives them. */
"use strict";

(() => {
  const { api } = Hall;
  const P = Public;
  const $ = (id) => document.getElementById(id);
  const form = $("lookup-form");
  const FIELDS = {
    case_no: ["办件编号", "请按受理回执填写，例如 320102-20261208-000001"],
    code: ["查询码", "请按受理回执填写（字母和数字）"],
  };
  const STATES = {
    in_progress: ["办理中", ""],
    extension_pending: ["办理中（延期审批中）", ""],
    refusal_pending: ["办理中（审核中）", ""],
    supplement: ["待补正材料", "paused"],
    special: ["特别程序中", "paused"],
    forwarded: ["已上报上级部门", "paused"],
    completed: ["已办结", "done"],
    delivered: ["已办结并送达", "done"],
    withdrawn: ["已撤回", "paused"],
  };
  const NOTES = {
    supplement: "请按一次性告知书补正材料；补正期间不计入办理时限。",
    special: "本件进入特别程序（如现场核查、专家评审、听证），所需时间不计入办理时限。",
    forwarded: "本件已报上级部门办理，结果返回后继续办理。",
    withdrawn: "本件已撤回，不再办理。",
  };
  const RESULTS = { approved: "准予办理", refused: "不予办理" };
  const departments = new Map();  // "centre/code" -> the department's name, from the centre's guide

  /* The department's name: the case number starts with its centre, whose guide names its departments. */
  async function departmentName(caseNo, code) {
    const center = caseNo.split("-")[0];
    if (!departments.has(`${center}/${code}`)) {
      try {
        for (const item of await api(`/cases/public/items?center=${encodeURIComponent(center)}`)) {
          departments.set(`${center}/${item.department}`, item.department_name);
        }
      } catch (_) { /* the code is shown instead */ }
    }
    return departments.get(`${center}/${code}`) || code;
  }

  function show(c, department) {
    const [words, kind] = STATES[c.status] || [c.status, ""];
    $("case-no").textContent = c.case_no;
    $("case-state").textContent = words;
    $("case-state").className = `badge ${kind}`.trim();
    $("case-item").textContent = c.item_name;
    $("case-department").textContent = department;
    $("case-stage").textContent = c.status === "completed" || c.status === "delivered" ? "已完成" : c.stage;
    $("case-accepted").textContent = P.fullDay(c.accepted_on);
    $("case-due").textContent = `${P.fullDay(c.due_date)}前${c.paused ? "（计时暂停中，办结日期将顺延）" : ""}`;
    const result = c.result ? (RESULTS[c.result] || c.result) : null;
    for (const id of ["case-result", "case-result-label"]) $(id).hidden = !result;
    $("case-result").textContent = result || "";
    for (const id of ["case-completed", "case-completed-label"]) $(id).hidden = !c.completed_at;
    $("case-completed").textContent = c.completed_at ? P.dateTime(c.completed_at) : "";
    $("case-note").textContent = NOTES[c.status] || "";
    $("case-note").hidden = !NOTES[c.status];
    $("case").dataset.status = c.status;
    $("case").hidden = false;
  }

  async function ask() {
    P.show($("lookup-error"), "");
    $("case").hidden = true;
    if (!P.validate(form, FIELDS)) return;
    const caseNo = form.case_no.value.trim().toUpperCase();
    const code = form.code.value.trim().toUpperCase();
    $("lookup-submit").disabled = true;
    try {
      const c = await api(`/cases/public/cases/${encodeURIComponent(caseNo)}?code=${encodeURIComponent(code)}`);
      show(c, await departmentName(c.case_no, c.department));
      $("case").focus();
    } catch (error) {
      // one answer for an unknown case and a wrong code: the API does not say which
      P.show($("lookup-error"), error.status === 404
        ? "未查到该办件：请核对办件编号和查询码；如仍查不到，请咨询大厅服务台"
        : P.explain(error, FIELDS));
    } finally {
      $("lookup-submit").disabled = false;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); ask(); });

  // the receipt's QR code fills both in: ask at once
  const given = document.body.dataset;
  if (given.caseNo) form.case_no.value = given.caseNo;
  if (given.code) form.code.value = given.code;
  if (given.caseNo && given.code) ask().finally(P.ready);
  else P.ready();  // nothing to fetch until asked: the form is the page
})();
