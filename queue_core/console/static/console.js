// jobledger console: live pages from server-sent events (no polling), a run's log as it is written. Plain JS.
"use strict";

function badge(status) {
  const span = document.createElement("span");
  span.className = "status s-" + status;
  span.textContent = status;
  return span;
}

// Which changes of the log this page shows: "any", "runs" (runs and workflow runs), or "ids:A B C" (aggregates;
// "A_*" stands for every aggregate whose id starts "A_": an array parent's children).
function wants(watch, change) {
  if (watch === "any" || change.more) return true;
  if (watch === "runs") return change.types.some((t) => t.startsWith("Run") || t.startsWith("Workflow") || t.startsWith("Task"));
  if (watch.startsWith("ids:")) {
    const given = watch.slice(4).split(" ");
    const ids = new Set(given.filter((id) => !id.endsWith("*")));
    const prefixes = given.filter((id) => id.endsWith("*")).map((id) => id.slice(0, -1));
    return change.aggregates.some((a) => ids.has(a) || prefixes.some((p) => a.startsWith(p)));
  }
  return false;
}

// Redraw the page's live regions from a fresh copy of the page, at most once per interval, never two at once.
function liveRegions(watch, interval) {
  let busy = false, again = false, last = 0;
  async function redraw() {
    const wait = last + interval - Date.now();
    if (busy || wait > 0) {
      if (!again) { again = true; setTimeout(() => { again = false; redraw(); }, Math.max(wait, 50)); }
      return;
    }
    busy = true;
    last = Date.now();
    try {
      const response = await fetch(window.location.href, { cache: "no-store", headers: { "X-Live": "1" } });
      if (response.ok && !response.redirected) {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const region of document.querySelectorAll("[data-live-region]")) {
          const next = fresh.getElementById(region.id);
          if (next) region.replaceWith(next);
        }
        const body = fresh.body;
        if (body && body.dataset.live) watch = body.dataset.live;  // a workflow run's tasks get new runs
        document.dispatchEvent(new CustomEvent("jobledger:redrawn"));
      }
    } catch (error) {
      // the next change redraws it
    } finally {
      busy = false;
    }
  }
  const source = new EventSource("/live");  // reconnects by itself, sending Last-Event-ID: nothing is missed
  // The stream starts at the log's head when it opens, after the page was drawn: one redraw then shows what
  // landed in between, so no change is missed whatever the time the script took to start.
  source.addEventListener("hello", () => redraw());
  source.addEventListener("change", (event) => {
    if (wants(watch, JSON.parse(event.data))) redraw();
  });
  window.addEventListener("pagehide", () => source.close());
  return redraw;
}

function followLog(pre, redraw) {
  const state = document.getElementById("log-state");
  const source = new EventSource(pre.dataset.url);  // resumes after the last line it got (Last-Event-ID)
  source.addEventListener("line", (event) => {
    const line = JSON.parse(event.data);
    const row = document.createElement("span");
    row.className = line.stream;
    row.textContent = line.time + " [" + line.attempt + "] " + line.stream + ": " + line.line + "\n";
    pre.appendChild(row);
    pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    const status = document.getElementById("run-status");
    if (status && status.textContent.trim() !== data.status) status.replaceChildren(badge(data.status));
    const reason = document.getElementById("run-reason");
    if (reason) reason.textContent = data.reason || "";
    if (state && !["SUCCEEDED", "FAILED", "CANCELLED"].includes(data.status)) state.textContent = "following…";
  });
  source.addEventListener("end", () => {
    source.close();
    if (state) state.textContent = pre.childElementCount ? "the run has ended" : "no output";
    if (redraw) redraw();  // its attempts and timeline as they ended
  });
  source.onerror = () => {
    if (state && source.readyState !== EventSource.CLOSED) state.textContent = "reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const body = document.body;
  const redraw = body.dataset.live ? liveRegions(body.dataset.live, Number(body.dataset.liveInterval) || 1000) : null;
  const pre = document.getElementById("log");
  if (pre && pre.dataset.off !== "1") followLog(pre, redraw);
});
