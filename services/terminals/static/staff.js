/* The staff's pages (window terminal, supervision board): a person's sign-in over the identity API. The access
   token lives in memory, renewed a minute before it ends with the refresh token, which the tab keeps
   (sessionStorage: a reload stays signed in, closing the browser signs out). At a window terminal the sign-in
   is made with the terminal's device token as its bearer, so the window comes from the device. */
"use strict";

const Staff = (() => {
  const { api, ApiError, claims } = Hall;

  class PersonSession {
    /* `kind`: the page ("window", "supervision"); `roles`: who may use it; `terminal`: the DeviceSession whose
       token signs in (the window terminal). */
    constructor(kind, { roles = [], terminal = null } = {}) {
      this.storage = `hall.person.${kind}`;
      this.roles = roles;
      this.terminal = terminal;
      this.access = null;
      this.expires = 0;
      this.claims = null;
      this.refreshing = null;
    }

    get refreshToken() { return sessionStorage.getItem(this.storage); }

    get center() { return this.claims && this.claims.centers ? this.claims.centers[0] : null; }

    get window() { return this.claims ? this.claims.window || null : null; }

    keep(answer) {
      const said = claims(answer.access_token);
      if (this.roles.length && !this.roles.includes(said.role)) {
        this.forget();
        throw new ApiError(403, { code: "wrong_role", detail: "此账号无权使用本页面" });
      }
      this.access = answer.access_token;
      this.expires = Date.now() + answer.expires_in * 1000;
      this.claims = said;
      if (answer.refresh_token) sessionStorage.setItem(this.storage, answer.refresh_token);
    }

    async login(username, password) {
      const headers = {};
      if (this.terminal) headers.Authorization = `Bearer ${await this.terminal.token()}`;
      this.keep(await api("/auth/login", { method: "POST", body: { username, password }, headers }));
    }

    /* A live access token: the one held, or a renewed one (one renewal at a time: a refresh token is spent
       once). A refused renewal signs out (401). */
    async token() {
      if (this.access && this.expires - Date.now() > 60000) return this.access;
      const refresh = this.refreshToken;
      if (!refresh) throw new ApiError(401, { code: "signed_out", detail: "请先登录" });
      if (!this.refreshing) {
        this.refreshing = api("/auth/refresh", { method: "POST", body: { refresh_token: refresh } })
          .then((answer) => this.keep(answer))
          .catch((error) => { if (error.status === 401) this.forget(); throw error; })
          .finally(() => { this.refreshing = null; });
      }
      await this.refreshing;
      return this.access;
    }

    expire() { this.access = null; }

    forget() {
      sessionStorage.removeItem(this.storage);
      this.access = null;
      this.claims = null;
    }

    /* Sign out: the sign-in ended at the identity service (its refresh family revoked), then forgotten here. */
    async logout() {
      const refresh = this.refreshToken;
      const access = this.access;
      this.forget();
      if (refresh && access) {
        await api("/auth/logout", { method: "POST", body: { refresh_token: refresh }, token: access }).catch(() => {});
      }
    }

    /* The session once signed in: the kept sign-in renewed, else the page's sign-in form (#signin) until a
       sign-in works. */
    static async open(kind, options = {}) {
      const session = new PersonSession(kind, options);
      if (session.refreshToken) {
        try { await session.token(); return session; } catch (_) { session.forget(); }
      }
      await askToSignIn(session);
      return session;
    }
  }

  function askToSignIn(session) {
    const box = document.getElementById("signin");
    const form = document.getElementById("signin-form");
    const error = document.getElementById("signin-error");
    box.hidden = false;
    form.username.focus();
    return new Promise((resolve) => {
      form.onsubmit = async (event) => {
        event.preventDefault();
        error.hidden = true;
        try {
          await session.login(form.username.value.trim(), form.password.value);
          box.hidden = true;
          form.reset();
          resolve();
        } catch (e) {
          error.textContent = e.status === 401 ? "用户名或密码错误" : e.status === 429 ? "尝试次数过多，请稍后再试" : e.message;
          error.hidden = false;
          form.password.value = "";
          form.password.focus();
        }
      };
    });
  }

  return { PersonSession };
})();
