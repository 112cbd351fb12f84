// Live results: draws the case's state, which live.js keeps current (push, or polling when the socket drops).
(function () {
  "use strict";
  const root = document.getElementById("case");
  if (!root) return;
  const finished = new Set(["done", "failed", "rejected"]);

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function renderGuidance(guidance, name) {
    const box = document.getElementById("guidance");
    box.hidden = !guidance;
    if (!guidance) return;
    text("guidance-name", name);
    text("guidance-what", guidance.what_it_is);
    text("guidance-first-line", guidance.first_line);
    text("guidance-see-a-doctor", guidance.see_a_doctor);
    text("guidance-version", String(guidance.version));
    text("guidance-approval", guidance.reviewed_by
      ? "approved by " + guidance.reviewed_by + ", a clinician of this portal"
      : "shipped with SkinSight and not yet reviewed by this portal's clinicians");
    const sources = document.getElementById("guidance-sources");
    sources.replaceChildren();
    for (const line of guidance.source_lines) {
      const item = document.createElement("li");
      item.textContent = line;
      sources.append(item);
    }
  }

  // Red where the evidence for the chosen class was strongest, blue where weak, clear where none.
  function renderHeatMap(heatmap) {
    const controls = document.getElementById("heatmap-controls");
    const toggle = document.getElementById("heatmap-toggle");
    const overlay = document.getElementById("heatmap-overlay");
    controls.hidden = !heatmap;
    if (!heatmap) return;
    const ready = heatmap.status === "done";
    toggle.disabled = !ready;
    if (ready && overlay.getAttribute("src") !== heatmap.image_url) {
      overlay.src = heatmap.image_url;
    }
    overlay.hidden = !(ready && toggle.checked);
    text("heatmap-status", ready
      ? "(Grad-CAM for " + heatmap.target_class + ": red = strongest evidence)"
      : heatmap.status === "failed"
        ? "— the heat map could not be made: " + heatmap.error
        : "— the heat map is being made…");
    document.getElementById("heatmap-retry").hidden =
      !(heatmap.status === "failed" && root.dataset.mayRequestHeatmap === "yes");
  }

  // Clinicians ask again for a heat map that failed (the API answers 202 and queues it).
  document.getElementById("heatmap-retry").addEventListener("click", async (event) => {
    event.target.disabled = true;
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    const response = await fetch(root.dataset.heatmapUrl, {
      method: "POST",
      headers: { "X-CSRFToken": token ? token.value : "" },
      credentials: "same-origin",
    });
    if (response.status === 202) {
      location.reload();
    } else {
      text("heatmap-status", "— could not ask for it again (" + response.status + ")");
      event.target.disabled = false;
    }
  });

  document.getElementById("heatmap-toggle").addEventListener("change", (event) => {
    document.getElementById("heatmap-overlay").hidden = !event.target.checked;
  });

  function showStatus(badge, state) {
    badge.textContent = state.status_label;
    badge.className = "status status-" + state.status;
  }

  function render(state) {
    showStatus(document.getElementById("status"), state);
    text("reason", state.reason || "");
    // This photo's card in "This lesion over time" shows the same status.
    const visit = document.querySelector("#timeline .visit.current .status");
    if (visit) showStatus(visit, state);
    document.getElementById("waiting").hidden = !state.waiting_for_model;
    const p = state.prediction;
    const box = document.getElementById("prediction");
    if (!p) {
      box.hidden = true;
      renderHeatMap(null);
      return;
    }
    // The decision comes first, in plain language; the class and numbers are for the clinician.
    const advice = document.getElementById("advice");
    advice.textContent = p.advice;
    advice.className = "banner " + (p.decision === "routine" ? "ok" : "warning");
    advice.dataset.decision = p.decision || "unknown";
    // A model with a top-class rule may name a rarer class than the most probable one; say so.
    const named = p.top_class_is_most_probable === false
      ? "The model's reading (rare lesions weighed as much as common ones): "
      : "Most likely: ";
    text("top-class", named + p.top_class_name + " (" + p.top_class + ") — " +
      (p.top_probability * 100).toFixed(1) + "%" +
      (p.top_class_is_most_probable === false ? "; most probable: " + p.most_probable_class : ""));
    const body = document.getElementById("probabilities");
    body.replaceChildren();
    for (const row of p.probabilities) {
      const tr = document.createElement("tr");
      tr.dataset.code = row.code;
      const name = document.createElement("td");
      name.textContent = row.name + " (" + row.code + ")";
      const value = document.createElement("td");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = Math.max(1, Math.round(row.probability * 100)) + "%";
      const label = document.createElement("span");
      label.textContent = (row.probability * 100).toFixed(1) + "%";
      value.append(bar, label);
      tr.append(name, value);
      body.append(tr);
    }
    renderGuidance(p.guidance, p.top_class_name);
    renderHeatMap(p.heatmap);
    text("model-version", p.model_version);
    text("latency", String(p.latency_ms));
    box.hidden = false;
  }

  window.SkinSightLive.follow({
    wsPath: root.dataset.wsPath,
    stateUrl: root.dataset.stateUrl,
    initial: JSON.parse(document.getElementById("initial-state").textContent),
    // A result is followed until its heat map, which comes after it, is made or has failed.
    isFinished: (state) => finished.has(state.status) &&
      !(state.prediction && state.prediction.heatmap && state.prediction.heatmap.status === "queued"),
    render: render,
    say: (message) => text("connection", message),
  });
})();
