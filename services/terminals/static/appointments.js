/* 网上预约: the centre's open services with the free places of each slot over the next 7 days, booking one
   (phone required, ID number optional) and cancelling by code and phone. No token: the public routes only. */
"use strict";

(() => {
  const { api, el } = Hall;
  const P = Public;
  const $ = (id) => document.getElementById(id);
  const base = `/queue/public/centers/${encodeURIComponent(P.center)}`;
  const book = $("book-form");
  const cancel = $("cancel-form");
  const FIELDS = {
    service_code: ["办理业务", "请重新选择办理业务"],
    slot_start: ["预约时段", "请重新选择预约时段"],
    phone: ["手机号码", "请填写 11 位手机号码"],
    id_number: ["身份证号码", "请核对 18 位身份证号码（末位可为 X），或不填"],
    code: ["预约码", "请核对预约码"],
  };
  let services = [];

  const slotsOf = (code) => (services.find((s) => s.code === code) || { slots: [] }).slots;
  const span = (slot) => `${P.time(slot.start)}–${P.time(slot.end)}`;

  function fillServices() {
    const offered = services.filter((s) => s.slots.length);
    const chosen = book.service_code.value;
    book.service_code.replaceChildren(...offered.map((s) => el("option", { value: s.code, text: s.name })));
    if (offered.some((s) => s.code === chosen)) book.service_code.value = chosen;
    $("no-services").hidden = offered.length > 0;
    book.hidden = offered.length === 0;
  }

  function fillDays() {
    const chosen = book.day.value;
    const days = new Map();
    for (const slot of slotsOf(book.service_code.value)) {
      const key = P.key(slot.start);
      const day = days.get(key) || { label: P.day(slot.start), free: 0 };
      day.free += slot.free;
      days.set(key, day);
    }
    book.day.replaceChildren(...[...days].map(([key, day]) => el("option", {
      value: key, text: `${day.label}${day.free ? `　余 ${day.free} 个` : "　已约满"}`,
    })));
    const open = [...days].find(([, day]) => day.free > 0);
    if (days.has(chosen)) book.day.value = chosen;
    else if (open) book.day.value = open[0];
  }

  function fillSlots() {
    const chosen = book.querySelector("input[name=slot_start]:checked");
    const slots = slotsOf(book.service_code.value).filter((s) => P.key(s.start) === book.day.value);
    $("slots").replaceChildren(...slots.map((slot) => el("label", { class: slot.free ? "slot" : "slot full" },
      el("input", { type: "radio", name: "slot_start", value: slot.start, required: true, disabled: !slot.free,
                    checked: Boolean(chosen && chosen.value === slot.start && slot.free) }),
      el("span", { class: "slot-time", text: span(slot) }),
      el("span", { class: "slot-free", text: slot.free ? `余 ${slot.free} 个` : "已约满" }))));
    $("no-slots").hidden = slots.length > 0;
  }

  async function load() {
    services = await api(`${base}/services`);
    fillServices();
    fillDays();
    fillSlots();
    $("loading").hidden = true;
  }

  book.service_code.addEventListener("change", () => { fillDays(); fillSlots(); });
  book.day.addEventListener("change", fillSlots);

  const refused = (form, error, box) => P.refuse(form, error, box, FIELDS, { 404: "未找到该服务中心或业务，请核对链接" });

  book.addEventListener("submit", async (event) => {
    event.preventDefault();
    P.show($("book-error"), "");
    if (!P.validate(book, FIELDS)) return;
    const slot = book.querySelector("input[name=slot_start]:checked");
    if (!slot) { P.fieldError(book, "slot_start", "请选择预约时段"); return; }
    const service = services.find((s) => s.code === book.service_code.value);
    const idNumber = book.id_number.value.trim().toUpperCase();
    $("book-submit").disabled = true;
    try {
      const booked = await api(`${base}/appointments`, {
        method: "POST",
        body: { service_code: service.code, slot_start: slot.value, phone: book.phone.value.trim(),
                id_number: idNumber || null },
      });
      $("booked-code").textContent = booked.code;
      $("booked-service").textContent = service.name;
      $("booked-time").textContent = `${P.day(booked.slot_start)} ${P.time(booked.slot_start)}–${P.time(booked.slot_end)}`;
      $("booked").dataset.code = booked.code;
      $("booked").hidden = false;
      $("booked").focus();
      book.id_number.value = "";
      slot.checked = false;
    } catch (error) {
      refused(book, error, $("book-error"));
      $("booked").hidden = true;
    } finally {
      $("book-submit").disabled = false;
    }
    load().catch(() => {});  // the places left, as they are now (a full slot shows full)
  });

  cancel.addEventListener("submit", async (event) => {
    event.preventDefault();
    P.show($("cancel-result"), "");
    if (!P.validate(cancel, FIELDS)) return;
    const code = cancel.code.value.trim().toUpperCase();
    try {
      const done = await api(`/queue/public/appointments/${encodeURIComponent(code)}/cancel`, {
        method: "POST", body: { phone: cancel.phone.value.trim() },
      });
      P.show($("cancel-result"), `预约 ${done.code}（${P.day(done.slot_start)} ${P.time(done.slot_start)}）已取消。`, "ok");
      cancel.reset();
      if ($("booked").dataset.code === done.code) $("booked").hidden = true;
      load().catch(() => {});
    } catch (error) {
      refused(cancel, error, $("cancel-result"));
    }
  });

  (async () => {
    for (;;) {
      try { await load(); P.ready(); break; } catch (error) {
        $("loading").textContent = error.status === 404 ? "未找到该服务中心，请核对链接" : P.explain(error);
        P.ready();  // what it could say is on the screen
        if (error.status === 404) return;
        await Hall.sleep(10000);
      }
    }
    setInterval(() => load().catch(() => {}), 60000);
  })();
})();
