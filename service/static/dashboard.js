// The dashboard's behaviour: the bearer token, the jobs and models fragments (running jobs
// follow their event streams: live.js), the training form, cancelling, and the classifier
// canvas over the data's plane, with axes and the selected model's training points.
"use strict";

const TOKEN_KEY = "nnserve-token"; // sessionStorage only: gone when the tab closes
const MODEL_KEY = "nnserve-model"; // localStorage: the last model used, kept across visits
// The jobs fragment is fetched again this often, for jobs started elsewhere; the jobs shown
// running update from their streams, and a stream's end fetches the fragment at once.
const POLL_MS = 10000;
const GRID = 64; // the canvas background is GRID x GRID predictions
const CLASS_RGB = [[214, 39, 40], [31, 119, 180]]; // class 0 red, class 1 blue, as the figures
const PLOT = { left: 44, top: 10, size: 300 }; // the plane's square inside the canvas, pixels
const PAD = 0.05; // margin around the unit square and the points (plots.py's PAD)
const POINTS_SHOWN = 500;

const $ = (id) => document.getElementById(id);
const state = { timer: null, jobsHtml: "", succeeded: null, model: null, predictUrl: null,
                pointsUrl: null, extent: [0, 1, 0, 1] };

class NeedsToken extends Error {}

// ----- HTTP -----

async function api(method, url, body) {
  const init = { method, headers: {} };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 401) {
    askToken(token ? "That token was refused; enter it again." : "This needs the API token.");
    throw new NeedsToken();
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `${response.status} ${response.statusText}`);
  }
  return response;
}

function report(error) {
  if (!(error instanceof NeedsToken)) $("error").textContent = error.message;
}

function run(task) {
  return (...args) => task(...args).catch(report);
}

// ----- the token -----

function askToken(message) {
  $("token-message").textContent = message;
  $("token-form").hidden = false;
  $("token").focus();
}

async function useToken(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("token").value = "";
  $("token-form").hidden = true;
  $("error").textContent = "";
  state.succeeded = null; // reload the models with the token
  poll();
}

// ----- jobs and models -----

function poll() {
  // Each answer re-arms the one timer, so a poll started by hand never makes a second loop.
  const again = () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, POLL_MS);
  };
  refreshJobs().then(again, (error) => {
    if (error instanceof NeedsToken) return; // resumes once a token is entered
    report(error);
    again();
  });
}

async function refreshJobs() {
  const box = $("jobs");
  const html = await (await api("GET", box.dataset.src)).text();
  if (html !== state.jobsHtml) {
    state.jobsHtml = html;
    box.innerHTML = html;
  }
  followJobs(box); // live.js: a stream for each job shown queued or running (at most two)
  const rows = box.querySelectorAll("[data-status=succeeded]");
  const succeeded = Array.from(rows, (row) => row.dataset.job).join();
  if (succeeded !== state.succeeded) {
    state.succeeded = succeeded; // a job ended well: a model or version is new
    try {
      await refreshModels();
    } catch (error) {
      state.succeeded = null; // try again at the next poll
      throw error;
    }
  }
}

async function refreshModels() {
  const box = $("models");
  box.innerHTML = await (await api("GET", box.dataset.src)).text();
  // Figures load as they scroll into view: the browser does it for <img src loading=lazy>;
  // those that need the token (data-src) are fetched here, once each comes near the view.
  state.figures?.disconnect(); // the figures of the page shown before
  state.figures = new IntersectionObserver(run(async (entries) => {
    for (const entry of entries.filter((e) => e.isIntersecting)) {
      state.figures.unobserve(entry.target);
      const blob = await (await api("GET", entry.target.dataset.src)).blob();
      entry.target.src = URL.createObjectURL(blob);
    }
  }), { rootMargin: "200px" });
  for (const img of box.querySelectorAll("img[data-src]")) state.figures.observe(img);
  const wanted = state.model || localStorage.getItem(MODEL_KEY);
  const chosen = wanted && box.querySelector(`article[data-model="${CSS.escape(wanted)}"]`);
  const first = box.querySelector("article[data-model]");
  if (chosen || !wanted) {
    await select(chosen || first);
    return;
  }
  try { // the model last used is on another page of the list: use it by its name
    await select(byName(wanted));
  } catch (error) {
    if (error instanceof NeedsToken) throw error;
    localStorage.removeItem(MODEL_KEY); // gone since
    await select(first);
  }
}

async function cancel(event) {
  const button = event.target.closest("[data-cancel]");
  if (!button) return;
  button.disabled = true;
  await api("DELETE", button.dataset.cancel);
  await refreshJobs();
}

// ----- the training form -----

