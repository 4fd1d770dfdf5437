"use strict";
// Skywire hypervisor UI: plain JavaScript talking to the JSON API under /api (session cookie
// `swm-session`, set by /api/login). The terminal is xterm.js (MIT, /_xterm/LICENSE) on the
// WebSocket /api/visors/<pk>/pty: output in binary frames, input as text frames, and
// {"type":"resize","cols":C,"rows":R} to resize.
(function () {
  const $ = (id) => document.getElementById(id);
  const STATUS = { 0: "stopped", 1: "running", 2: "errored", 3: "starting" };
  let selected = null;
  let timers = [];
  let term = null;
  let termWs = null;

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }

  class HttpError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(method, path, body) {
    const opts = { method, headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch("/api" + path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== "/login") {
      showAuth(true);
      throw new HttpError(401, "not logged in");
    }
    if (!r.ok) throw new HttpError(r.status, (data && data.error) || ("HTTP " + r.status));
    return data;
  }

  function stopTimers() { timers.forEach(clearInterval); timers = []; }

  function showAuth(exists) {
    stopTimers();
    closeTerm();
    $("main").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("auth").hidden = false;
    $("auth-form").dataset.mode = exists ? "login" : "create";
    $("auth-title").textContent = exists ? "Log in" : "Create the account";
    $("auth-submit").textContent = exists ? "Log in" : "Create account";
    $("confirm-row").hidden = exists;
  }

  async function showMain() {
    $("auth").hidden = true;
    $("main").hidden = false;
    try {
      const u = await api("GET", "/user");
      if (u.username) {
        $("who").textContent = u.username;
        $("logout").hidden = false;
      }
    } catch (e) { return; }
    await loadVisors();
    stopTimers();
    timers.push(setInterval(loadVisors, 3000));
    timers.push(setInterval(() => { if (selected) loadApps(); }, 3000));
  }

  $("auth-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const mode = ev.target.dataset.mode;
    const username = $("username").value.trim();
    const password = $("password").value;
    $("auth-error").textContent = "";
    try {
      if (mode === "create") {
        if (password !== $("confirm").value) throw new Error("the passwords differ");
        await api("POST", "/create-account", { username, password });
      }
      await api("POST", "/login", { username, password });
      $("password").value = "";
      $("confirm").value = "";
      await showMain();
    } catch (e) {
      $("auth-error").textContent = e.message;
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/logout"); } catch (e) { /* shown by showAuth */ }
    selected = null;
    $("detail").hidden = true;
    showAuth(true);
  });

  async function loadVisors() {
    let list;
    try { list = await api("GET", "/visors"); } catch (e) { return; }
    const tbody = $("visors").tBodies[0];
    tbody.replaceChildren(...list.map((v) => {
      const s = v.summary || {};
      const apps = v.summary ? (s.apps_running + "/" + s.apps_total + " running") : "";
      const tr = el("tr", { "data-pk": v.pk, "data-online": String(v.online) }, [
        el("td", { class: "pk", text: v.pk + (v.local ? " (this hypervisor)" : "") }),
        el("td", { class: v.online ? "online" : "offline", text: v.online ? "online" : "offline" }),
        el("td", { text: apps }),
        el("td", { text: s.version || "" }),
      ]);
      if (v.pk === selected) tr.classList.add("selected");
      tr.addEventListener("click", () => select(v.pk));
      return tr;
    }));
  }

  async function select(pk) {
    if (selected !== pk) closeTerm();
    selected = pk;
    $("detail").hidden = false;
    $("detail-pk").textContent = pk;
    for (const tr of $("visors").tBodies[0].rows) {
      tr.classList.toggle("selected", tr.dataset.pk === pk);
    }
    await Promise.all([loadApps(), loadTransports()]);
  }

  async function loadApps() {
    const pk = selected;
    let apps;
    try {
      apps = await api("GET", "/visors/" + pk + "/apps");
      $("detail-error").textContent = "";
    } catch (e) {
      $("detail-error").textContent = e.message;
      return;
    }
    if (pk !== selected) return;
    const tbody = $("apps").tBodies[0];
    tbody.replaceChildren(...apps.map((a) => {
      const auto = el("input", { type: "checkbox", class: "autostart" });
      auto.checked = !!a.auto_start;
      auto.addEventListener("change", () => putApp(a.name, { autostart: auto.checked }));
      const start = el("button", { class: "start", text: "Start" });
      start.addEventListener("click", () => putApp(a.name, { status: 1 }));
      const stop = el("button", { class: "stop", text: "Stop" });
      stop.addEventListener("click", () => putApp(a.name, { status: 0 }));
      const status = STATUS[a.status] || String(a.status);
      const detail = a.error ? " (" + a.error + ")" : "";
      return el("tr", { "data-app": a.name, "data-status": String(a.status) }, [
        el("td", { text: a.name }),
        el("td", { class: "status status-" + a.status, text: status + detail }),
        el("td", {}, [auto]),
        el("td", {}, [start, stop]),
      ]);
    }));
  }

  async function putApp(name, body) {
    try {
      await api("PUT", "/visors/" + selected + "/apps/" + encodeURIComponent(name), body);
      $("detail-error").textContent = "";
    } catch (e) {
      $("detail-error").textContent = name + ": " + e.message;
    }
    await loadApps();
  }

  async function loadTransports() {
    let list;
    try { list = await api("GET", "/visors/" + selected + "/transports"); } catch (e) { return; }
    const tbody = $("transports").tBodies[0];
    if (!list.length) {
      tbody.replaceChildren(el("tr", {}, [el("td", { colspan: "2", text: "no transports" })]));
      return;
    }
    tbody.replaceChildren(...list.map((t) => el("tr", {}, [
      el("td", { class: "pk", text: t.id || "" }),
      el("td", { text: JSON.stringify(t) }),
    ])));
  }

  function closeTerm() {
    if (termWs) { termWs.onclose = null; termWs.close(); termWs = null; }
    if (term) { term.dispose(); term = null; }
    $("term").replaceChildren();
  }

  $("open-term").addEventListener("click", () => {
    if (!selected) return;
    closeTerm();
    term = new Terminal({ cursorBlink: true, scrollback: 5000 });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open($("term"));
    try { fit.fit(); } catch (e) { /* not laid out yet */ }
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/api/visors/" + selected + "/pty");
    ws.binaryType = "arraybuffer";
    termWs = ws;
    const t = term;
    const sendSize = () => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "resize", cols: t.cols, rows: t.rows }));
      }
    };
    ws.onopen = () => { sendSize(); t.focus(); };
    ws.onmessage = (ev) => {
      t.write(typeof ev.data === "string" ? ev.data : new Uint8Array(ev.data));
    };
    ws.onclose = () => { t.write("\r\n\x1b[33m[connection closed]\x1b[0m\r\n"); };
    t.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(d); });
    t.onResize(sendSize);
    window.addEventListener("resize", () => { try { fit.fit(); } catch (e) { /* ignore */ } });
  });

  // The terminal's text (for tests and copy/paste helpers).
  window.hv = {
    termText() {
      if (!term) return "";
      const buf = term.buffer.active;
      const lines = [];
      for (let i = 0; i < buf.length; i++) {
        const l = buf.getLine(i);
        if (l) lines.push(l.translateToString(true));
      }
      return lines.join("\n");
    },
  };

  (async function boot() {
    try {
      const p = await api("GET", "/ping");
      if (!p.auth) { await showMain(); return; }
      const r = await fetch("/api/user");
      if (r.ok) await showMain(); else showAuth(p.account);
    } catch (e) {
      $("auth").hidden = false;
      $("auth-error").textContent = "hypervisor not reachable: " + e.message;
    }
  })();
})();
