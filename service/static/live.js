// The dashboard's live jobs: each job shown queued or running follows its event stream
// (GET /v1/trainings/{id}/events), which updates its row at every progress report, and the
// newest one's decision boundary (boundary.png) is drawn again after each. Streams are read
// with fetch, not EventSource, which cannot send the API token; a stream that closes without
// its end (a worker shutting down) is opened again with Last-Event-ID, as EventSource would.
// Uses api(), report(), refreshJobs(), state and $ of dashboard.js.
"use strict";

const FOLLOWED = 2; // streams a tab holds at most: a browser has 6 connections per server
const RECONNECT_MS = 2000; // the streams' retry: field
const LIVE_SIZE = "width=400&height=320";
const live = { streams: new Map(), job: null, wanted: null, shown: null, loading: false };

function followJobs(box) {
  const rows = [...box.querySelectorAll("tr[data-events]")]
    .filter((row) => ["queued", "running"].includes(row.dataset.status))
    .slice(0, FOLLOWED);
  const ids = new Set(rows.map((row) => row.dataset.job));
  for (const [id, controller] of live.streams) {
    if (!ids.has(id)) {
      controller.abort();
      live.streams.delete(id);
    }
  }
  for (const row of rows) {
    if (live.streams.has(row.dataset.job)) continue;
    const controller = new AbortController();
    live.streams.set(row.dataset.job, controller);
    follow(row.dataset.job, row.dataset.events, row.dataset.boundary, controller.signal)
      .catch((error) => {
        if (error.name !== "AbortError") report(error);
      })
      .finally(() => {
        if (live.streams.get(row.dataset.job)?.signal === controller.signal) {
          live.streams.delete(row.dataset.job);
        }
      });
  }
}

async function follow(id, url, boundaryUrl, signal) {
  let lastId = "";
  while (!signal.aborted) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(url, { headers, signal });
    if (response.status === 404 || response.status === 401) return; // gone, or needs a token
    if (!response.ok) { // 503: this worker's streams are all open; wait as told
      const wait = Number(response.headers.get("Retry-After")) * 1000 || RECONNECT_MS;
      await new Promise((resolve) => setTimeout(resolve, wait));
      continue;
    }
    for await (const message of messages(response)) {
      if (message.id) lastId = message.id;
      if (message.event === "progress") showProgress(id, boundaryUrl, JSON.parse(message.data));
      if (message.event === "end") {
        showEnd(id, JSON.parse(message.data));
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

async function* messages(response) {
  // Server-Sent Events: blocks of "field: value" lines, each block ended by a blank line
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const message = {};
      for (const line of buffer.slice(0, cut).split("\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) message[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, "");
      }
      buffer = buffer.slice(cut + 2);
      yield message;
    }
  }
}

function percent(fraction) {
  // service/percent.py's rule: one decimal, cut, never rounded up to 100%
  return `${(Math.floor(Math.round(fraction * 1000 * 1e6) / 1e6) / 10).toFixed(1)}%`;
}

function showProgress(id, boundaryUrl, progress) {
  const row = $("jobs").querySelector(`tr[data-job="${CSS.escape(id)}"]`);
  if (row) {
    row.dataset.status = "running";
    const status = row.querySelector(".status");
    status.textContent = "running";
    status.className = "status running";
    const bar = row.querySelector("progress");
    bar.max = progress.epochs;
    bar.value = progress.epoch;
    row.querySelector(".epochs").textContent = `${progress.epoch}/${progress.epochs}`;
    row.querySelector(".loss").textContent = progress.loss === null ? "–"
      : Number(progress.loss.toPrecision(4)).toString();
    row.querySelector(".accuracy").textContent = progress.accuracy === null ? "–"
      : percent(progress.accuracy);
    row.querySelector(".duration").textContent = `${progress.elapsed_s.toFixed(1)} s`;
  }
  if (live.job === null || live.job === id || !live.streams.has(live.job)) {
    showBoundary(id, boundaryUrl, progress.epoch);
  }
}

function showEnd(id, end) {
  live.streams.delete(id);
  if (live.job === id) {
    $("live-caption").dataset.status = end.status;
    showBoundary(id, live.url, end.progress.epoch, end.status);
  }
  refreshJobs().catch(report);
}

function showBoundary(id, url, epoch, status = "running") {
  if (live.job !== id) Object.assign(live, { job: id, url, shown: null });
  live.wanted = { epoch, status };
  if (!live.loading) drawLive().catch(report);
}

async function drawLive() {
  // one figure asked for at a time: the latest epoch wanted once the one on its way is shown
  live.loading = true;
  try {
    while (live.wanted && JSON.stringify(live.wanted) !== JSON.stringify(live.shown)) {
      const { job, url } = live;
      const wanted = live.wanted;
      let response;
      try {
        response = await api("GET", `${url}?${LIVE_SIZE}`);
      } catch (error) {
        live.shown = wanted; // 409: no weights yet; the next progress asks again
        if (!/no weights to draw/.test(error.message)) throw error;
        continue;
      }
      const blob = await response.blob();
      if (live.job !== job) continue;
      const img = $("live-boundary");
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(blob);
      img.dataset.job = job;
      img.dataset.epoch = wanted.epoch;
      $("live").hidden = false;
      $("live-caption").textContent = `Job ${job.slice(0, 8)}, ${wanted.status}: decision `
        + `boundary at epoch ${wanted.epoch}`;
      live.shown = wanted;
    }
  } finally {
    live.loading = false;
  }
}
