/* 取号机: a button per open service, the green channel, appointment check-in, and the printed ticket. */
"use strict";

(async () => {
  const { api, el, minutes } = Hall;
  const $ = (id) => document.getElementById(id);
  const ticketSeconds = Number(document.body.dataset.ticketSeconds || 20);
  const session = await Hall.DeviceSession.open("kiosk");
  const center = session.center;
  let services = [];
  let green = false;
  let busy = false;
  let closeTimer = null;

  Hall.everyMinute((text) => { $("clock").textContent = text; });

  function message(text) {
    $("message-text").textContent = text;
    $("message").hidden = false;
    $("message-close").focus();
  }
  $("message-close").addEventListener("click", () => { $("message").hidden = true; });

  function setGreen(on) {
    green = on;
    $("green").setAttribute("aria-pressed", String(on));
    $("green").classList.toggle("on", on);
    $("green-hint").hidden = !on;
  }
  $("green").addEventListener("click", () => setGreen(!green));

  async function load() {
    const token = await session.token();
    const [centre, list] = await Promise.all([
      api(`/queue/centers/${center}`, { token }),
      api(`/queue/centers/${center}/services`, { token }),
    ]);
    $("center-name").textContent = `${centre.name} · 自助取号`;
    $("slip-center").textContent = centre.name;
    services = list.filter((s) => s.active);
    const grid = $("services");
    grid.replaceChildren(...services.map((s) => el("button", {
      type: "button", class: "service", role: "listitem", "data-code": s.code,
      onclick: () => issue(s),
    }, el("span", { class: "service-name", text: s.name }), el("span", { class: "service-prefix", text: s.prefix }))));
    $("no-services").hidden = services.length > 0;
    $("kiosk").hidden = false;
    document.body.dataset.ready = "1";  // drawn and usable (the UI benchmark waits for it)
  }

  function show(ticket, serviceName, note) {
    $("ticket-number").textContent = ticket.number;
    $("slip-service").textContent = serviceName + (ticket.kind === "green" ? "（绿色通道）" : "");
    $("slip-ahead").textContent = `${ticket.people_ahead} 人`;
    $("slip-wait").textContent = ticket.people_ahead ? minutes(ticket.estimated_wait_s) : "即将叫号";
    $("slip-time").textContent = Hall.clockText(new Date(ticket.issued_at));
    $("slip-message").hidden = !note;
    $("slip-message").textContent = note || "";
    $("slip-qr").src = `${Hall.UI}/qr/ticket/${ticket.id}.svg?code=${encodeURIComponent(ticket.lookup_code)}`;
    $("ticket").dataset.ticketId = ticket.id;
    $("ticket").dataset.code = ticket.lookup_code;
    $("ticket").hidden = false;
    $("print").focus();
    clearTimeout(closeTimer);
    closeTimer = setTimeout(closeTicket, ticketSeconds * 1000);
  }

  function closeTicket() {
    clearTimeout(closeTimer);
    $("ticket").hidden = true;
    setGreen(false);
  }
  $("ticket-close").addEventListener("click", closeTicket);
  $("print").addEventListener("click", () => window.print());

  async function issue(service) {
    if (busy) return;
    busy = true;
    try {
      const token = await session.token();
      const ticket = await api(`/queue/centers/${center}/tickets`, {
        method: "POST", token, idempotent: true,
        body: { service_code: service.code, kind: green ? "green" : "walk_in" },
      });
      show(ticket, service.name);
    } catch (error) {
      message(error.message);  // 409: the service closed, the cut-off passed, the daily limit reached, ...
    } finally {
      busy = false;
    }
  }

  $("checkin").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    const code = event.target.code.value.trim().toUpperCase();
    try {
      const token = await session.token();
      const answer = await api(`/queue/appointments/${encodeURIComponent(code)}/check-in`, { method: "POST", token });
      const ticket = answer.ticket || answer;
      const service = services.find((s) => s.code === ticket.service_code);
      show(ticket, service ? service.name : ticket.service_code, answer.message || null);
      event.target.reset();
    } catch (error) {
      message(error.status === 404 ? "未找到该预约，请核对预约码" : error.message);
    } finally {
      busy = false;
    }
  });

  for (;;) {
    try { await load(); break; } catch (error) { Hall.showStatus(error.message, "error"); await Hall.sleep(5000); }
  }
  setInterval(() => load().catch(() => {}), 5 * 60 * 1000);  // services opened or closed during the day
})();
