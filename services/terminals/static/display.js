/* 综合屏: the board, then the display feed from the board's event id. The newest call highlighted and
   spoken; a recall spoken again; a feed.gap reloads the board. `window.hallDisplay` is for the tests. */
"use strict";

(async () => {
  const { api, el } = Hall;
  const $ = (id) => document.getElementById(id);
  const announcer = new Hall.Announcer({ rate: Number(document.body.dataset.speechRate || 0.9) });
  const session = await Hall.DeviceSession.open("display");
  const center = session.center;
  const state = { windows: new Map(), recent: [], waiting: {}, names: {}, notices: [], hotline: null, items: [], newest: null };
  const RECENT = 8;
  window.hallDisplay = { announcer, state, feed: null, boards: 0 };

  Hall.everyMinute((text) => { $("clock").textContent = text; });

  const STATES = { away: "暂离", closed: "暂停服务", signed_out: "未上岗" };

  function renderWindows() {
    const rows = [...state.windows.values()].sort((a, b) => a.number.localeCompare(b.number, "zh", { numeric: true }));
    $("windows").replaceChildren(...rows.map((w) => {
      const current = w.current ? w.current.number : "—";
      const newest = state.newest && state.newest.window === w.number;
      const note = w.state === "away" ? (w.away_message || "暂时离开") : w.state === "closed" ? (w.closed_reason || "暂停服务") : (w.state === "open" ? (w.current ? "办理中" : "空闲") : STATES[w.state] || "");
      return el("tr", { class: newest ? "newest-row" : null, "data-window": w.number },
        el("th", { scope: "row", text: `${w.number} 号窗口` }),
        el("td", { class: "number", text: current }),
        el("td", { class: `state state-${w.state}`, text: note }));
    }));
  }

  function renderRecent() {
    $("recent").replaceChildren(...state.recent.map((c, i) => el("li", { class: i === 0 ? "newest-call" : null },
      el("span", { class: "number", text: c.number }), el("span", { text: `→ ${c.window} 号窗口` }))));
  }

  function renderWaiting() {
    const codes = Object.keys(state.waiting).sort();
    $("waiting").replaceChildren(...codes.map((code) => el("li", {},
      el("span", { text: state.names[code] || code }), el("span", { class: "count", text: `${state.waiting[code]} 人` }))));
  }

  function renderTicker() {
    const parts = state.notices.map((n) => n.text);
    for (const item of state.items) {
      parts.push(`${item.name}：承诺 ${item.promised_limit_days} 个工作日（法定 ${item.legal_limit_days}）${item.fees ? "，收费 " + item.fees : "，不收费"}`);
    }
    if (state.hotline) parts.push(`投诉电话：${state.hotline}`);
    $("ticker").textContent = parts.join("　　◆　　") || "欢迎来到政务服务中心";
  }

  function renderNewest() {
    $("newest").textContent = state.newest ? state.newest.announcement : "请留意叫号";
    $("newest").classList.toggle("flash", !!state.newest);
  }

  function render() { renderWindows(); renderRecent(); renderWaiting(); renderTicker(); renderNewest(); }

  async function loadBoard() {
    const token = await session.token();
    const [board, centre, services] = await Promise.all([
      api(`/queue/centers/${center}/display`, { token }),
      api(`/queue/centers/${center}`, { token }),
      api(`/queue/centers/${center}/services`, { token }),
    ]);
    $("center-name").textContent = centre.name;
    state.names = Object.fromEntries(services.map((s) => [s.code, s.name]));
    state.windows = new Map(board.windows.map((w) => [w.number, w]));
    state.recent = board.recent_calls.slice(0, RECENT);
    state.newest = state.recent[0] || null;
    state.waiting = board.waiting;
    state.notices = board.notices;
    state.hotline = board.complaint_hotline;
    state.items = board.items;
    window.hallDisplay.boards += 1;
    render();
    $("board").hidden = false;
    document.body.dataset.ready = "1";  // drawn (the UI benchmark waits for it)
    return board.last_event_id || 0;
  }

  function call(data, recall) {
    const c = { number: data.ticket.number, window: data.call.window, announcement: data.call.announcement };
    const w = state.windows.get(c.window);
    if (w) w.current = c;
    state.recent = [c, ...state.recent.filter((r) => !(r.number === c.number && r.window === c.window))].slice(0, RECENT);
    state.newest = c;
    announcer.say(c.announcement);
    if (recall) Hall.showStatus(`重呼 ${c.number}`, "info", 4000);
  }

  function apply(envelope) {
    const d = envelope.data;
    const w = d.window ? state.windows.get(d.window) : null;
    switch (envelope.type) {
      case "ticket.called": call(d, false); break;
      case "ticket.recalled": call(d, true); break;
      case "queue.waiting_counts": state.waiting = d.waiting; break;
      case "window.signed_in": if (w) { w.state = "open"; w.clerk = d.clerk; w.post = d.post; } break;
      case "window.signed_out": if (w) { w.state = "signed_out"; w.clerk = null; w.current = null; } break;
      case "window.away": if (w) { w.state = "away"; w.away_message = d.message; } break;
      case "window.back": if (w) { w.state = "open"; w.away_message = null; } break;
      case "window.closed": if (w) { w.state = "closed"; w.closed_reason = d.reason; w.current = null; } break;
      case "window.upserted": loadBoard().catch(() => {}); return;
      case "center.notices_changed": state.notices = d.notices; state.hotline = d.complaint_hotline; state.items = d.items || []; break;
      case "center.upserted": if (d.id === center) $("center-name").textContent = d.name; break;
      default: return;
    }
    render();
  }

  let lastId;
  for (;;) {
    try { lastId = await loadBoard(); break; } catch (error) { Hall.showStatus(error.message, "error"); await Hall.sleep(5000); }
  }
  const feed = new Hall.Feed(`/queue/feeds/display?center=${encodeURIComponent(center)}`, session, {
    onEvent: apply,
    onGap: async () => { feed.lastId = await loadBoard(); },
    onState: (s) => {
      $("live").dataset.state = s;
      $("live").textContent = s === "open" ? "实时" : "重新连接中";
    },
  });
  window.hallDisplay.feed = feed;
  feed.start(lastId);
})();
