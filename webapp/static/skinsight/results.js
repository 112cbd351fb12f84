// Live results: a WebSocket pushes the case's state; if the socket drops, the page polls the state URL
// and reconnects with back-off, so a result that arrived while disconnected is still shown.
(function () {
  "use strict";
  const root = document.getElementById("case");
  if (!root) return;
  const stateUrl = root.dataset.stateUrl;
  const wsPath = root.dataset.wsPath;
  const finished = new Set(["done", "failed", "rejected"]);
  let current = JSON.parse(document.getElementById("initial-state").textContent);
  let socket = null;
  let pollTimer = null;
  let retryDelay = 1000;

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function render(state) {
    current = state;
    const status = document.getElementById("status");
    status.textContent = state.status_label;
    status.className = "status status-" + state.status;
    text("reason", state.reason || "");
    document.getElementById("waiting").hidden = !state.waiting_for_model;
    if (finished.has(state.status)) text("connection", "");
    const p = state.prediction;
    const box = document.getElementById("prediction");
    if (!p) {
      box.hidden = true;
      return;
    }
    text("top-class", "Most likely: " + p.top_class_name + " (" + p.top_class + ") — " +
      (p.top_probability * 100).toFixed(1) + "%");
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
    text("model-version", p.model_version);
    text("latency", String(p.latency_ms));
    box.hidden = false;
  }

  async function fetchState() {
    try {
      const response = await fetch(stateUrl, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (err) {
      // Offline for a moment: the next poll or reconnect catches up.
    }
  }

  function startPolling() {
    if (pollTimer || finished.has(current.status)) return;
    pollTimer = setInterval(async () => {
      await fetchState();
      if (finished.has(current.status)) stopPolling();
    }, 3000);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (!("WebSocket" in window)) {
      startPolling();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + wsPath);
    socket.onopen = () => {
      retryDelay = 1000;
      stopPolling();
      text("connection", "Live updates on.");
    };
    socket.onmessage = (event) => render(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (finished.has(current.status)) {
        text("connection", "");
        return;
      }
      // 4401/4404: not allowed or no such case; retrying cannot help.
      if (event.code === 4401 || event.code === 4404) {
        text("connection", "Live updates are not available for this case.");
        return;
      }
      text("connection", "Reconnecting…");
      startPolling();
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }

  render(current);
  if (!finished.has(current.status)) {
    connect();
    fetchState(); // covers a result that arrived between page render and socket open
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !finished.has(current.status)) fetchState();
  });
})();
