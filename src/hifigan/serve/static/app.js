// The hifigan serve web page: pick a model, upload a recording (or the demo clip) or a mel
// (.npy, in any convention the server knows: GET /v1/conventions, checked by
// POST /v1/mel-check), vocode it through POST /v1/vocode, and compare both mel-spectrograms
// (from POST /v1/mel?format=json). Plain JavaScript, no build step, no requests to anything
// but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "hifigan-api-key";
const DYNAMIC_RANGE = 11.5; // natural-log units shown below the input's loudest bin
const TICK_MS = 100; // how often the elapsed time of a running request is updated
const STAT_IDS = [
  "stat-model", "stat-input", "stat-convention", "stat-audio", "stat-synth", "stat-speed",
  "stat-trip", "stat-batch",
];

const state = {
  models: [],
  conventions: null, // GET /v1/conventions: the names a mel may be sent in, each model's default
  input: null, // Blob: an audio file or a .npy mel
  inputName: "",
  inputIsMel: false,
  inputMel: null, // the parsed .npy, [[...], ...] (n_mels rows), when the input is a mel
  inputUrl: null,
  outputUrl: null,
  range: null, // [low, high] shared by both spectrograms, from the input
  generation: 0, // bumped by every new input: answers to older ones are dropped
  request: null, // {controller, timer} of the running vocode request
  key: sessionStorage.getItem(KEY_STORAGE) || "",
};

// magma-like colour map: 8 stops, interpolated
const STOPS = [
  [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
  [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
];
const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (STOPS.length - 1);
    const k = Math.min(Math.floor(x), STOPS.length - 2);
    const f = x - k;
    for (let c = 0; c < 3; c++) {
      lut[i * 3 + c] = STOPS[k][c] + f * (STOPS[k + 1][c] - STOPS[k][c]);
    }
  }
  return lut;
})();

class StaleError extends Error {} // an answer for an input that has since been replaced

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function showKeyBar(message) {
  $("key-label").textContent = message;
  $("key-bar").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    if (state.key) {
      showKeyBar("The API key was refused; enter the right one:");
      throw new Error("the API key was refused: enter the right one above");
    }
    showKeyBar("This server needs an API key:");
    throw new Error("this server needs an API key: enter it above");
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch (e) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function modelName() {
  return $("model").value;
}

function currentModel() {
  return state.models.find((x) => x.name === modelName());
}

function showModelInfo() {
  const m = currentModel();
  $("model-info").textContent = m
    ? `${m.sample_rate} Hz · ${m.n_mels} bands · hop_length ${m.hop_length}`
    : "";
  fillConventions();
}

// The convention choice: the model's default first (its own, unless the server was started
// with --mel-convention), then detection, then every convention the server knows.
function fillConventions() {
  const m = currentModel();
  const select = $("convention");
  select.innerHTML = "";
  if (!m) return;
  const add = (value, text) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    select.appendChild(option);
  };
  const known = state.conventions || { conventions: [], models: {} };
  const own = (known.models[m.name] || {}).default || null;
  add("", own ? `the model's default (${own})` : `the model's own (${m.mel})`);
  if (known.auto) add(known.auto, "auto: detect it from the mel");
  for (const c of known.conventions) {
    const mine = c.name === m.mel ? `, ${m.name}'s own` : "";
    add(c.name, `${c.name} (${c.n_mels} bands, ${c.sample_rate} Hz${mine})`);
  }
  $("convention-note").textContent = "the convention of the TTS model that made the mel";
}

async function loadConventions() {
  try {
    state.conventions = await (await api("/v1/conventions")).json();
  } catch (e) {
    state.conventions = null; // an older server: the model's own convention only
  }
}

function showVerdict(report) {
  const box = $("verdict");
  if (!report) {
    box.hidden = true;
    box.open = false;
    $("verdict-summary").textContent = "";
    $("verdict-text").textContent = "";
    box.classList.remove("misfit");
    return;
  }
  const fits = report.fits_model;
  const advice = report.mel_convention ? `: choose ${report.mel_convention}` : "";
  $("verdict-summary").textContent =
    `mel-check: ${report.convention || "no named convention"} (${report.how}); ` +
    `${fits ? "fits" : "does not fit"} ${report.model}${fits ? "" : advice}`;
  $("verdict-text").textContent = report.text;
  box.classList.toggle("misfit", !fits);
  box.hidden = false;
}

