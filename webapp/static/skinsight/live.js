// Follows an object's state for a live page: a WebSocket pushes each change; when the socket drops, the
// page polls the state URL and reconnects with back-off, so a change made while disconnected still shows.
// Used by the results page (a case) and the training-run page.
window.SkinSightLive = {
  follow: function (options) {
    "use strict";
    const { wsPath, stateUrl, isFinished, render, say } = options;
    let current = options.initial;
    let pollTimer = null;
    let retryDelay = 1000;

    function show(state) {
      current = state;
      render(state);
      if (isFinished(state)) say("");
    }

    async function fetchState() {
      try {
        const response = await fetch(stateUrl, { credentials: "same-origin", cache: "no-store" });
        if (response.ok) show(await response.json());
      } catch (err) {
        // Offline for a moment: the next poll or reconnect catches up.
      }
    }

    function stopPolling() {
      clearInterval(pollTimer);
      pollTimer = null;
    }

    function startPolling() {
      if (pollTimer || isFinished(current)) return;
      pollTimer = setInterval(async () => {
        await fetchState();
        if (isFinished(current)) stopPolling();
      }, 3000);
    }

    function connect() {
      if (!("WebSocket" in window)) {
        startPolling();
        return;
      }
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      // The socket server's own port where no proxy routes /ws/ to it at this address.
      const port = document.body.dataset.livePort;
      const host = port ? location.hostname + ":" + port : location.host;
      const socket = new WebSocket(scheme + host + wsPath);
      socket.onopen = () => {
        retryDelay = 1000;
        stopPolling();
        say("Live updates on.");
      };
      socket.onmessage = (event) => show(JSON.parse(event.data));
      socket.onclose = (event) => {
        if (isFinished(current)) {
          say("");
          return;
        }
        // 4401/4403/4404: not signed in, not allowed, or nothing there; retrying cannot help.
        if (event.code === 4401 || event.code === 4403 || event.code === 4404) {
          say("Live updates are not available here.");
          return;
        }
        say("Reconnecting…");
        startPolling();
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      };
    }

    show(current);
    if (!isFinished(current)) {
      connect();
      fetchState(); // covers a change between page render and socket open
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !isFinished(current)) fetchState();
    });
  },
};
