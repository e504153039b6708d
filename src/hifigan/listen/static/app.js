// The listening test page: start or resume a rater, play each trial, send each rating.
// The server decides the trials; this script only knows opaque audio URLs.
"use strict";

(() => {
  // one remembered rater per test: a later test served on the same address (another mode,
  // other systems) must not inherit the previous test's rater and skip its own instructions
  const KEY = `hifigan-listen-rater:${document.body.dataset.test}`;
  const mode = document.body.dataset.mode === "ab" ? "ab" : "mos";
  const $ = (id) => document.getElementById(id);
  const block = $(mode === "ab" ? "ab-trial" : "mos-trial");
  const fieldset = $(mode === "ab" ? "choice" : "scale");
  const inputName = mode === "ab" ? "choice" : "score";
  let current = null; // the server's answer for the trial on screen
  let busy = false;

  document.body.classList.add(`mode-${mode}`);

  // ------------------------------------------------------------------ players
  const players = Array.from(block.querySelectorAll(".player")).map((slot) => ({
    audio: slot.querySelector("audio"),
    button: slot.querySelector("button.play"),
    position: slot.querySelector(".position"),
    heard: false,
  }));

  function label(player) {
    if (!player.audio.paused) return "Pause";
    return player.heard ? "Play again" : "Play";
  }

  for (const player of players) {
    const { audio, button, position } = player;
    button.addEventListener("click", () => {
      if (audio.paused) {
        for (const other of players) if (other !== player) other.audio.pause();
        audio.play().catch(() => fail("The browser did not play the recording; press Play again."));
      } else {
        audio.pause();
      }
    });
    audio.addEventListener("play", () => { button.textContent = label(player); button.classList.add("playing"); });
    audio.addEventListener("pause", () => { button.textContent = label(player); button.classList.remove("playing"); });
    audio.addEventListener("timeupdate", () => {
      const share = audio.duration ? audio.currentTime / audio.duration : 0;
      position.style.width = `${Math.min(100, 100 * share)}%`;
    });
    audio.addEventListener("ended", () => {
      player.heard = true;
      button.textContent = label(player);
      button.classList.remove("playing");
      updateControls();
    });
    audio.addEventListener("error", () => {
      if (audio.getAttribute("src")) fail("A recording could not be loaded; please reload the page.");
    });
  }

  function load(urls) {
    players.forEach((player, i) => {
      player.audio.pause();
      player.heard = false;
      player.position.style.width = "0%";
      player.audio.setAttribute("src", urls[i]);
      player.audio.load();
      player.button.textContent = label(player);
      player.button.classList.remove("playing");
    });
  }

  function stopAll() {
    for (const player of players) player.audio.pause();
  }

  // ------------------------------------------------------------------ screens
  function show(id) {
    for (const section of ["start", "test", "finished"]) $(section).hidden = section !== id;
  }

  function fail(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function selected() {
    const input = fieldset.querySelector(`input[name=${inputName}]:checked`);
    return input ? input.value : null;
  }

  function updateControls() {
    const heard = players.every((p) => p.heard);
    fieldset.disabled = !heard || busy;
    $("next").disabled = !heard || busy || selected() === null;
    let hint = "";
    if (!heard) {
      hint = mode === "ab" ? "Play both recordings to the end to choose."
        : "Play the recording to the end to rate it.";
    } else if (selected() === null) {
      hint = mode === "ab" ? "Choose A, B or no preference, then Next."
        : "Choose a score, then Next.";
    }
    $("hint").textContent = hint;
  }

  function render(answer) {
    current = answer;
    fail("");
    $("rater-name").textContent = answer.rater;
    const percent = answer.total ? Math.round((100 * answer.done) / answer.total) : 100;
    $("progress-bar").style.width = `${percent}%`;
    $("progress").setAttribute("aria-valuenow", String(percent));
    if (answer.finished) {
      stopAll();
      // nothing left to resume: a reload now opens the start page for whoever comes next
      localStorage.removeItem(KEY);
      $("finished-count").textContent = String(answer.done);
      show("finished");
      return;
    }
    $("count").textContent = `${answer.done + 1} of ${answer.total}`;
    for (const input of fieldset.querySelectorAll("input")) input.checked = false;
    load(answer.audio);
    updateControls();
    show("test");
  }

  // ------------------------------------------------------------------ server
  async function call(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(path, options);
      const data = await response.json().catch(() => ({}));
      return { status: response.status, data };
    } catch (e) {
      return { status: 0, data: { error: "The server cannot be reached; try again in a moment." } };
    }
  }

  function askExisting(existing) {
    const { rater, done, total, finished } = existing;
    const progress = finished ? `has finished this test (${done} ratings)`
      : `has rated ${done} of ${total} recordings in this test`;
    $("existing-text").textContent = `Someone called “${rater}” ${progress}. ` +
      "Is that you?";
    $("continue").textContent = `Continue as ${rater}`;
    $("continue").dataset.rater = rater;
    $("existing").hidden = false;
    show("start");
    $("continue").focus();
  }

  function startScreen() {
    stopAll();
    localStorage.removeItem(KEY);
    current = null;
    $("name").value = "";
    $("existing").hidden = true;
    fail("");
    show("start");
    $("name").focus();
  }

  async function begin(name, resume) {
    $("existing").hidden = true;
    const { status, data } = await call("POST", "/api/start", { rater: name, resume });
    if (status === 409 && data.existing) {
      fail("");
      askExisting(data.existing);
      return;
    }
    if (status !== 200) {
      show("start");
      fail(data.error || "The server did not accept this name.");
      return;
    }
    localStorage.setItem(KEY, data.rater);
    render(data);
  }

  async function submit() {
    const value = selected();
    if (busy || current === null || value === null || $("next").disabled) return;
    busy = true;
    updateControls();
    const body = { rater: current.rater, trial: current.trial };
    body[inputName] = mode === "ab" ? value : Number(value);
    const { status, data } = await call("POST", "/api/rate", body);
    busy = false;
    if (status === 200 || status === 409) {
      render(data);
    } else if (status === 404) {
      localStorage.removeItem(KEY);
      show("start");
      fail("This test does not know you yet; please start again.");
    } else {
      updateControls();
      fail(data.error || "The rating was not saved; please try again.");
    }
  }

  // ------------------------------------------------------------------ wiring
  fieldset.addEventListener("change", updateControls);
  $("next").addEventListener("click", submit);
  $("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    begin($("name").value.trim(), false);
  });
  $("continue").addEventListener("click", () => begin($("continue").dataset.rater, true));
  $("other-name").addEventListener("click", () => {
    $("existing").hidden = true;
    $("name").value = "";
    $("name").focus();
  });
  $("switch").addEventListener("click", (event) => {
    event.preventDefault();
    startScreen();
  });
  $("next-rater").addEventListener("click", startScreen);
  document.addEventListener("keydown", (event) => {
    if ($("test").hidden || event.target.tagName === "INPUT" && event.target.type === "text") return;
    const keys = mode === "ab" ? { a: "A", b: "B", n: "none" } : { 1: "1", 2: "2", 3: "3", 4: "4", 5: "5" };
    const value = keys[event.key.toLowerCase()];
    if (value !== undefined && !fieldset.disabled) {
      fieldset.querySelector(`input[value="${value}"]`).checked = true;
      updateControls();
    } else if (event.key === "Enter") {
      submit();
    }
  });

  const saved = localStorage.getItem(KEY);
  if (saved) begin(saved, true);
  else show("start");
})();
