// Live training progress, drawn from the run's one state dict, which live.js keeps current (push, or polling
// when the socket drops); a reload draws the same page from the same state.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const finished = (state) => state.finished;
  const SVG = "http://www.w3.org/2000/svg";

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + r + " s";
  }

  function fmt(value) {
    return typeof value === "number" ? value.toFixed(4) : "–";
  }

  function node(name, attrs) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  }

  // Draws series of [x, y] points into an SVG of 400x200, sharing one scale.
  function chart(svg, series) {
    svg.replaceChildren();
    const points = series.flatMap((s) => s.points).filter((p) => typeof p[1] === "number");
    if (!points.length) {
      const t = node("text", { x: 200, y: 100, "text-anchor": "middle", class: "empty" });
      t.textContent = "no data yet";
      svg.append(t);
      return;
    }
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs, 0), x1 = Math.max(...xs, 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const X = (x) => 40 + ((x - x0) / (x1 - x0 || 1)) * 350;
    const Y = (y) => 185 - ((y - y0) / (y1 - y0)) * 170;
    svg.append(node("line", { x1: 40, y1: 185, x2: 390, y2: 185, class: "axis" }));
    svg.append(node("line", { x1: 40, y1: 15, x2: 40, y2: 185, class: "axis" }));
    for (const [value, y] of [[y1, 18], [y0, 188]]) {
      const label = node("text", { x: 36, y: y, "text-anchor": "end", class: "tick" });
      label.textContent = value.toFixed(2);
      svg.append(label);
    }
    for (const s of series) {
      const pts = s.points.filter((p) => typeof p[1] === "number");
      if (!pts.length) continue;
      if (s.line) {
        svg.append(node("polyline", {
          points: pts.map((p) => X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" "),
          class: "series " + s.cls,
        }));
      }
      if (s.dots) {
        for (const p of pts) svg.append(node("circle", { cx: X(p[0]), cy: Y(p[1]), r: 3, class: "dot " + s.cls }));
      }
    }
  }

  function render(state) {
    const status = document.getElementById("status");
    status.textContent = state.status_label;
    status.className = "status status-" + state.status;
    text("reason", state.reason || "");
    document.getElementById("cancel-note").hidden = !(state.cancel_requested && !finished(state));
    const cancelForm = document.getElementById("cancel-form");
    if (cancelForm && finished(state)) cancelForm.hidden = true;
    text("device", state.device || "not started yet");
    text("worker", state.worker || "–");
    if (state.snapshot) {
      text("snapshot", " — snapshot " + state.snapshot.sha256.slice(0, 12) + ", " +
        state.snapshot.image_count + " training images; evaluation set " +
        state.snapshot.evaluation_set.slice(0, 12) + " left out");
    }
    const candidate = document.getElementById("candidate");
    if (state.model_version) {
      const link = document.getElementById("candidate-link");
      link.textContent = state.model_version;
      link.href = state.model_url;
      candidate.hidden = false;
    }
    const problems = document.getElementById("problems");
    problems.replaceChildren();
    for (const p of state.problems || []) {
      const li = document.createElement("li");
      li.textContent = p.where + ": " + p.detail;
      problems.append(li);
    }
    problems.hidden = !(state.problems || []).length;
    const logLink = document.getElementById("log-link");
    if (state.log_url) {
      logLink.querySelector("a").href = state.log_url;
      logLink.hidden = false;
    }

    const p = state.progress || {};
    document.getElementById("progress").hidden = !p.stage && !p.phase;
    text("stage", p.stage || "");
    const phaseIndex = (p.phases || []).findIndex((ph) => ph.name === p.phase);
    text("phase", p.phase ? "phase " + (phaseIndex + 1) + " of " + p.phases.length + ": " + p.phase : "not training yet");
    text("epoch", p.epochs ? p.epoch + " / " + p.epochs : "–");
    text("batch", p.steps ? p.batch + " / " + p.steps : "–");
    const total = (p.phases || []).reduce((n, ph) => n + ph.epochs * ph.steps_per_epoch, 0);
    const done = (p.batches && p.batches.length) ? p.batches[p.batches.length - 1][0] : 0;
    document.getElementById("bar").style.width = (total ? Math.min(100, (100 * done) / total) : 0) + "%";
    const logs = p.logs || {};
    text("loss", fmt(logs.loss));
    text("accuracy", fmt(logs.accuracy));
    text("elapsed", duration(p.elapsed_seconds));
    text("eta", finished(state) ? "" : "ETA " + duration(p.eta_seconds));
    const log = document.getElementById("messages");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = (p.messages || []).join("\n");
    if (atBottom) log.scrollTop = log.scrollHeight; // follow the newest line unless the reader scrolled up

    const h = p.history || {};
    const steps = h.step || [];
    const pairs = (key) => steps.map((x, i) => [x, (h[key] || [])[i]]);
    chart(document.getElementById("loss-chart"), [
      { points: p.batches || [], cls: "batch", line: true },
      { points: pairs("loss"), cls: "train", dots: true, line: true },
      { points: pairs("val_loss"), cls: "val", dots: true, line: true },
    ]);
    chart(document.getElementById("accuracy-chart"), [
      { points: pairs("accuracy"), cls: "train", dots: true, line: true },
      { points: pairs("val_accuracy"), cls: "val", dots: true, line: true },
    ]);
  }

  window.SkinSightLive.follow({
    wsPath: root.dataset.wsPath,
    stateUrl: root.dataset.stateUrl,
    initial: JSON.parse(document.getElementById("initial-state").textContent),
    isFinished: finished,
    render: render,
    say: (message) => text("connection", message),
  });
})();
