// jobledger console: follows a running run's log and redraws a running workflow's picture. Plain JS, no build.
"use strict";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

function badge(status) {
  const span = document.createElement("span");
  span.className = "status s-" + status;
  span.textContent = status;
  return span;
}

async function followLog(pre) {
  const state = document.getElementById("log-state");
  const wasActive = pre.dataset.follow === "1";
  let after = "0";
  for (;;) {
    let data;
    try {
      const response = await fetch(pre.dataset.url + "?after=" + encodeURIComponent(after), { cache: "no-store" });
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      data = await response.json();
    } catch (error) {
      if (state) state.textContent = "log unavailable (" + error.message + "); retrying…";
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    for (const line of data.lines) {
      const row = document.createElement("span");
      row.className = line.stream;
      row.textContent = line.time + " [" + line.attempt + "] " + line.stream + ": " + line.line + "\n";
      pre.appendChild(row);
    }
    if (data.lines.length) pre.scrollTop = pre.scrollHeight;
    after = data.after;
    const status = document.getElementById("run-status");
    if (status && status.textContent.trim() !== data.status) status.replaceChildren(badge(data.status));
    const reason = document.getElementById("run-reason");
    if (reason) reason.textContent = data.reason || "";
    if (data.ended) {
      if (state) state.textContent = pre.childElementCount ? "the run has ended" : "no output";
      // The page was drawn while the run went on: draw it again for its attempts and timeline.
      if (wasActive) setTimeout(() => window.location.reload(), 300);
      return;
    }
  }
}

async function redrawWorkflow(box) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let response;
    try {
      response = await fetch(box.dataset.url, { cache: "no-store" });
      if (!response.ok) continue;
    } catch (error) {
      continue;
    }
    box.innerHTML = await response.text();
    const status = response.headers.get("X-Workflow-Status");
    const heading = document.getElementById("wf-status");
    if (heading && status && heading.textContent.trim() !== status) heading.replaceChildren(badge(status));
    if (response.headers.get("X-Workflow-Active") === "0") {
      // Ended: draw the page again for its table and its rerun and repair buttons.
      setTimeout(() => window.location.reload(), 300);
      return;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const pre = document.getElementById("log");
  if (pre && pre.dataset.off !== "1") followLog(pre);
  const box = document.getElementById("dag");
  if (box && box.dataset.live === "1") redrawWorkflow(box);
});
