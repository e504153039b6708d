// The hifigan serve web page: pick a model, upload a recording (or the demo clip), vocode it
// through POST /v1/vocode, and compare both mel-spectrograms (from POST /v1/mel?format=json).
// Plain JavaScript, no build step, no requests to anything but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "hifigan-api-key";
const DYNAMIC_RANGE = 11.5; // natural-log units shown below the input's loudest bin

const state = {
  models: [],
  input: null, // Blob
  inputName: "",
  inputUrl: null,
  outputUrl: null,
  range: null, // [low, high] shared by both spectrograms, from the input
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

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("key-bar").hidden = false;
    throw new Error("this server needs an API key");
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function modelName() {
  return $("model").value;
}

function showModelInfo() {
  const m = state.models.find((x) => x.name === modelName());
  $("model-info").textContent = m
    ? `${m.sample_rate} Hz · ${m.n_mels} bands · hop ${m.hop}`
    : "";
}

async function loadModels() {
  const data = await (await api("/v1/models")).json();
  state.models = data.models;
  const select = $("model");
  select.innerHTML = "";
  for (const m of data.models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.name + (m.name === data.default ? " (default)" : "");
    select.appendChild(option);
  }
  select.value = data.default;
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

async function fetchMel(blob) {
  const response = await api(`/v1/mel?model=${encodeURIComponent(modelName())}&format=json`, {
    method: "POST",
    body: blob,
  });
  return (await response.json()).mel;
}

function melRange(mel) {
  let high = -Infinity;
  for (const row of mel) for (const v of row) if (v > high) high = v;
  return [high - DYNAMIC_RANGE, high];
}

function clearOutput() {
  if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
  state.outputUrl = null;
  $("output-audio").removeAttribute("src");
  $("output-audio").load();
  $("download").hidden = true;
  drawMel($("output-mel"), [], [0, 1]);
  for (const id of ["stat-audio", "stat-synth", "stat-speed", "stat-trip", "stat-batch"]) {
    $(id).textContent = "–";
  }
}

async function setInput(blob, name) {
  state.input = blob;
  state.inputName = name;
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(blob);
  $("input-audio").src = state.inputUrl;
  $("input-name").textContent = name;
  $("vocode").disabled = false;
  clearOutput();
  await drawInputMel();
}

async function drawInputMel() {
  if (!state.input) return;
  setStatus("computing the mel-spectrogram…");
  const mel = await fetchMel(state.input);
  state.range = melRange(mel);
  drawMel($("input-mel"), mel, state.range);
  setStatus("ready: press Vocode");
}

function outputName() {
  const stem = state.inputName.replace(/\.[^.]+$/, "") || "audio";
  return `${stem}_${modelName()}.wav`;
}

async function vocode() {
  $("vocode").disabled = true;
  setStatus("vocoding…");
  const start = performance.now();
  try {
    const response = await api(`/v1/vocode?model=${encodeURIComponent(modelName())}`, {
      method: "POST",
      body: state.input,
    });
    const wav = await response.blob();
    const trip = (performance.now() - start) / 1000;
    const audioSeconds = parseFloat(response.headers.get("X-Audio-Seconds"));
    const synthSeconds = parseFloat(response.headers.get("X-Synthesis-Seconds"));
    if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
    state.outputUrl = URL.createObjectURL(new Blob([wav], { type: "audio/wav" }));
    $("output-audio").src = state.outputUrl;
    const link = $("download");
    link.href = state.outputUrl;
    link.download = outputName();
    link.hidden = false;
    $("stat-audio").textContent = `${audioSeconds.toFixed(2)} s`;
    $("stat-synth").textContent = `${synthSeconds.toFixed(3)} s`;
    $("stat-speed").textContent = `${(audioSeconds / synthSeconds).toFixed(1)}× real time`;
    $("stat-trip").textContent = `${trip.toFixed(2)} s`;
    $("stat-batch").textContent = response.headers.get("X-Batch-Size") || "1";
    const mel = await fetchMel(wav);
    drawMel($("output-mel"), mel, state.range || melRange(mel));
    setStatus("done");
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("vocode").disabled = !state.input;
  }
}

async function useDemo() {
  setStatus("loading the demo clip…");
  try {
    const blob = await (await api("/v1/demo-clip")).blob();
    await setInput(blob, "sonnet1_librivox.flac");
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function onFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  try {
    await setInput(file, file.name);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function onModelChange() {
  showModelInfo();
  clearOutput();
  try {
    await drawInputMel();
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function start() {
  $("file").addEventListener("change", onFile);
  $("demo").addEventListener("click", useDemo);
  $("vocode").addEventListener("click", vocode);
  $("model").addEventListener("change", onModelChange);
  $("key-save").addEventListener("click", async () => {
    state.key = $("api-key").value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    $("key-bar").hidden = true;
    await init();
  });
  drawMel($("input-mel"), [], [0, 1]);
  drawMel($("output-mel"), [], [0, 1]);
  await init();
}

async function init() {
  try {
    await loadModels();
    setStatus("upload a recording or use the demo clip");
  } catch (e) {
    setStatus(e.message, true);
  }
}

start();
