// The trial page: show a trial, wait until its three images are decoded and on screen, then
// take one answer (click or arrow key), send it, and move on. State is on #study for tests:
// data-state = loading | ready | sending | done | error, data-trial = the trial id shown.
(() => {
  "use strict";
  const root = document.getElementById("study");
  const token = root.dataset.token;
  const $ = (id) => document.getElementById(id);
  const images = { reference: $("reference"), left: $("left"), right: $("right") };
  const buttons = [$("left-button"), $("right-button")];
  const preloaded = new Map();
  let current = null;
  let shownAt = 0;

  function setState(state) {
    root.dataset.state = state;
    const ready = state === "ready";
    buttons.forEach((b) => { b.disabled = !ready; });
    $("trial").classList.toggle("waiting", state === "loading");
  }

  function preload(url) {
    if (!preloaded.has(url)) {
      const img = new Image();
      img.src = url;
      preloaded.set(url, img.decode().catch(() => undefined));
    }
    return preloaded.get(url);
  }

  function fail(message) {
    setState("error");
    const warning = $("warning");
    warning.hidden = false;
    warning.textContent = message + " Reload the page to continue where you stopped.";
  }

  function checkWidth(trial) {
    const ratio = window.devicePixelRatio || 1;
    const needed = 3 * (trial.width / ratio + 8) + 2 * 28 + 32;
    const warning = $("warning");
    if (window.innerWidth < needed) {
      warning.hidden = false;
      warning.textContent = `Please make the window wider (at least ${Math.ceil(needed)} px) so that all three images fit at their true size.`;
    } else if (root.dataset.state !== "error") {
      warning.hidden = true;
    }
  }

  async function show(trial) {
    setState("loading");
    current = trial;
    root.dataset.trial = String(trial.trial_id);
    $("counter").textContent = `Comparison ${trial.position + 1} of ${trial.total}`;
    $("bar-fill").style.width = `${(100 * trial.position) / trial.total}%`;
    document.querySelectorAll(".chosen").forEach((e) => e.classList.remove("chosen"));
    const ratio = window.devicePixelRatio || 1;  // one image pixel on one screen pixel: no rescaling
    await Promise.all(Object.entries(images).map(([key, img]) => {
      img.width = trial.width / ratio;
      img.height = trial.height / ratio;
      img.style.width = `${trial.width / ratio}px`;
      img.style.height = `${trial.height / ratio}px`;
      img.src = trial[key];
      return img.decode();
    }));
    checkWidth(trial);
    // two frames: the images are painted before the clock starts and the buttons wake up
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (current !== trial) return;
      shownAt = performance.now();
      setState("ready");
    }));
  }

  async function next() {
    const response = await fetch(`/api/s/${token}/next`, { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) return fail(data.error || `Error ${response.status}.`);
    if (data.done) return finish(data.code);
    if (data.next) ["reference", "left", "right"].forEach((key) => preload(data.next[key]));
    try {
      await show(data.trial);
    } catch (error) {
      fail("An image could not be loaded.");
    }
  }

  async function answer(side) {
    if (root.dataset.state !== "ready" || current === null) return;
    const rt = Math.round(performance.now() - shownAt);
    setState("sending");
    $(`${side}-choice`).classList.add("chosen");
    try {
      const response = await fetch(`/api/s/${token}/answer`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ trial_id: current.trial_id, side, rt_ms: rt }),
      });
      const data = await response.json();
      if (response.ok && data.done) return finish(data.code);
      // 409 (already stored) or 410 (session finished): resume from what the server has
      if (response.ok || response.status === 409 || response.status === 410) return next();
      fail(data.error || `Error ${response.status}.`);
    } catch (error) {
      fail("The answer could not be sent (network problem).");
    }
  }

  function finish(code) {
    setState("done");
    $("trial").hidden = true;
    $("hint").hidden = true;
    $("resume").hidden = true;
    $("warning").hidden = true;
    $("bar-fill").style.width = "100%";
    $("counter").textContent = "Finished";
    $("code").textContent = code;
    $("done").hidden = false;
  }

  buttons[0].addEventListener("click", () => answer("left"));
  buttons[1].addEventListener("click", () => answer("right"));
  images.left.addEventListener("click", () => answer("left"));
  images.right.addEventListener("click", () => answer("right"));
  document.addEventListener("keydown", (event) => {
    if (event.repeat) return;
    if (event.key === "ArrowLeft") { event.preventDefault(); answer("left"); }
    if (event.key === "ArrowRight") { event.preventDefault(); answer("right"); }
  });
  window.addEventListener("resize", () => { if (current) checkWidth(current); });
  setState("loading");
  next().catch(() => fail("The study server cannot be reached."));
})();
