// AITRAPP operator console. No framework, no build step.
//
// Access: the token (if the server has one) is asked once and kept in this
// tab's sessionStorage; every request sends it as a bearer token.
// Data: the page's fragments are server-rendered HTML swapped in place. They
// are refreshed when the event stream (/events, read with fetch so the token
// can be sent) reports a topic they show, at most every LIVE_MIN_GAP_MS, and
// otherwise every IDLE_REFRESH_MS / HISTORY_IDLE_MS (and every IDLE_REFRESH_MS
// while the stream is down). Actions are the existing API calls: POST /pause,
// /resume, /flatten, /mode.
"use strict";
(() => {
  const TOKEN_KEY = "aitrapp.apiToken";
  const LIVE_MIN_GAP_MS = 300;
  const HISTORY_MIN_GAP_MS = 2000;
  const IDLE_REFRESH_MS = 5000; // the live view: prices move with ticks, not bus events
  const HISTORY_IDLE_MS = 30000; // verdicts and gate answers arrive without a bus event
  const $ = (sel) => document.querySelector(sel);

  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let unlocked = false;
  let stream = null; // AbortController of the open event stream
  let retryMs = 3000;
  const tick = { value: "", seenAt: 0 };
  const fragments = [];

  class Unauthorized extends Error {}

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function request(path, opts) {
    const o = Object.assign({ cache: "no-store" }, opts || {});
    o.headers = authHeaders(o.headers);
    const r = await fetch(path, o);
    if (r.status === 401) {
      lock(token ? "refused" : "missing");
      throw new Unauthorized("401");
    }
    return r;
  }

  function post(path, body) {
    const opts = { method: "POST" };
    if (body !== undefined) {
      opts.headers = { "Content-Type": "application/json" };
      opts.body = JSON.stringify(body);
    }
    return request(path, opts);
  }

  async function detail(r) {
    try {
      const b = await r.json();
      if (typeof b.detail === "string") return b.detail;
      if (b.message) return b.message;
      return JSON.stringify(b.detail || b);
    } catch (e) {
      return "HTTP " + r.status;
    }
  }

  // ---------------------------------------------------------------- messages
  function toast(kind, text) {
    const box = $("#toasts");
    const el = document.createElement("div");
    el.className = "toast " + kind;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = text;
    box.prepend(el);
    while (box.children.length > 4) box.lastChild.remove();
    setTimeout(() => el.remove(), kind === "error" ? 12000 : 6000);
  }

  function setConn(kind, text) {
    const el = $("#conn");
    el.className = "pill " + kind;
    el.textContent = text;
  }

  // ---------------------------------------------------------------- access
  function lock(why) {
    unlocked = false;
    stopStream();
    const msg = $("#auth-message");
    if (why === "refused") {
      msg.textContent =
        "The server refused this token (401 Unauthorized): it is wrong or has changed. " +
        "Enter the value of AITRAPP_API_TOKEN.";
      msg.classList.add("refused");
      sessionStorage.removeItem(TOKEN_KEY);
      token = "";
    } else {
      msg.textContent = "This console needs the API token: AITRAPP_API_TOKEN is set on the server.";
      msg.classList.remove("refused");
    }
    $("#main").hidden = true;
    $("#locked").hidden = false;
    setControls(null);
    setConn("off", "locked");
    $("#token-inline").value = "";
    $("#token-inline").focus();
  }

  async function unlock() {
    let r;
    try {
      r = await fetch("/ui/auth", { cache: "no-store", headers: authHeaders() });
    } catch (e) {
      setConn("retry", "unreachable");
      setTimeout(unlock, retryMs);
      return;
    }
    if (r.status === 401) return lock(token ? "refused" : "missing");
    if (!r.ok) return toast("error", "Access check failed: " + (await detail(r)));
    const who = await r.json();
    if (who.token_required && !who.authenticated) return lock("missing");
    unlocked = true;
    $("#locked").hidden = true;
    $("#main").hidden = false;
    fragments.forEach((f) => refresh(f));
    startStream();
  }

  function useToken(value) {
    token = (value || "").trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    unlock();
  }

  // ---------------------------------------------------------------- fragments
  function schedule(f) {
    if (f.timer) return; // one refresh pending per fragment, whatever the event rate
    const wait = Math.max(0, f.last + f.gap - Date.now());
    f.timer = setTimeout(() => {
      f.timer = null;
      refresh(f);
    }, wait);
  }

  async function refresh(f) {
    if (!unlocked) return;
    if (f.inflight) {
      f.again = true;
      return;
    }
    f.inflight = true;
    f.last = Date.now();
    try {
      const r = await request(f.url);
      const html = await r.text();
      if (r.ok || r.status === 503) swap(f.el, html);
      else toast("error", f.url + ": HTTP " + r.status);
    } catch (e) {
      if (!(e instanceof Unauthorized)) setConn("retry", "unreachable");
    } finally {
      f.inflight = false;
      if (f.again) {
        f.again = false;
        schedule(f);
      }
    }
  }

  function swap(el, html) {
    // Keep each inner scroll position: an update must not move what the operator reads.
    const before = Array.from(el.querySelectorAll(".scroll"), (s) => s.scrollTop);
    el.innerHTML = html;
    el.querySelectorAll(".scroll").forEach((s, i) => {
      if (before[i]) s.scrollTop = before[i];
    });
    afterSwap();
  }

  function afterSwap() {
    const st = $("#status");
    if (!st) {
      setControls({ state: null });
      return;
    }
    setControls({ state: st.dataset.state, mode: st.dataset.mode });
    if (st.dataset.lastTick !== tick.value) {
      tick.value = st.dataset.lastTick;
      tick.seenAt = Date.now();
    }
    showTickAge();
  }

  function showTickAge() {
    const el = $("#tick-age");
    if (!el || !tick.value) return;
    const s = Math.max(0, Math.round((Date.now() - tick.seenAt) / 1000));
    el.textContent = "· " + s + " s ago";
  }

  function refreshAll() {
    fragments.forEach((f) => schedule(f));
  }

  // ---------------------------------------------------------------- event stream
  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  function topics() {
    const all = new Set();
    fragments.forEach((f) => f.topics.forEach((t) => all.add(t)));
    return Array.from(all).join(",");
  }

  async function startStream() {
    stopStream();
    const ctl = new AbortController();
    stream = ctl;
    try {
      const r = await fetch("/events?topics=" + encodeURIComponent(topics()), {
        headers: authHeaders({ Accept: "text/event-stream" }),
        signal: ctl.signal,
        cache: "no-store",
      });
      if (r.status === 401) return lock(token ? "refused" : "missing");
      if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
      setConn("on", "live");
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          onBlock(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (stream !== ctl || !unlocked) return;
    setConn("retry", "reconnecting");
    setTimeout(() => {
      if (stream === ctl) startStream();
    }, retryMs);
  }

  function onBlock(block) {
    let event = null;
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("retry:")) retryMs = parseInt(line.slice(6), 10) || retryMs;
    }
    if (!event) return; // a comment: subscribed, heartbeat
    fragments.forEach((f) => {
      if (f.topics.has(event)) schedule(f);
    });
  }

  // ---------------------------------------------------------------- controls
  function setControls(s) {
    const pause = $("#btn-pause");
    const resume = $("#btn-resume");
    const on = unlocked && s !== null;
    const state = s && s.state;
    pause.disabled = !on || (state !== null && state !== undefined && state !== "ACTIVE");
    resume.disabled = !on || state === "ACTIVE";
    $("#btn-flatten").disabled = !on;
    $("#btn-live").disabled = !on || (s && s.mode === "LIVE");
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function dialogResult(dlg) {
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue), { once: true });
    });
  }

  async function busy(fn) {
    const buttons = document.querySelectorAll("#controls button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof Unauthorized)) toast("error", "Request failed: " + e.message);
    } finally {
      if (unlocked) setControls({ state: null });
      refreshAll();
    }
  }

  async function setState(verb) {
    const r = await post("/" + verb);
    if (!r.ok) return toast("error", verb + " refused: " + (await detail(r)));
    const b = await r.json();
    toast("ok", "Trading " + b.trading_state + " (" + verb + ")");
  }

  async function flatten() {
    const r = await request("/state");
    if (!r.ok) return toast("error", "Cannot read /state: " + (await detail(r)));
    const s = await r.json();
    const np = s.positions.length;
    const no = s.working_orders.length;
    $("#flatten-text").textContent =
      "Close " + plural(np, "open position") + " at market and " +
      plural(no, "working order") + ", then HALT trading?";
    $("#flatten-confirm").textContent = "Flatten " + plural(np, "position") + ", " + plural(no, "order");
    const dlg = $("#dlg-flatten");
    dlg.returnValue = "";
    dlg.showModal();
    if ((await dialogResult(dlg)) !== "confirm") return toast("info", "Flatten cancelled");
    const res = await post("/flatten", { timeout_s: 10 });
    const b = await res.json().catch(() => ({}));
    if (res.ok) {
      const flatMs = b.flat_after_ms === undefined || b.flat_after_ms === null ? b.elapsed_ms : b.flat_after_ms;
      toast("ok", "Flat in " + Number(flatMs).toFixed(1) + " ms: " + plural(b.exit_orders, "exit") +
        ", " + plural(b.cancelled_orders, "order") + " cancelled. Trading is HALTED until resumed.");
    } else if (res.status === 504 && b.open_positions_after !== undefined) {
      toast("error", "NOT flat: " + plural(b.open_positions_after, "position") + " and " +
        plural(b.working_orders_after, "working order") + " remain. Trading is HALTED.");
    } else {
      toast("error", "Flatten failed: " + (b.detail || "HTTP " + res.status));
    }
  }

  async function requestLive() {
    const r = await post("/mode", { mode: "LIVE" });
    const b = await r.json().catch(() => ({}));
    const out = $("#live-body");
    out.replaceChildren();
    const p = document.createElement("p");
    out.append(p);
    if (r.ok) {
      $("#live-title").textContent = "Mode is now " + b.mode;
      p.textContent = "Switched from " + b.previous + " to " + b.mode + ".";
    } else if (r.status === 409) {
      $("#live-title").textContent = "LIVE refused";
      p.textContent = "The LIVE gate refused the switch:";
      const ul = document.createElement("ul");
      ul.className = "reasons";
      ul.id = "live-reasons";
      (b.reasons || [b.detail]).forEach((reason) => {
        const li = document.createElement("li");
        li.textContent = reason;
        ul.append(li);
      });
      out.append(ul);
    } else {
      $("#live-title").textContent = "LIVE request failed";
      p.textContent = b.detail ? String(b.detail) : "HTTP " + r.status;
    }
    $("#dlg-live").showModal();
  }

  // ---------------------------------------------------------------- start
  function init() {
    document.querySelectorAll(".fragment").forEach((el) => {
      const live = el.id === "live";
      fragments.push({
        el,
        url: el.dataset.fragment,
        topics: new Set((el.dataset.refreshOn || "").split(/\s+/).filter(Boolean)),
        gap: live ? LIVE_MIN_GAP_MS : HISTORY_MIN_GAP_MS,
        idle: live ? IDLE_REFRESH_MS : HISTORY_IDLE_MS,
        last: 0,
        timer: null,
        inflight: false,
        again: false,
      });
    });
    $("#btn-pause").addEventListener("click", () => busy(() => setState("pause")));
    $("#btn-resume").addEventListener("click", () => busy(() => setState("resume")));
    $("#btn-flatten").addEventListener("click", () => busy(flatten));
    $("#btn-live").addEventListener("click", () => busy(requestLive));
    $("#btn-token").addEventListener("click", () => {
      $("#token-input").value = "";
      $("#dlg-token").showModal();
    });
    $("#dlg-token").addEventListener("close", () => {
      const v = $("#dlg-token").returnValue;
      if (v === "save") useToken($("#token-input").value);
      else if (v === "forget") useToken("");
    });
    $("#token-form-inline").addEventListener("submit", (ev) => {
      ev.preventDefault();
      useToken($("#token-inline").value);
    });
    setInterval(() => {
      showTickAge();
      const streaming = $("#conn").classList.contains("on");
      fragments.forEach((f) => {
        const every = streaming ? f.idle : Math.min(f.idle, IDLE_REFRESH_MS);
        if (Date.now() - f.last >= every) schedule(f);
      });
    }, 1000);
    window.addEventListener("pagehide", stopStream);
    unlock();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
