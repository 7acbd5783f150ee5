// Live updates for the console. The session cookie authenticates fetch and EventSource.
"use strict";

// Jobs table: refresh each row's state and progress every 2 s from the API.
function liveTable(table) {
  setInterval(async () => {
    const res = await fetch("/v1/jobs?limit=200", { credentials: "same-origin" });
    if (!res.ok) return;
    for (const job of (await res.json()).jobs) {
      const row = table.querySelector(`tr[data-job="${job.id}"]`);
      if (!row) continue;
      const state = row.querySelector(".state");
      state.textContent = job.state;
      state.className = `state state-${job.state}`;
      const ended = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(job.state);
      row.querySelector(".progress").textContent = ended ? "" : `${job.progress} %`;
    }
  }, 2000);
}

// Job page: follow the job's events; redraw the page when its state changes.
function liveJob(el) {
  const rendered = el.dataset.state;
  const events = new EventSource(`/v1/jobs/${el.dataset.job}/events`);
  const onJob = (message) => {
    const job = JSON.parse(message.data);
    const bar = document.getElementById("progress");  // drawn only while the job runs
    if (bar) { bar.value = job.progress; document.getElementById("progress-text").textContent = `${job.progress} %`; }
    if (job.state !== rendered) { events.close(); location.reload(); }
  };
  events.addEventListener("job", onJob);
  events.addEventListener("end", (message) => { events.close(); onJob(message); });
}

// Submit form: show the fields of the chosen provider only (hidden ones are not sent).
function providerSwitch(select) {
  const show = () => document.querySelectorAll("fieldset.provider").forEach((set) => {
    set.hidden = set.dataset.provider !== select.value;
    set.disabled = set.hidden;
  });
  select.addEventListener("change", show);
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-live]");
  if (table) liveTable(table);
  const job = document.getElementById("job");
  if (job) liveJob(job);
  const provider = document.getElementById("provider");
  if (provider) providerSwitch(provider);
});
