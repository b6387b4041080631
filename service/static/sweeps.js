// The dashboard's sweeps view: polls the sweeps fragment, sorts a trials table by the
// column clicked (again: the other way); and the model cards' delete buttons. Uses api(),
// report() and refreshModels() of dashboard.js.
"use strict";

const SWEEPS_POLL_MS = 2000;
const sweepState = { html: "", sort: {} }; // sort: {sweep id: [column, direction]}

async function refreshSweeps() {
  const box = document.getElementById("sweeps");
  const html = await (await api("GET", box.dataset.src)).text();
  if (html === sweepState.html) return;
  sweepState.html = html;
  box.innerHTML = html;
  for (const img of box.querySelectorAll("img[data-src]")) {
    const blob = await (await api("GET", img.dataset.src)).blob(); // reads need the token
    img.src = URL.createObjectURL(blob);
  }
  for (const [id, [column, direction]] of Object.entries(sweepState.sort)) {
    const table = box.querySelector(`[data-sweep="${CSS.escape(id)}"] table`);
    if (table) sortTrials(table, column, direction);
  }
}

function sortTrials(table, column, direction) {
  const numeric = table.tHead.rows[0].cells[column].dataset.sort === "number";
  const key = (row) => {
    const cell = row.cells[column];
    const value = cell.dataset.value ?? cell.textContent;
    return numeric ? (value === "" ? NaN : Number(value)) : value;
  };
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    if (numeric && Number.isNaN(x) !== Number.isNaN(y)) return Number.isNaN(x) ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * direction;
  });
  for (const row of rows) table.tBodies[0].appendChild(row);
  table.dataset.sorted = `${column}:${direction}`;
}

function clickHeader(event) {
  const th = event.target.closest("th[data-sort]");
  if (!th) return;
  const table = th.closest("table");
  const id = th.closest("[data-sweep]").dataset.sweep;
  const [column, direction] = sweepState.sort[id] || [-1, 1];
  const next = column === th.cellIndex ? -direction : 1;
  sweepState.sort[id] = [th.cellIndex, next];
  sortTrials(table, th.cellIndex, next);
}

function pollSweeps() {
  refreshSweeps().catch(report).finally(() => setTimeout(pollSweeps, SWEEPS_POLL_MS));
}

async function deleteVersion(event) {
  const button = event.target.closest("[data-delete-version]");
  if (!button) return;
  button.disabled = true;
  await api("DELETE", button.dataset.deleteVersion);
  await refreshModels();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("models").addEventListener("click", (e) => deleteVersion(e).catch(report));
  if (!document.getElementById("sweeps")) return;
  document.getElementById("sweeps").addEventListener("click", clickHeader);
  pollSweeps();
});
