/* 号票查询: the ticket's public page (its slip's lookup code, no token); rating once it was served. */
"use strict";

(() => {
  const { api, minutes } = Hall;
  const $ = (id) => document.getElementById(id);
  const id = document.body.dataset.ticket;
  const code = document.body.dataset.code;
  const STATES = { waiting: "等候中", called: "已叫号，请到窗口办理", serving: "办理中", done: "已办结",
    no_show: "已过号，请到服务台", cancelled: "已取消", expired: "已过期" };
  let timer = null;

  async function refresh() {
    try {
      const t = await api(`/queue/public/tickets/${id}?code=${encodeURIComponent(code)}`);
      $("number").textContent = t.number;
      $("state").textContent = STATES[t.status] || t.status;
      $("ahead").textContent = t.status === "waiting" ? `${t.people_ahead} 人` : "—";
      $("wait").textContent = t.status === "waiting" ? (t.people_ahead ? minutes(t.estimated_wait_s) : "即将叫号") : "—";
      $("window").textContent = t.window ? `${t.window} 号窗口` : "叫号后显示";
      document.body.dataset.status = t.status;
      document.body.dataset.ready = "1";  // drawn (the UI benchmark waits for it)
      const served = t.status === "done";
      $("rate").hidden = !served;
      if (served) clearInterval(timer);
    } catch (error) {
      $("state").textContent = error.status === 404 ? "未找到该号票，请核对号票上的二维码" : error.message;
    }
  }

  $("rate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api(`/queue/public/tickets/${id}/evaluation?code=${encodeURIComponent(code)}`, {
        method: "POST", body: { rating: Number(form.rating.value), comment: form.comment.value.trim() || null },
      });
      form.hidden = true;
      $("rated").hidden = false;
    } catch (error) {
      Hall.showStatus(error.status === 409 ? "本次服务已评价过" : error.message, "error");
    }
  });

  refresh();
  timer = setInterval(refresh, 15000);
})();