function showDefaults() {
  const form = $("train-form");
  const defaults = JSON.parse(form.elements.kind.selectedOptions[0].dataset.defaults);
  for (const input of form.querySelectorAll("[data-dataset]")) {
    const used = input.name in defaults;
    input.disabled = !used;
    input.value = used ? defaults[input.name] : "";
  }
}

async function train(event) {
  event.preventDefault();
  const form = event.target;
  const f = form.elements;
  const dataset = { kind: f.kind.value };
  for (const input of form.querySelectorAll("[data-dataset]:enabled")) {
    if (input.value !== "") dataset[input.name] = Number(input.value);
  }
  const hidden = f.hidden.value.split(/[\s,]+/).filter(Boolean).map(Number);
  const body = {
    model: f.model.value,
    dataset,
    network: { hidden, activation: f.activation.value },
    training: {
      optimizer: f.optimizer.value,
      learning_rate: Number(f.learning_rate.value),
      epochs: Number(f.epochs.value),
    },
  };
  $("error").textContent = "";
  const job = await (await api("POST", form.action, body)).json();
  $("train-message").textContent = `Job ${job.id.slice(0, 8)} queued for ${job.model}.`;
  await refreshJobs();
}

// ----- the classifier canvas: x1 to the right, x2 up, over the data's plane -----

function byName(name) {
  // what select() reads of a model card, for a model whose card is not on this page
  const base = `${$("classify").dataset.models}/${encodeURIComponent(name)}`;
  return { dataset: { model: name, predict: `${base}/predict`, points: `${base}/points` } };
}

async function select(article, used = false) {
  state.model = article ? article.dataset.model : null;
  state.predictUrl = article ? article.dataset.predict : null;
  state.pointsUrl = article ? article.dataset.points : null;
  if (used && state.model) localStorage.setItem(MODEL_KEY, state.model);
  $("classify-model").textContent = state.model || "none yet";
  $("verdict").textContent = "";
  await drawPlane();
}

function shade(p) {
  // white at 0.5, the class colour towards 0 and 1: the boundary is where the colour fades
  const rgb = CLASS_RGB[p >= 0.5 ? 1 : 0];
  const strength = Math.min(1, Math.abs(p - 0.5) * 2) * 0.75;
  return rgb.map((c) => Math.round(255 + (c - 255) * strength));
}

function extentOf(points) {
  // the unit square and every point, padded: the figures' rule (plots._bounds)
  const lo = [0, 0];
  const hi = [1, 1];
  for (const point of points) {
    for (const axis of [0, 1]) {
      lo[axis] = Math.min(lo[axis], point[axis]);
      hi[axis] = Math.max(hi[axis], point[axis]);
    }
  }
  const pad = [0, 1].map((axis) => PAD * (hi[axis] - lo[axis]));
  return [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]];
}

function toPixel([x1, x2]) {
  const [x1lo, x1hi, x2lo, x2hi] = state.extent;
  return [PLOT.left + ((x1 - x1lo) / (x1hi - x1lo)) * PLOT.size,
          PLOT.top + ((x2hi - x2) / (x2hi - x2lo)) * PLOT.size];
}

function fromPixel(px, py) {
  const [x1lo, x1hi, x2lo, x2hi] = state.extent;
  return [x1lo + ((px - PLOT.left) / PLOT.size) * (x1hi - x1lo),
          x2hi - ((py - PLOT.top) / PLOT.size) * (x2hi - x2lo)];
}

function ticks(lo, hi) {
  // about six round values (1, 2 or 5 times a power of ten apart) between lo and hi
  const rough = (hi - lo) / 6;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const values = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + 1e-9; k++) values.push(Number((k * step).toFixed(6)));
  return values;
}

