/* Tidings live updates: keeps a timeline in step with its WebSocket stream.
 *
 * A timeline element carrying data-stream and data-cursor subscribes to that stream from the
 * cursor the server rendered the page at, so nothing committed after the page was built is missed.
 * On a dropped connection it reconnects with jittered exponential backoff and resumes from the
 * last cursor it saw; activities already on the page are never shown twice.
 */
(function () {
  "use strict";

  const timeline = document.querySelector("[data-stream]");
  const status = document.getElementById("live-status");
  if (!timeline || !("WebSocket" in window)) return;

  const stream = timeline.dataset.stream;
  let cursor = timeline.dataset.cursor || null;
  let attempt = 0;
  let socket = null;

  function setStatus(online) {
    if (!status) return;
    status.hidden = false;
    status.textContent = online ? "Live" : "Offline – reconnecting";
    status.className = "live-status " + (online ? "online" : "offline");
  }

  function render(activity) {
    if (timeline.querySelector('[data-activity-id="' + activity.id + '"]')) return;
    const template = document.getElementById("activity-template");
    const item = template.content.firstElementChild.cloneNode(true);
    const name = activity.author ? activity.author.display_name : "Tidings";
    item.dataset.activityId = String(activity.id);
    item.classList.add("kind-" + activity.kind);
    item.querySelector(".avatar").textContent = name.charAt(0).toUpperCase();
    item.querySelector(".kind-badge").textContent = activity.kind.charAt(0).toUpperCase() + activity.kind.slice(1);
    item.querySelector(".activity-author").textContent = name;
    const time = item.querySelector("time");
    time.dateTime = activity.occurred_at;
    time.title = new Date(activity.occurred_at).toLocaleString();
    if (activity.subject) {
      const subject = item.querySelector(".activity-subject");
      subject.hidden = false;
      subject.textContent = activity.subject;
    }
    // textContent, never innerHTML: the body is user text.
    item.querySelector(".activity-text").textContent = activity.body;
    const empty = timeline.querySelector("[data-empty]");
    if (empty) empty.remove();
    timeline.prepend(item);
  }

  function onMessage(message) {
    let frame;
    try { frame = JSON.parse(message.data); } catch (e) { return; }
    if (frame.stream && frame.stream !== stream) return;
    if (frame.cursor) cursor = frame.cursor;
    if (frame.type === "activity.created") render(frame.data);
    else if (frame.type === "resync") window.location.reload();
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/");
    socket.addEventListener("open", function () {
      attempt = 0;
      setStatus(true);
      socket.send(JSON.stringify({ op: "subscribe", stream: stream, since: cursor }));
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      setStatus(false);
      if (event.code === 4401) { window.location.href = "/login/?next=" + encodeURIComponent(window.location.pathname); return; }
      if (event.code === 4403) return;
      attempt += 1;
      const ceiling = Math.min(30000, 500 * Math.pow(2, attempt));
      window.setTimeout(connect, ceiling / 2 + Math.random() * ceiling / 2);
    });
  }

  connect();
})();
