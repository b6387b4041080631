// The dashboard's behaviour: the bearer token, polling the jobs and models fragments,
// the training form, cancelling, and the classifier canvas over the unit square.
"use strict";

const TOKEN_KEY = "nnserve-token"; // sessionStorage only: gone when the tab closes
const POLL_MS = 1000;
const GRID = 64; // the canvas background is GRID x GRID predictions
const CLASS_RGB = [[214, 39, 40], [31, 119, 180]]; // class 0 red, class 1 blue, as the figures

const $ = (id) => document.getElementById(id);
const state = { timer: null, jobsHtml: "", succeeded: null, model: null, predictUrl: null };

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
  const chosen = state.model && box.querySelector(`[data-model="${CSS.escape(state.model)}"]`);
  const model = chosen || box.querySelector("[data-model]");
  await select(model);
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

// ----- the classifier canvas: x1 to the right, x2 up, both in [0, 1] -----

async function select(article) {
  state.model = article ? article.dataset.model : null;
  state.predictUrl = article ? article.dataset.predict : null;
  $("classify-model").textContent = state.model || "none yet";
  $("verdict").textContent = "";
  await drawBoundary();
}

function shade(p) {
  // white at 0.5, the class colour towards 0 and 1: the boundary is where the colour fades
  const rgb = CLASS_RGB[p >= 0.5 ? 1 : 0];
  const strength = Math.min(1, Math.abs(p - 0.5) * 2) * 0.75;
  return rgb.map((c) => Math.round(255 + (c - 255) * strength));
}

async function drawBoundary() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  canvas.dataset.ready = "";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.model) return;
  const points = [];
  for (let row = 0; row < GRID; row++) {
    for (let col = 0; col < GRID; col++) points.push([(col + 0.5) / GRID, 1 - (row + 0.5) / GRID]);
  }
  const { predictions } = await (await api("POST", state.predictUrl, { points })).json();
  const image = new ImageData(GRID, GRID);
  predictions.forEach((p, i) => image.data.set([...shade(p.probability), 255], 4 * i));
  const small = document.createElement("canvas");
  small.width = small.height = GRID;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  canvas.dataset.ready = state.model;
}

async function classify(event) {
  if (!state.model) return;
  const canvas = event.target;
  const box = canvas.getBoundingClientRect();
  const x1 = (event.clientX - box.left) / box.width;
  const x2 = 1 - (event.clientY - box.top) / box.height;
  const body = { points: [[x1, x2]] };
  const [p] = (await (await api("POST", state.predictUrl, body)).json()).predictions;
  const ctx = canvas.getContext("2d");
  ctx.beginPath();
  ctx.arc(x1 * canvas.width, (1 - x2) * canvas.height, 6, 0, 2 * Math.PI);
  ctx.fillStyle = `rgb(${CLASS_RGB[p.label].join()})`;
  ctx.fill();
  ctx.strokeStyle = "#111";
  ctx.stroke();
  const verdict = $("verdict");
  verdict.dataset.label = p.label;
  verdict.textContent = `(${x1.toFixed(2)}, ${x2.toFixed(2)}): label ${p.label}, `
    + `probability of class 1 ${p.probability.toFixed(3)}`;
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
    if (event.target.closest("[data-classify]")) await select(event.target.closest("[data-model]"));
  }));
  $("canvas").addEventListener("click", run(classify));
  showDefaults();
  if (document.body.dataset.auth === "required" && !sessionStorage.getItem(TOKEN_KEY)) {
    askToken("This server needs an API token for changes; it is kept in this tab only.");
  }
  poll();
});
