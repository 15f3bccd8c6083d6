// Recall dashboard: plain JavaScript, no libraries. Every value from the
// API is written with textContent, never as HTML.
(function () {
  "use strict";
  const KEY = "recall.adminToken";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let callsCursor = null;
  let memoriesCursor = null;
  let currentPhone = null;

  function token() { return sessionStorage.getItem(KEY); }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || ("HTTP " + status));
      this.status = status;
      this.code = body && body.error;
    }
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({}, options, {
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
    }));
    if (response.status === 401) {
      signOut("Your token was refused. Sign in again.");
      throw new ApiError(401, null);
    }
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, body);
    }
    return response;
  }

  async function json(path) {
    const response = await api(path);
    return { body: await response.json(), next: response.headers.get("X-Next-Cursor") };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showStatus(message) {
    const status = $("status");
    status.textContent = message || "";
    status.hidden = !message;
  }

  function duration(secs) {
    if (secs == null) return "–";
    const s = Math.round(secs);
    return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }

  function outcome(successful) {
    if (successful === true) return ["success", "Successful"];
    if (successful === false) return ["failure", "Unsuccessful"];
    return ["unknown", "Outcome unknown"];
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  // ---- sign in / out -------------------------------------------------

  async function signIn(candidate) {
    const response = await fetch("/api/analytics", {
      headers: { Authorization: "Bearer " + candidate, Accept: "application/json" },
    });
    if (!response.ok) return false;
    sessionStorage.setItem(KEY, candidate);
    return true;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $("app").hidden = true;
    $("search-form").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
  }

  function enter() {
    $("login").hidden = true;
    $("login-error").hidden = true;
    $("app").hidden = false;
    $("search-form").hidden = false;
    $("sign-out").hidden = false;
    showStatus("");
    loadAnalytics().catch(report);
    showCalls(null).catch(report);
    checkFailing().catch(report);
  }

  // ---- events that did not become memories ---------------------------

  let failingTimer = null;

  // A banner while some post-call events have failed for good: they are
  // kept on disk, and `recall replay --failed` retries them.
  async function checkFailing() {
    clearTimeout(failingTimer);
    if (!token()) return;
    const { body, next } = await json("/api/events?status=failed&limit=100");
    const banner = $("failing");
    if (body.length === 0) {
      banner.hidden = true;
    } else {
      const count = next ? "More than " + body.length : String(body.length);
      const latest = body[body.length - 1];
      banner.replaceChildren(
        el("strong", null, count + (body.length === 1 && !next ? " event" : " events") + " failed to become memories."),
        " The latest: " + (latest.conversationId || "") + " — " + (latest.reason || "no reason recorded") + ". ",
        "They are kept; fix the cause, then run ",
        el("code", null, "recall replay --failed"),
        ". Listed at ",
        el("code", null, "/api/events?status=failed"),
        "."
      );
      banner.hidden = false;
    }
    failingTimer = setTimeout(() => checkFailing().catch(report), 30000);
  }

  function report(error) {
    if (error && error.status === 401) return;
    showStatus(error && error.message ? error.message : String(error));
  }

  // ---- analytics -----------------------------------------------------

  async function loadAnalytics() {
    const [{ body: a }, { body: days }] = await Promise.all([
      json("/api/analytics"), json("/api/analytics/daily"),
    ]);
    $("tile-total").textContent = a.totalCalls;
    $("tile-success").textContent = Math.round(a.successRate * 100) + " %";
    $("tile-duration").textContent = duration(a.avgDuration);
    $("tile-cost").textContent = Number(a.totalCost).toLocaleString();
    const rows = $("collected").querySelector("tbody");
    rows.replaceChildren(...a.dataCollected.map((d) =>
      el("tr", {}, el("td", {}, d.fieldId),
        el("td", {}, typeof d.value === "string" ? d.value : JSON.stringify(d.value)),
        el("td", {}, d.count))));
    drawChart(days);
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function drawChart(days) {
    const box = $("chart");
    const W = 640, H = 220, L = 36, R = 40, T = 12, B = 34;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: "chart-svg" });
    chart.append(svg("title", {}, "Calls per day and success rate"));
    if (!days.length) {
      chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#5d6675" }, "No calls yet"));
      box.replaceChildren(chart);
      return;
    }
    const max = Math.max(1, ...days.map((d) => d.calls));
    const plotW = W - L - R, plotH = H - T - B;
    const step = plotW / days.length;
    const barW = Math.max(2, Math.min(48, step * 0.7));
    const y = (v) => T + plotH - (v / max) * plotH;
    const yRate = (r) => T + plotH - r * plotH;
    chart.append(svg("line", { x1: L, y1: T + plotH, x2: W - R, y2: T + plotH, stroke: "#dde1e7" }));
    chart.append(svg("text", { x: L - 6, y: T + 10, "text-anchor": "end", "font-size": 11, fill: "#5d6675" }, max));
    chart.append(svg("text", { x: L - 6, y: T + plotH, "text-anchor": "end", "font-size": 11, fill: "#5d6675" }, 0));
    chart.append(svg("text", { x: W - R + 6, y: T + 10, "font-size": 11, fill: "#1d7a46" }, "100%"));
    chart.append(svg("text", { x: W - R + 6, y: T + plotH, "font-size": 11, fill: "#1d7a46" }, "0%"));
    const points = [];
    const labelEvery = Math.ceil(days.length / 8);
    days.forEach((d, i) => {
      const cx = L + step * i + step / 2;
      const bar = svg("rect", {
        class: "bar", x: cx - barW / 2, y: y(d.calls), width: barW,
        height: Math.max(0, T + plotH - y(d.calls)), fill: "#9db3ee", "data-day": d.day,
      });
      const rate = d.calls ? d.successful / d.calls : 0;
      bar.append(svg("title", {}, `${d.day}: ${d.calls} calls, ${Math.round(rate * 100)}% successful`));
      chart.append(bar);
      points.push(`${cx},${yRate(rate)}`);
      if (i % labelEvery === 0) {
        chart.append(svg("text", { x: cx, y: H - 12, "text-anchor": "middle", "font-size": 11, fill: "#5d6675" },
          d.day.slice(5)));
      }
    });
    chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#1d7a46", "stroke-width": 2.5, class: "rate" }));
    points.forEach((p) => {
      const [cx, cy] = p.split(",");
      chart.append(svg("circle", { cx, cy, r: 3.5, fill: "#1d7a46" }));
    });
    box.replaceChildren(chart);
  }

  // ---- calls ----------------------------------------------------------

  function callItem(call) {
    const [cls, text] = outcome(call.successful);
    const open = el("button", { type: "button", class: "link", "data-conversation": call.conversationId },
      call.title || "Call " + call.conversationId);
    open.addEventListener("click", () => showCall(call.conversationId).catch(report));
    return el("li", { class: "call" },
      open,
      call.summary ? el("p", {}, call.summary) : null,
      el("div", { class: "meta" },
        el("span", { class: "badge " + cls }, text),
        el("span", {}, "Duration " + duration(call.duration)),
        el("span", {}, "Cost " + (call.cost == null ? "–" : call.cost)),
        el("span", {}, "Status " + call.status)));
  }

  async function showCalls(phone, append) {
    const params = new URLSearchParams({ limit: "20" });
    if (phone) params.set("phone", phone);
    if (append && callsCursor) params.set("cursor", callsCursor);
    const { body, next } = await json("/api/calls?" + params);
    callsCursor = next;
    $("calls-title").textContent = phone ? "Calls of " + phone : "Recent calls";
    const list = $("calls");
    const items = body.map(callItem);
    if (append) list.append(...items); else list.replaceChildren(...items);
    if (!list.children.length) list.append(el("li", { class: "muted" }, "No calls."));
    $("more-calls").hidden = !next;
  }

  async function showCall(id) {
    const { body } = await json("/api/calls/" + encodeURIComponent(id));
    const call = body.call;
    $("call-title").textContent = call.title || "Call " + call.conversationId;
    const [, text] = outcome(call.successful);
    $("call-meta").textContent = [when(body.startTime), body.callerPhone, duration(call.duration), text, "agent " + call.agentId]
      .filter(Boolean).join(" · ");
    $("call-summary").textContent = call.summary || "";
    const audio = $("call-audio");
    audio.replaceChildren();
    if (body.hasAudio) {
      const play = el("button", { type: "button", class: "secondary" }, "Load audio");
      play.addEventListener("click", async () => {
        try {
          const blob = await (await api("/api/calls/" + encodeURIComponent(id) + "/audio")).blob();
          audio.replaceChildren(el("audio", { controls: "", src: URL.createObjectURL(blob) }));
        } catch (e) { report(e); }
      });
      audio.append(play);
    } else if (body.audioDeletedAt) {
      audio.append(el("span", { class: "muted" }, "Audio deleted " + when(body.audioDeletedAt) + "."));
    }
    $("transcript").replaceChildren(...body.transcript.map((t) =>
      el("li", { class: t.role + (t.interrupted ? " interrupted" : "") },
        el("span", { class: "who" }, (t.role === "user" ? "Caller" : "Agent") + " · " + Math.round(t.timeInCallSecs) + " s"),
        el("span", {}, t.message),
        t.interrupted ? el("span", { class: "cut" }, "Interrupted") : null)));
    if (!body.transcript.length) {
      const gone = body.transcriptDeletedAt ? "Transcript deleted " + when(body.transcriptDeletedAt) + "." : "No transcript.";
      $("transcript").append(el("li", { class: "muted" }, gone));
    }
    $("call-detail").hidden = false;
    $("call-detail").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // ---- caller ---------------------------------------------------------

  async function showCaller(phone) {
    currentPhone = phone;
    memoriesCursor = null;
    const profile = $("user-profile");
    $("caller").hidden = false;
    $("memories").replaceChildren();
    try {
      const { body: user } = await json("/api/users/" + encodeURIComponent(phone));
      profile.replaceChildren(
        el("p", { class: "name" }, el("strong", {}, user.name || "Name unknown"), " · ", user.phoneNumber),
        user.profileSummary ? el("p", {}, user.profileSummary) : null,
        user.lastCallSummary ? el("p", { class: "muted" }, "Last call: " + user.lastCallSummary) : null);
    } catch (e) {
      if (e.status === 404) {
        profile.replaceChildren(el("p", { class: "muted" }, "No caller known as " + phone + "."));
      } else { throw e; }
    }
    await loadMemories(false);
    await showCalls(phone, false);
  }

  async function loadMemories(append) {
    const params = new URLSearchParams({ limit: "20" });
    if (append && memoriesCursor) params.set("cursor", memoriesCursor);
    let result;
    try {
      result = await json("/api/users/" + encodeURIComponent(currentPhone) + "/memories?" + params);
    } catch (e) {
      if (e.status === 404) result = { body: [], next: null }; else throw e;
    }
    memoriesCursor = result.next;
    const items = result.body.map((m) => el("li", { class: "memory" },
      el("p", {}, m.content),
      el("div", { class: "meta" },
        el("span", { class: "badge " + m.salienceLabel }, m.salienceLabel),
        el("span", {}, m.sector),
        m.timestamp ? el("time", { datetime: m.timestamp }, when(m.timestamp)) : null)));
    const list = $("memories");
    list.append(...items);
    if (!list.children.length) list.append(el("li", { class: "muted" }, "No memories."));
    $("more-memories").hidden = !memoriesCursor;
  }

  // ---- wiring ---------------------------------------------------------

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = $("token").value.trim();
    $("token").value = "";
    try {
      if (await signIn(candidate)) enter(); else signOut("That token was refused.");
    } catch (e) {
      signOut("Could not reach Recall: " + e.message);
    }
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const phone = $("phone").value.replace(/[\s().-]/g, "");
    if (!/^\+[1-9]\d{1,14}$/.test(phone)) {
      showStatus("Enter the number in E.164 form, e.g. +16129782029.");
      return;
    }
    showStatus("");
    showCaller(phone).catch(report);
  });
  $("all-calls").addEventListener("click", () => {
    $("caller").hidden = true;
    currentPhone = null;
    showCalls(null).catch(report);
  });
  $("more-calls").addEventListener("click", () => showCalls(currentPhone, true).catch(report));
  $("more-memories").addEventListener("click", () => loadMemories(true).catch(report));

  if (token()) enter(); else signOut("");
})();