async function checkMel(generation) {
  const model = modelName();
  const response = await api(`/v1/mel-check?model=${encodeURIComponent(model)}`, {
    method: "POST",
    body: state.input,
  });
  const report = await response.json();
  if (generation !== state.generation || model !== modelName()) throw new StaleError();
  showVerdict(report);
}

async function loadModels() {
  const data = await (await api("/v1/models")).json();
  state.models = data.models;
  const select = $("model");
  const previous = select.value;
  select.innerHTML = "";
  for (const m of data.models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.name + (m.name === data.default ? " (default)" : "");
    select.appendChild(option);
  }
  select.value = data.models.some((m) => m.name === previous) ? previous : data.default;
  showModelInfo();
}

function drawMel(canvas, mel, range) {
  const bands = mel.length;
  const frames = bands ? mel[0].length : 0;
  const ctx = canvas.getContext("2d");
  const width = canvas.clientWidth || canvas.width;
  canvas.width = Math.round(width * (window.devicePixelRatio || 1));
  canvas.height = Math.round(160 * (window.devicePixelRatio || 1));
  ctx.fillStyle = "#0b0b18";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.frames = String(frames);
  if (!frames) return;
  const image = new ImageData(frames, bands);
  const [low, high] = range;
  const scale = 255 / Math.max(high - low, 1e-6);
  for (let b = 0; b < bands; b++) {
    const row = mel[b];
    const y = bands - 1 - b; // low frequencies at the bottom
    for (let t = 0; t < frames; t++) {
      const v = Math.max(0, Math.min(255, Math.round((row[t] - low) * scale)));
      const i = (y * frames + t) * 4;
      image.data[i] = LUT[v * 3];
      image.data[i + 1] = LUT[v * 3 + 1];
      image.data[i + 2] = LUT[v * 3 + 2];
      image.data[i + 3] = 255;
    }
  }
  const off = document.createElement("canvas");
  off.width = frames;
  off.height = bands;
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

async function fetchMel(blob, model) {
  const response = await api(`/v1/mel?model=${encodeURIComponent(model)}&format=json`, {
    method: "POST",
    body: blob,
  });
  return response.json();
}

// The values shown: from the loudest down DYNAMIC_RANGE, or down to the quietest when a mel
// of another convention spans less (coqui's [-4, 4], a normalised mel).
function melRange(mel) {
  let high = -Infinity;
  let low = Infinity;
  for (const row of mel) {
    for (const v of row) {
      if (v > high) high = v;
      if (v < low) low = v;
    }
  }
  return [Math.max(low, high - DYNAMIC_RANGE), high];
}

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

// A .npy file -> rows of a (n_mels, frames) float mel, for drawing only (the server checks
// the file again). Throws an Error that says why it cannot be drawn.
function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a .npy file");
  }
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLength));
  const descr = (header.match(/'descr':\s*'([^']+)'/) || [])[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = (header.match(/'shape':\s*\(([^)]*)\)/) || [])[1];
  if (!descr || shapeText === undefined) throw new Error("malformed .npy header");
  let shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length === 3 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length !== 2) throw new Error(`shape (${shapeText}) is not (n_mels, frames)`);
  const sizes = { "<f2": 2, "<f4": 4, "<f8": 8, "|f2": 2 };
  const size = sizes[descr];
  if (!size) throw new Error(`dtype ${descr} is not a little-endian float`);
  const [bands, frames] = shape;
  const offset = start + headerLength;
  if (buffer.byteLength - offset < bands * frames * size) throw new Error("the file is truncated");
  const read = (i) => {
    const at = offset + i * size;
    if (size === 4) return view.getFloat32(at, true);
    if (size === 8) return view.getFloat64(at, true);
    return halfToFloat(view.getUint16(at, true));
  };
  const mel = [];
  for (let b = 0; b < bands; b++) {
    const row = new Float32Array(frames);
    for (let t = 0; t < frames; t++) row[t] = read(fortran ? t * bands + b : b * frames + t);
    mel.push(row);
  }
  return mel;
}

function showWarnings(list) {
  const box = $("warnings");
  box.innerHTML = "";
  for (const text of list) {
    const item = document.createElement("li");
    item.textContent = text;
    box.appendChild(item);
  }
  box.hidden = list.length === 0;
}

function headerWarnings(response) {
  const text = response.headers.get("X-Warnings");
  return text ? text.split("; ") : [];
}

function clearOutput() {
  if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
  state.outputUrl = null;
  $("output-audio").removeAttribute("src");
  $("output-audio").load();
  $("output-audio").hidden = true; // no player without something to play
  const link = $("download");
  link.hidden = true;
  link.removeAttribute("href");
  $("output-model").textContent = "";
  drawMel($("output-mel"), [], [0, 1]);
  for (const id of STAT_IDS) $(id).textContent = "–";
}

