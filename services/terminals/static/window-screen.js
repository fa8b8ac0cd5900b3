/* 窗口屏 (窗口吊牌, 工作牌): the window's department, the clerk signed in (name, photo, post title and A/B
   post), the number served, the window's items; the away or closed message. The display feed, this window. */
"use strict";

(async () => {
  const { api, el } = Hall;
  const $ = (id) => document.getElementById(id);
  const number = document.body.dataset.window;
  const session = await Hall.DeviceSession.open("display");
  const center = session.center;
  const state = { sign: null, window: null, items: [] };
  window.hallWindowScreen = { state, feed: null };

  async function clerkCard(clerk, post) {
    $("ws-clerk").hidden = !clerk;
    if (!clerk) return;
    $("ws-clerk-name").textContent = clerk.display_name;
    $("ws-post-title").textContent = clerk.post_title || "";
    $("ws-post").textContent = post === "B" ? "B 岗（顶岗）" : post === "A" ? "A 岗" : "";
    if (clerk.photo_url) { $("ws-photo").src = clerk.photo_url; $("ws-photo").alt = `${clerk.display_name} 的照片`; }
    $("ws-photo").hidden = !clerk.photo_url;
  }

  function render() {
    const sign = state.sign;
    document.body.dataset.state = sign ? sign.state : "signed_out";
    $("ws-current").textContent = sign && sign.current ? sign.current.number : "—";
    const away = sign && sign.state === "away" ? `暂时离开：${sign.away_message || "请稍候"}`
      : sign && sign.state === "closed" ? `暂停服务：${sign.closed_reason || ""}`
      : !sign || sign.state === "signed_out" ? "本窗口暂无工作人员" : null;
    $("ws-away").hidden = !away;
    $("ws-away").textContent = away || "";
    clerkCard(sign && sign.state !== "signed_out" ? sign.clerk : null, sign && sign.post);
    $("ws-items").replaceChildren(...(state.items.length ? state.items.map((i) => el("li", {},
      el("span", { text: i.name }), el("span", { class: "limit", text: `承诺 ${i.promised_limit_days} 个工作日` })))
      : [el("li", { text: "详见大厅办事指南" })]));
  }

  async function load() {
    const token = await session.token();
    const [board, win, items] = await Promise.all([
      api(`/queue/centers/${center}/display`, { token }),
      api(`/queue/centers/${center}/windows/${encodeURIComponent(number)}`, { token }),
      api(`/cases/public/items?center=${encodeURIComponent(center)}`).catch(() => []),
    ]);
    state.window = win;
    state.sign = board.windows.find((w) => w.number === number) || null;
    state.items = win.department ? items.filter((i) => i.department === win.department) : items;
    $("ws-name").textContent = win.name;
    $("ws-department").textContent = state.items.length ? state.items[0].department_name : (win.department || "");
    render();
    $("screen").hidden = false;
    document.body.dataset.ready = "1";  // drawn (the UI benchmark waits for it)
    return board.last_event_id || 0;
  }

  function apply(envelope) {
    const d = envelope.data;
    const mine = (d.call && d.call.window === number) || d.window === number;
    if (!mine) return;
    const sign = state.sign || (state.sign = { number, state: "signed_out", clerk: null, post: null, current: null });
    switch (envelope.type) {
      case "ticket.called":
      case "ticket.recalled": sign.current = { number: d.ticket.number }; break;
      case "window.signed_in": sign.state = "open"; sign.clerk = d.clerk; sign.post = d.post; sign.current = null; break;
      case "window.signed_out": sign.state = "signed_out"; sign.clerk = null; sign.current = null; break;
      case "window.away": sign.state = "away"; sign.away_message = d.message; break;
      case "window.back": sign.state = "open"; sign.away_message = null; break;
      case "window.closed": sign.state = "closed"; sign.closed_reason = d.reason; sign.current = null; break;
      case "window.upserted": load().catch(() => {}); return;
      default: return;
    }
    render();
  }

  let lastId;
  for (;;) {
    try { lastId = await load(); break; } catch (error) { Hall.showStatus(error.message, "error"); await Hall.sleep(5000); }
  }
  const feed = new Hall.Feed(`/queue/feeds/display?center=${encodeURIComponent(center)}`, session, {
    onEvent: apply,
    onGap: async () => { feed.lastId = await load(); },
  });
  window.hallWindowScreen.feed = feed;
  feed.start(lastId);
})();
