// Krafter Cron console: the only script. Everything works without it; it adds the live
// schedule preview, the history's refresh while a run is under way, and local times.
"use strict";

// The path the console is served under (KRAFTER_CONSOLE_BASE), from the page.
const base = () => document.body.dataset.base || "";

const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    if (t.dataset.local || t.dataset.zone === viewerZone) continue;
    const at = new Date(t.getAttribute("datetime"));
    if (isNaN(at)) continue;
    t.dataset.local = "1";
    t.title = t.textContent;
    const local = document.createElement("span");
    local.className = "help";
    local.textContent = "your time: " + at.toLocaleString();
    t.after(local);
  }
}

function livePreview(form) {
  const box = document.getElementById("preview");
  if (!box) return;
  const names = ["schedule_type", "schedule", "timezone", "starts_at", "ends_at", "jitter_s"];
  let timer = null;
  let asked = 0;
  const show = (lines, isError) => {
    box.replaceChildren();
    if (!isError && lines.length) {
      const p = document.createElement("p");
      p.textContent = "Next runs:";
      box.append(p);
    }
    const list = document.createElement(isError ? "div" : "ol");
    for (const line of lines) {
      const item = document.createElement(isError ? "p" : "li");
      if (isError) item.className = "field-error";
      item.textContent = line;
      list.append(item);
    }
    box.append(list);
  };
  const update = async () => {
    const body = new URLSearchParams();
    for (const n of names) {
      const el = form.elements[n];
      if (el && el.value.trim() !== "") body.append(n, el.value);
    }
    const mine = ++asked;
    const r = await fetch(base() + "/preview", { method: "POST", body, credentials: "same-origin" });
    const answer = await r.json().catch(() => ({}));
    if (mine !== asked) return;
    if (r.ok) {
      show((answer.data || []).map((u) => new Date(u.fires_by || u.scheduled_at).toLocaleString()), false);
    } else {
      const details = answer.details || {};
      show(Object.values(details).flat().concat(Object.keys(details).length ? [] : [answer.error || "?"]), true);
    }
  };
  for (const n of names) {
    const el = form.elements[n];
    if (el) el.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
  }
}

function liveHistory() {
  const section = document.getElementById("history");
  if (!section) return;
  const job = section.dataset.job;
  // Refresh while a run is under way, and for a while after the page was opened by a change.
  let rounds = new URLSearchParams(location.search).get("done") === "trigger" ? 30 : 0;
  const tick = async () => {
    const current = document.getElementById("history");
    if (!current || (!current.dataset.live && rounds <= 0)) return;
    rounds -= 1;
    const r = await fetch(base() + "/jobs/" + encodeURIComponent(job) + "/history", { credentials: "same-origin" });
    if (r.ok) {
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("history");
      if (fresh) {
        const open = new Set([...current.querySelectorAll("details[open]")].map((d) => d.closest("tr").rowIndex));
        current.replaceWith(fresh);
        for (const row of fresh.querySelectorAll("tr")) if (open.has(row.rowIndex)) row.querySelector("details")?.setAttribute("open", "");
        localTimes(fresh);
        if (fresh.dataset.live) rounds = Math.max(rounds, 1);
      }
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const form = document.querySelector("form.job-form");
  if (form) livePreview(form);
  liveHistory();
});