function cancelRequest() {
  if (state.request) state.request.controller.abort();
}

// Forget everything about the previous input: its audio, spectrogram, warnings, output and
// any request still running for it.
function resetInput() {
  state.generation += 1;
  cancelRequest();
  endRequest();
  state.input = null;
  state.inputName = "";
  state.inputIsMel = false;
  state.inputMel = null;
  state.range = null;
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = null;
  $("input-audio").removeAttribute("src");
  $("input-audio").load();
  $("input-audio").hidden = true;
  $("input-name").textContent = "no input yet";
  $("mel-options").hidden = true;
  $("convention").value = "";
  $("vocode").disabled = true;
  showWarnings([]);
  showVerdict(null);
  drawMel($("input-mel"), [], [0, 1]);
  clearOutput();
}

async function setInput(blob, name, generation) {
  state.input = blob;
  state.inputName = name;
  state.inputIsMel = /\.npy$/i.test(name);
  $("input-name").textContent = name;
  if (state.inputIsMel) {
    $("mel-options").hidden = false;
    let mel;
    try {
      mel = parseNpy(await blob.arrayBuffer());
    } catch (e) {
      throw new Error(`${name}: cannot read this mel (${e.message})`);
    }
    if (generation !== state.generation) throw new StaleError();
    state.inputMel = mel;
  } else {
    state.inputUrl = URL.createObjectURL(blob);
    $("input-audio").src = state.inputUrl;
    $("input-audio").hidden = false;
  }
  await drawInputMel();
  $("vocode").disabled = false;
}

async function drawInputMel() {
  if (!state.input) return;
  const generation = state.generation;
  let mel = state.inputMel;
  if (!state.inputIsMel) {
    setStatus("computing the mel-spectrogram…");
    const data = await fetchMel(state.input, modelName());
    if (generation !== state.generation) throw new StaleError();
    mel = data.mel;
    showWarnings((data.warnings || []).map((w) => `${state.inputName}: ${w}`));
  } else {
    showVerdict(null);
    setStatus("checking the mel's convention…");
    await checkMel(generation);
  }
  state.range = melRange(mel);
  drawMel($("input-mel"), mel, state.range);
  setStatus("ready: press Vocode");
}

// What the input was, in a few words (its name heads the input card).
function inputFacts() {
  if (state.inputIsMel && state.inputMel) {
    const bands = state.inputMel.length;
    return `mel ${bands} × ${bands ? state.inputMel[0].length : 0}`;
  }
  return "recording";
}

function outputName(model) {
  const stem = state.inputName.replace(/\.[^.]+$/, "") || "audio";
  return `${stem}_${model}.wav`;
}

function startRequest() {
  const controller = new AbortController();
  const started = performance.now();
  const tick = () => setStatus(`vocoding… ${((performance.now() - started) / 1000).toFixed(1)} s`);
  tick();
  const timer = setInterval(tick, TICK_MS);
  state.request = { controller, timer, started };
  $("vocode").disabled = true;
  $("cancel").hidden = false;
  return state.request;
}

function endRequest() {
  if (state.request) clearInterval(state.request.timer);
  state.request = null;
  $("cancel").hidden = true;
  $("vocode").disabled = !state.input;
}

