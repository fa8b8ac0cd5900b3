/* 办件公示: the centre's latest cases accepted, completed or delivered, the applicant's name masked as the API
   gives it (张*), read again every minute. No token. */
"use strict";

(() => {
  const { api, el } = Hall;
  const P = Public;
  const $ = (id) => document.getElementById(id);
  const EVENTS = { accepted: "受理", completed: "办结", delivered: "送达" };
  const STATES = {
    in_progress: ["办理中", ""], extension_pending: ["办理中", ""], refusal_pending: ["办理中", ""],
    supplement: ["待补正", "paused"], special: ["特别程序", "paused"], forwarded: ["已上报", "paused"],
    completed: ["已办结", "done"], delivered: ["已送达", "done"], withdrawn: ["已撤回", "paused"],
  };
  const EVERY = 60000;

  function entry(e) {
    const [words, kind] = STATES[e.status] || [e.status, ""];
    return el("li", { class: "board-entry", "data-case": e.case_no },
      el("h3", {}, el("span", { text: e.item_name }), el("span", { class: `badge ${kind}`.trim(), text: words })),
      el("dl", {},
        el("dt", { text: "办件编号" }), el("dd", { class: "case-no", text: e.case_no }),
        el("dt", { text: "申请人" }), el("dd", { class: "applicant", text: e.applicant }),
        el("dt", { text: "承办部门" }), el("dd", { text: e.department }),
        el("dt", { text: "当前环节" }), el("dd", { text: e.stage }),
        el("dt", { text: `${EVENTS[e.event] || "更新"}日期` }), el("dd", { text: P.fullDay(e.on) })));
  }

  async function refresh() {
    try {
      const [board] = await Promise.all([
        api(`/cases/public/board?center=${encodeURIComponent(P.center)}&limit=30`),
        Hall.clockReady,  // "updated at" by the hall's clock, not the phone's
      ]);
      $("board").replaceChildren(...board.entries.map(entry));
      $("board-empty").hidden = board.entries.length > 0;
      P.show($("board-error"), "");
      $("updated").textContent = `更新于 ${Hall.clockText()}`;
      return true;
    } catch (error) {
      // the last board stays on the screen; the next minute tries again
      P.show($("board-error"), error.status === 404 ? "未找到该服务中心，请核对链接" : P.explain(error));
      return error.status !== 404;
    } finally {
      $("loading").hidden = true;
      P.ready();
    }
  }

  refresh().then((again) => { if (again) setInterval(refresh, EVERY); });
})();