function drawAxes(ctx) {
  const [x1lo, x1hi, x2lo, x2hi] = state.extent;
  const bottom = PLOT.top + PLOT.size;
  ctx.strokeStyle = "#5f6670";
  ctx.fillStyle = "#5f6670";
  ctx.lineWidth = 1;
  ctx.strokeRect(PLOT.left + 0.5, PLOT.top + 0.5, PLOT.size, PLOT.size);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const x1Ticks = ticks(x1lo, x1hi);
  for (const t of x1Ticks) {
    const [px] = toPixel([t, x2lo]);
    ctx.beginPath();
    ctx.moveTo(px, bottom);
    ctx.lineTo(px, bottom + 5);
    ctx.stroke();
    ctx.fillText(String(t), px, bottom + 7);
  }
  ctx.fillText("x1", PLOT.left + PLOT.size / 2, bottom + 22);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const x2Ticks = ticks(x2lo, x2hi);
  for (const t of x2Ticks) {
    const [, py] = toPixel([x1lo, t]);
    ctx.beginPath();
    ctx.moveTo(PLOT.left - 5, py);
    ctx.lineTo(PLOT.left, py);
    ctx.stroke();
    ctx.fillText(String(t), PLOT.left - 7, py);
  }
  ctx.save();
  ctx.translate(10, PLOT.top + PLOT.size / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("x2", 0, 0);
  ctx.restore();
  return { x1: x1Ticks, x2: x2Ticks };
}

function drawPoints(ctx, points, labels) {
  points.forEach((point, i) => {
    const [px, py] = toPixel(point);
    ctx.beginPath();
    ctx.arc(px, py, 3.5, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${CLASS_RGB[labels[i]].join()})`;
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1;
    ctx.stroke();
  });
}

async function drawPlane() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  canvas.dataset.ready = "";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.model) return;
  const model = state.model;
  const url = `${state.pointsUrl}?limit=${POINTS_SHOWN}`;
  const training = await (await api("GET", url)).json();
  state.extent = extentOf(training.points);
  const [x1lo, x1hi, x2lo, x2hi] = state.extent;
  const grid = [];
  for (let row = 0; row < GRID; row++) {
    for (let col = 0; col < GRID; col++) {
      grid.push([x1lo + ((col + 0.5) / GRID) * (x1hi - x1lo),
                 x2hi - ((row + 0.5) / GRID) * (x2hi - x2lo)]);
    }
  }
  const { predictions } = await (await api("POST", state.predictUrl, { points: grid })).json();
  if (state.model !== model) return; // another model was chosen meanwhile
  const image = new ImageData(GRID, GRID);
  predictions.forEach((p, i) => image.data.set([...shade(p.probability), 255], 4 * i));
  const small = document.createElement("canvas");
  small.width = small.height = GRID;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, PLOT.left, PLOT.top, PLOT.size, PLOT.size);
  const drawn = drawAxes(ctx);
  drawPoints(ctx, training.points, training.labels);
  Object.assign(canvas.dataset, {
    extent: JSON.stringify(state.extent), plot: JSON.stringify(PLOT),
    ticks: JSON.stringify(drawn), points: String(training.points.length), ready: model,
  });
}

async function classify(event) {
  if (!state.model) return;
  const canvas = event.target;
  const box = canvas.getBoundingClientRect();
  const px = ((event.clientX - box.left) * canvas.width) / box.width;
  const py = ((event.clientY - box.top) * canvas.height) / box.height;
  if (px < PLOT.left || px > PLOT.left + PLOT.size || py < PLOT.top || py > PLOT.top + PLOT.size) {
    return; // on the axes, not the plane
  }
  const [x1, x2] = fromPixel(px, py);
  const body = { points: [[x1, x2]] };
  const [p] = (await (await api("POST", state.predictUrl, body)).json()).predictions;
  localStorage.setItem(MODEL_KEY, state.model);
  const ctx = canvas.getContext("2d");
  ctx.beginPath();
  ctx.arc(px, py, 6, 0, 2 * Math.PI);
  ctx.fillStyle = `rgb(${CLASS_RGB[p.label].join()})`;
  ctx.fill();
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 1;
  ctx.stroke();
  const verdict = $("verdict");
  verdict.dataset.label = p.label;
  verdict.textContent = `(${x1.toFixed(2)}, ${x2.toFixed(2)}): label ${p.label}, `
    + `probability of class 1 ${p.probability.toFixed(3)}`;
}

// A download when reads need the token: a plain link would send none (401), so the file
// is fetched with it and handed to the browser under the server's file name.
async function save(event, link) {
  event.preventDefault();
  const response = await api("GET", link.href);
  const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  const anchor = Object.assign(document.createElement("a"), {
    href: url, download: named ? named[1] : "",
  });
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ----- wiring -----

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", run(useToken));
  $("train-form").addEventListener("submit", run(train));
  $("train-form").elements.kind.addEventListener("change", showDefaults);
  $("jobs").addEventListener("click", run(cancel));
  $("models").addEventListener("click", run(async (event) => {
    const page = event.target.closest("[data-page]");
    if (page) {
      $("models").dataset.src = page.dataset.page; // the polls keep to this page
      await refreshModels();
    }
    if (event.target.closest("[data-classify]")) {
      await select(event.target.closest("article[data-model]"), true);
    }
    const download = event.target.closest("a[data-fetch]");
    if (download) await save(event, download);
  }));
  $("canvas").addEventListener("click", run(classify));
  showDefaults();
  if (document.body.dataset.auth === "required" && !sessionStorage.getItem(TOKEN_KEY)) {
    askToken("This server needs an API token for changes; it is kept in this tab only.");
  }
  poll();
});