async function vocode() {
  if (!state.input || state.request) return;
  const generation = state.generation;
  const requested = modelName();
  const request = startRequest();
  const { controller, started } = request;
  try {
    const convention = state.inputIsMel ? $("convention").value : "";
    let path = `/v1/vocode?model=${encodeURIComponent(requested)}`;
    if (convention) path += `&mel_convention=${encodeURIComponent(convention)}`;
    const response = await api(path, {
      method: "POST",
      body: state.input,
      signal: controller.signal,
    });
    const wav = await response.blob();
    if (generation !== state.generation) return;
    const trip = (performance.now() - started) / 1000;
    const model = response.headers.get("X-Model") || requested;
    const audioSeconds = parseFloat(response.headers.get("X-Audio-Seconds"));
    const synthSeconds = parseFloat(response.headers.get("X-Synthesis-Seconds"));
    clearOutput();
    state.outputUrl = URL.createObjectURL(new Blob([wav], { type: "audio/wav" }));
    $("output-audio").src = state.outputUrl;
    $("output-audio").hidden = false;
    const link = $("download");
    link.href = state.outputUrl;
    link.download = outputName(model);
    link.hidden = false;
    $("output-model").textContent = `made by ${model}`;
    $("stat-model").textContent = model;
    $("stat-input").textContent = inputFacts();
    const applied = response.headers.get("X-Mel-Convention") || "";
    const how = response.headers.get("X-Mel-Convention-From") || "";
    $("stat-convention").textContent = applied + (how ? ` (${how})` : "");
    $("stat-audio").textContent = `${audioSeconds.toFixed(2)} s`;
    $("stat-synth").textContent = `${synthSeconds.toFixed(3)} s`;
    $("stat-speed").textContent = `${(audioSeconds / synthSeconds).toFixed(1)}× real time`;
    $("stat-trip").textContent = `${trip.toFixed(2)} s`;
    $("stat-batch").textContent = response.headers.get("X-Batch-Size") || "1";
    const warnings = headerWarnings(response);
    if (warnings.length) showWarnings(warnings.map((w) => `${state.inputName}: ${w}`));
    endRequest();
    setStatus("drawing the output's mel-spectrogram…");
    const data = await fetchMel(wav, model);
    if (generation !== state.generation) return;
    // a mel of another convention has other values: the output gets its own range
    const converted = state.inputIsMel && applied && applied !== (currentModel() || {}).mel;
    drawMel($("output-mel"), data.mel, converted ? melRange(data.mel) : state.range);
    setStatus("done");
  } catch (e) {
    if (generation !== state.generation) return;
    const elapsed = ((performance.now() - started) / 1000).toFixed(1);
    if (e.name === "AbortError") setStatus(`cancelled after ${elapsed} s`);
    else if (e.status === 400) setStatus(`${state.inputName}: ${e.message}`, true); // the input's fault
    else setStatus(e.message, true);
  } finally {
    if (state.request === request) endRequest();
  }
}

// A new input replaces the previous one at once, whether or not it turns out usable.
async function useInput(load, loading) {
  resetInput();
  const generation = state.generation;
  setStatus(loading);
  let name = "";
  try {
    const [blob, loadedName] = await load();
    name = loadedName;
    if (generation !== state.generation) return;
    await setInput(blob, name, generation);
  } catch (e) {
    if (e instanceof StaleError || generation !== state.generation) return;
    resetInput(); // nothing of the failed input, or of the one before it, stays usable
    if (name) $("input-name").textContent = `${name} (refused)`;
    const named = !name || e.message.startsWith(name + ":");
    setStatus(named ? e.message : `${name}: ${e.message}`, true);
  }
}

function useDemo() {
  const load = async () => [await (await api("/v1/demo-clip")).blob(), "sonnet1_librivox.flac"];
  return useInput(load, "loading the demo clip…");
}

function onFile(event) {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again is a new input
  if (!file) return undefined;
  return useInput(async () => [file, file.name], `reading ${file.name}…`);
}

async function onModelChange() {
  showModelInfo();
  if (state.request) return; // the running request keeps its model; its output says which
  clearOutput();
  if (!state.input) return;
  $("vocode").disabled = true;
  try {
    await drawInputMel();
    $("vocode").disabled = false;
  } catch (e) {
    if (e instanceof StaleError) return;
    setStatus(e.message, true);
  }
}

// Another convention gives other audio: the output of the previous one goes (a running
// request keeps its choice; its output says which convention it applied).
function onConventionChange() {
  if (!state.request) clearOutput();
}

async function onKey(event) {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  sessionStorage.setItem(KEY_STORAGE, state.key);
  $("key-bar").hidden = true;
  await init();
  if (state.models.length && state.input) {
    try {
      await drawInputMel();
      $("vocode").disabled = false;
    } catch (e) {
      if (!(e instanceof StaleError)) setStatus(e.message, true);
    }
  }
}

async function start() {
  $("file").addEventListener("change", onFile);
  $("demo").addEventListener("click", useDemo);
  $("vocode").addEventListener("click", vocode);
  $("cancel").addEventListener("click", cancelRequest);
  $("model").addEventListener("change", onModelChange);
  $("convention").addEventListener("change", onConventionChange);
  $("key-bar").addEventListener("submit", onKey); // the button, or Enter in the key field
  drawMel($("input-mel"), [], [0, 1]);
  drawMel($("output-mel"), [], [0, 1]);
  await init();
}

async function init() {
  try {
    await loadConventions();
    await loadModels();
    setStatus("upload a recording or a mel, or use the demo clip");
  } catch (e) {
    setStatus(e.message, true);
  }
}

start();
