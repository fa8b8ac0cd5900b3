/* The screens' common script: the APIs with problem answers, a device's key and token, live feeds that
   reconnect by themselves, and the spoken announcements. Plain JavaScript, no build step, nothing loaded
   from anywhere but this origin. */
"use strict";

const Hall = (() => {
  const API = document.body.dataset.api || "/api";
  const UI = document.body.dataset.ui || "";
  const DIGITS = "零一二三四五六七八九";

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16)); // a hall LAN over plain http is no secure context
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
      this.code = this.problem.code || null;
    }
  }

  /* One call to a service's API through the gateway: the parsed JSON, null for 204, an ApiError otherwise
     (its message is the problem's Chinese detail, fit to show). */
  async function api(path, { method = "GET", body, token, headers = {}, idempotent = false } = {}) {
    const h = { Accept: "application/json", ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (idempotent) h["Idempotency-Key"] = uuid();
    let response;
    try {
      response = await fetch(API + path, {
        method, headers: h, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new ApiError(0, { title: "网络不可用", detail: "网络连接中断，请稍后再试" });
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data || { detail: `服务暂时不可用（${response.status}）` });
    return data;
  }

  function claims(token) {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent([...atob(part)].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  }

  /* A device's session: its key (given once as #key=..., or typed into the set-up form, then kept by the
     browser) exchanged for 15-minute tokens, renewed a minute before they end. */
  class DeviceSession {
    constructor(kind) {
      this.storage = `hall.device.${kind}`;
      this.access = null;
      this.expires = 0;
      this.claims = null;
      const match = location.hash.match(/^#key=([^&]+)/);
      if (match) {
        localStorage.setItem(this.storage, decodeURIComponent(match[1]));
        history.replaceState(null, "", location.pathname + location.search); // the key leaves the address bar
      }
    }

    get key() { return localStorage.getItem(this.storage); }

    forget() { localStorage.removeItem(this.storage); this.access = null; }

    expire() { this.access = null; }

    async token() {
      if (this.access && this.expires - Date.now() > 60000) return this.access;
      const key = this.key;
      if (!key) throw new ApiError(401, { code: "no_key", detail: "本机尚未设置设备密钥" });
      const answer = await api("/auth/token", { method: "POST", body: { key } });
      this.access = answer.access_token;
      this.expires = Date.now() + answer.expires_in * 1000;
      this.claims = claims(this.access);
      return this.access;
    }

    get center() { return this.claims && this.claims.centers ? this.claims.centers[0] : null; }

    /* The session once it has a working key: asks for one with the page's set-up form until it does. */
    static async open(kind) {
      const session = new DeviceSession(kind);
      for (;;) {
        if (session.key) {
          try { await session.token(); return session; } catch (error) {
            if (error.status === 401) session.forget();
            else { showStatus(error.message, "error"); await sleep(5000); continue; }
          }
        }
        await askForKey(session);
      }
    }
  }

  function askForKey(session) {
    const setup = document.getElementById("setup");
    const form = document.getElementById("setup-form");
    const error = document.getElementById("setup-error");
    setup.hidden = false;
    document.getElementById("setup-key").focus();
    return new Promise((resolve) => {
      form.onsubmit = async (event) => {
        event.preventDefault();
        localStorage.setItem(session.storage, form.key.value.trim());
        try {
          await session.token();
          setup.hidden = true;
          form.reset();
          resolve();
        } catch (e) {
          session.forget();
          error.textContent = e.status === 401 ? "设备密钥无效，请核对后重新输入" : e.message;
          error.hidden = false;
        }
      };
    });
  }

  /* A live feed of server-sent events, read with fetch so that every connection sends a fresh token and
     the last event id as headers. Reconnects by itself (0.5 s doubling to 10 s, with jitter); a feed.gap
     asks the page to reload its state. */
  class Feed {
    constructor(path, session, { onEvent, onGap = () => {}, onState = () => {} }) {
      this.path = path;
      this.session = session;
      this.onEvent = onEvent;
      this.onGap = onGap;
      this.onState = onState;
      this.lastId = null;
      this.stopped = false;
      this.connections = 0;
    }

    start(lastId) {
      this.lastId = lastId;
      this.loop();
      return this;
    }

    stop() {
      this.stopped = true;
      if (this.controller) this.controller.abort();
    }

    async loop() {
      let delay = 500;
      while (!this.stopped) {
        try {
          const token = await this.session.token();
          const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
          if (this.lastId !== null && this.lastId !== undefined) headers["Last-Event-ID"] = String(this.lastId);
          this.controller = new AbortController();
          const response = await fetch(API + this.path, { headers, cache: "no-store", signal: this.controller.signal });
          if (response.status === 401) this.session.expire();
          if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
          this.connections += 1;
          this.onState("open");
          delay = 500;
          await this.read(response.body);
        } catch (_) {
          if (this.stopped) return;
        }
        this.onState("reconnecting");
        await sleep(delay / 2 + Math.random() * delay);
        delay = Math.min(delay * 2, 10000);
      }
    }

    async read(stream) {
      const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let frame = { event: "message", data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            this.dispatch(frame);
            frame = { event: "message", data: [], id: null };
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") frame.event = text;
            else if (field === "data") frame.data.push(text);
            else if (field === "id") frame.id = text;
          }
        }
      }
    }

    dispatch(frame) {
      if (frame.id !== null && /^\d+$/.test(frame.id)) this.lastId = Number(frame.id);
      if (!frame.data.length) return; // an id-only frame moves the cursor and dispatches nothing
      if (frame.event === "feed.gap") { this.onGap(); return; }
      try { this.onEvent(JSON.parse(frame.data.join("\n"))); } catch (error) { console.error(error); }
    }
  }

  /* A ticket number read digit by digit, as a hall announces it: "A001" -> "A零零一". */
  function spokenForm(text) {
    return text.replace(/([A-Za-z]+)(\d+)/g, (_, letters, digits) => letters + [...digits].map((d) => DIGITS[d]).join(""));
  }

  /* The announcements: queued, one at a time, in zh-CN with the browser's speech synthesis, or a chime where
     no Chinese voice exists. `log` keeps every utterance queued (what the screen said, in order). */
  class Announcer {
    constructor({ rate = 0.9, pause = 800 } = {}) {
      this.queue = [];
      this.log = [];
      this.busy = false;
      this.rate = rate;
      this.pause = pause;
      this.voice = null;
      this.chimes = 0;
      if ("speechSynthesis" in window) {
        const pick = () => {
          this.voice = speechSynthesis.getVoices().find((v) => /^zh[-_]CN/i.test(v.lang)) ||
            speechSynthesis.getVoices().find((v) => /^zh/i.test(v.lang)) || null;
        };
        pick();
        speechSynthesis.addEventListener("voiceschanged", pick);
      }
    }

    say(text) {
      const utterance = spokenForm(text);
      this.queue.push(utterance);
      this.log.push(utterance);
      this.next();
    }

    next() {
      if (this.busy || !this.queue.length) return;
      this.busy = true;
      const text = this.queue.shift();
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        setTimeout(() => { this.busy = false; this.next(); }, this.pause);
      };
      if (this.voice) {
        const u = new SpeechSynthesisUtterance(text);
        u.lang = "zh-CN";
        u.voice = this.voice;
        u.rate = this.rate;
        u.onend = done;
        u.onerror = done;
        speechSynthesis.speak(u);
        setTimeout(done, 2000 + text.length * 450); // an engine that never says it ended does not stop the queue
      } else {
        this.chime().finally(() => setTimeout(done, 1200));
      }
    }

    async chime() {
      this.chimes += 1;
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      const context = this.context || (this.context = new Context());
      const now = context.currentTime;
      [[659.3, 0], [523.3, 0.45]].forEach(([frequency, at]) => {  // 叮咚: E5 then C5
        const tone = context.createOscillator();
        const gain = context.createGain();
        tone.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, now + at);
        gain.gain.exponentialRampToValueAtTime(0.4, now + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.8);
        tone.connect(gain).connect(context.destination);
        tone.start(now + at);
        tone.stop(now + at + 0.85);
      });
      await sleep(1300);
    }
  }

  let statusTimer = null;
  function showStatus(text, kind = "info", ms = 6000) {
    const box = document.getElementById("status");
    if (!box) return;
    box.textContent = text;
    box.className = `status ${kind}`;
    box.hidden = false;
    clearTimeout(statusTimer);
    if (ms) statusTimer = setTimeout(() => { box.hidden = true; }, ms);
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function minutes(seconds) {
    const m = Math.max(1, Math.round(seconds / 60));
    return m >= 60 ? `约 ${Math.floor(m / 60)} 小时 ${m % 60} 分钟` : `约 ${m} 分钟`;
  }

  /* The hall's time, not the screen's: the terminals' /time (the shared clock every service reads, simulated
     in a rehearsal) with the half round trip, then run on at its speed; asked again every 10 minutes. */
  const hallClock = { real: Date.now(), hall: Date.now(), speed: 1 };
  async function syncClock() {
    try {
      const sent = Date.now();
      const response = await fetch(`${UI}/time`, { cache: "no-store" });
      const body = await response.json();
      const received = Date.now();
      Object.assign(hallClock, { real: (sent + received) / 2, hall: Date.parse(body.now), speed: Number(body.speed ?? 1) });
    } catch (error) { /* the screen's own time until the next try */ }
  }
  const hallNow = () => new Date(hallClock.hall + (Date.now() - hallClock.real) * hallClock.speed);
  const clockReady = syncClock();
  setInterval(syncClock, 600000);

  const clockText = (date = hallNow()) => date.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Shanghai" });

  /* `show(text)` now, once the hall's time is known, and every 10 s. */
  function everyMinute(show) {
    const tick = () => show(clockText());
    tick();
    clockReady.then(tick);
    setInterval(tick, 10000);
  }

  return { API, UI, api, ApiError, DeviceSession, Feed, Announcer, spokenForm, showStatus, el, minutes, sleep, uuid, claims, clockText, clockReady, hallNow, everyMinute };
})();
