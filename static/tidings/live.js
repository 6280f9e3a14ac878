/* Tidings live updates: keeps a timeline in step with its WebSocket stream.
 *
 * A timeline element carrying data-stream and data-cursor subscribes to that stream from the
 * cursor the server rendered the page at, so nothing committed after the page was built is missed.
 * On a dropped connection it reconnects with jittered exponential backoff and resumes from the
 * last cursor it saw; activities already on the page are never shown twice. New activities slide in
 * at the top while the top of the timeline is in view; when the reader has scrolled down they wait
 * behind a quiet "n new" marker instead of moving the page under the reader's eyes.
 *
 * Requests are kept right wherever they show: their status pill, assignee and priority change in
 * place on any page, a resolved one leaves the account's "Open requests" panel, and the support
 * queue (stream `requests`) adds new requests as rows. The dashboard's ticker (`team:<id>`)
 * honours its kind and person filters for what arrives live, and its tables (activity by rep, open
 * work, pipeline, going cold) are fetched again from /dashboard/panels/ when the team's stream
 * moves: at most once a second however busy the team, so the numbers are the server's own count.
 *
 * On the account and home pages (data-render) a live activity is rendered by the server for the
 * reader, exactly as a reload would show it; elsewhere it is drawn from the event's data.
 *
 * The same socket carries the reader's `notifications` stream, which keeps the unread badge in
 * the header right: every notification event says how many are unread after it, so reading in
 * one tab clears the badge in the others.
 */
(function () {
  "use strict";

  const timeline = document.querySelector("[data-stream]");
  const status = document.getElementById("live-status");
  const viewersBox = document.getElementById("viewers");
  const marker = document.getElementById("new-marker");
  const bell = document.getElementById("notification-bell");
  const badge = document.getElementById("unread-badge");
  const inbox = document.getElementById("inbox");
  if ((!timeline && !bell) || !("WebSocket" in window)) return;

  const stream = timeline ? timeline.dataset.stream : null;
  const me = document.body.dataset.userId;
  const cursors = {};
  if (timeline) cursors[stream] = timeline.dataset.cursor || null;
  if (bell) cursors.notifications = bell.dataset.cursor || null;
  let attempt = 0;
  let currentSocket = null;
  const waiting = [];

  function setStatus(state) {
    if (!status) return;
    status.hidden = false;
    const labels = { online: "Live", connecting: "Connecting…", offline: "Offline – reconnecting" };
    status.textContent = labels[state];
    status.className = "live-status " + state;
    status.title = state === "online" ? "Updates appear as they happen" : "Updates will resume when the connection is back";
  }

  const STATUS_LABELS = { open: "Open", in_progress: "In progress", waiting: "Waiting on customer", resolved: "Resolved" };

  function capitalised(text) { return text ? text.charAt(0).toUpperCase() + text.slice(1) : ""; }

  // As the server renders it (templates/feed/_activity.html): notes and mail to customers say so.
  function kindLabel(activity) {
    if (activity.internal) return "Internal note";
    const details = activity.details || {};
    if (activity.kind === "email" && details.direction === "outbound") return "Email to customer";
    if (activity.kind === "email" && activity.parent && timeline && timeline.dataset.onlyParent) return "Email from customer";
    return capitalised(activity.kind);
  }

  function build(activity) {
    const template = document.getElementById("activity-template");
    const item = template.content.firstElementChild.cloneNode(true);
    // An email nobody here wrote is shown under its sender, as the page renders it.
    const details = activity.details || {};
    const name = activity.author ? activity.author.display_name : details.from_name || details.from || "Tidings";
    item.dataset.activityId = String(activity.id);
    item.id = "activity-" + activity.id;
    item.classList.add("kind-" + activity.kind);
    item.querySelector(".avatar").textContent = activity.author || details.from ? name.charAt(0).toUpperCase() : "•";
    item.querySelector(".kind-badge").textContent = kindLabel(activity);
    if (activity.internal) item.classList.add("internal-note");
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
    const facts = item.querySelector(".request-facts");
    if (facts && activity.kind === "request") {
      facts.hidden = false;
      const pill = facts.querySelector("[data-status]");
      pill.textContent = STATUS_LABELS[activity.status] || activity.status;
      pill.className = "pill " + (activity.status === "resolved" ? "done" : (activity.is_overdue ? "overdue" : "open"));
      facts.querySelector("[data-priority]").textContent = capitalised(activity.priority);
    }
    showAccount(item, activity);
    wireActions(item, activity);
    return item;
  }

  // The names of the accounts a home page can show, rendered by the server as JSON data.
  const accountNames = (function () {
    const data = document.getElementById("account-names");
    try { return data ? JSON.parse(data.textContent) : {}; } catch (e) { return {}; }
  })();

  function showAccount(item, activity) {
    const name = accountNames[String(activity.account)];
    if (!name) return;
    const holder = item.querySelector(".live-account");
    const link = holder.querySelector("a");
    link.href = "/accounts/" + activity.account + "/#activity-" + (activity.parent || activity.id);
    link.textContent = name;
    holder.hidden = false;
  }

  // The same buttons a server-rendered activity has, on the account page (the home page shows
  // none, as when rendered): each form posts to /activities/<id>/<verb>/ like the others.
  function wireActions(item, activity) {
    const actions = item.querySelector("[data-live-actions]");
    if (!actions || !timeline.dataset.actions) return;
    const mine = activity.author && String(activity.author.id) === me;
    const isAdmin = document.body.dataset.isAdmin === "yes";
    const worker = activity.kind === "task" && (mine || (activity.assignee && String(activity.assignee.id) === me) || isAdmin);
    const editable = ["post", "comment", "meeting", "call", "task", "request"].indexOf(activity.kind) >= 0;
    const shown = { root: !activity.parent, mine: mine && editable, deletable: mine || isAdmin, "task-worker": worker && !activity.is_done };
    actions.querySelectorAll("[data-only]").forEach(function (part) {
      const wanted = shown[part.dataset.only];
      part.hidden = !wanted;
      if (!wanted) part.remove();
    });
    actions.querySelectorAll("form[data-verb]").forEach(function (form) {
      form.action = "/activities/" + activity.id + "/" + form.dataset.verb + "/";
    });
    const edit = actions.querySelector('form[data-verb="edit"] textarea');
    if (edit) edit.value = activity.body;
    actions.hidden = false;
  }

  // Pages that render their timeline on the server (data-render: "account" or "home") show a
  // live activity as the server renders it for this reader: GET /activities/<id>/item/ answers
  // the same fragment a reload would show, with the reader's buttons (like, reply, edit, delete,
  // thread), its facts and, on the home page, its account. A hidden placeholder holds the
  // activity's place meanwhile, so activities that arrive together keep their order.
  function placeholder(activity) {
    const item = document.createElement("li");
    item.className = "activity pending";
    item.hidden = true;
    item.dataset.activityId = String(activity.id);
    item.id = "activity-" + activity.id;
    render(activity, item);
    return item;
  }

  const renderings = {};

  function render(activity, item) {
    const id = String(activity.id);
    const turn = (renderings[id] || 0) + 1;
    renderings[id] = turn;
    const query = timeline.dataset.render === "home" ? "?on=home" : "";
    fetch("/activities/" + id + "/item/" + query, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 404) return null;  // deleted meanwhile, or no longer visible
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (renderings[id] !== turn) return;  // a later rendering of the same activity won
        if (html === null) { replace(item, null); return; }
        const holder = document.createElement("template");
        holder.innerHTML = html.trim();
        const rendered = holder.content.firstElementChild;
        if (item.classList.contains("pending")) rendered.classList.add("fresh");
        replace(item, rendered);
      })
      .catch(function () {
        // The server could not be asked: the activity still shows, drawn from the event.
        if (renderings[id] === turn && item.classList.contains("pending")) replace(item, build(activity));
      });
  }

  function replace(item, rendered) {
    const queued = waiting.indexOf(item);
    if (queued >= 0) {
      if (rendered) waiting[queued] = rendered; else waiting.splice(queued, 1);
      updateMarker();
      return;
    }
    if (!rendered) { item.remove(); return; }
    item.replaceWith(rendered);
    // compose.js gives the new reply box its @mention completion.
    rendered.dispatchEvent(new CustomEvent("tidings:rendered", { bubbles: true }));
  }

  function isTopInView() {
    return timeline.getBoundingClientRect().top >= -40;
  }

  function show(items) {
    const empty = timeline.querySelector("[data-empty]");
    if (empty && items.length) empty.remove();
    // A thread reads oldest first (data-append); a timeline newest first.
    items.forEach(function (item) {
      if (timeline.dataset.append) timeline.append(item); else timeline.prepend(item);
      if (!item.classList.contains("pending")) item.dispatchEvent(new CustomEvent("tidings:rendered", { bubbles: true }));
    });
  }

  function updateMarker() {
    if (!marker) return;
    marker.hidden = waiting.length === 0;
    marker.textContent = "↑ " + waiting.length + " new " + (waiting.length === 1 ? "update" : "updates");
  }

  function repliesOf(parentId) {
    let holder = timeline.querySelector('[data-thread="' + parentId + '"] .replies');
    const root = timeline.querySelector('#activity-' + parentId);
    if (!holder && root) {
      const li = document.createElement("li");
      li.className = "thread-replies";
      li.dataset.thread = String(parentId);
      holder = document.createElement("ol");
      holder.className = "replies";
      li.appendChild(holder);
      root.after(li);
    }
    return holder;
  }

  // A request moved on: every place the page shows it follows.
  function requestChanged(activity) {
    const id = String(activity.id);
    const places = document.querySelectorAll('[data-activity-id="' + id + '"], [data-request-id="' + id + '"]');
    places.forEach(function (place) {
      place.querySelectorAll("[data-status]").forEach(function (pill) {
        pill.textContent = STATUS_LABELS[activity.status] || activity.status;
        pill.classList.remove("open", "done", "overdue");
        pill.classList.add(activity.status === "resolved" ? "done" : (activity.is_overdue ? "overdue" : "open"));
      });
      place.querySelectorAll("[data-assignee]").forEach(function (cell) {
        cell.textContent = activity.assignee ? activity.assignee.display_name : "Unassigned";
      });
      place.querySelectorAll("[data-priority]").forEach(function (cell) { cell.textContent = capitalised(activity.priority); });
      if (activity.status === "resolved") {
        place.classList.add("resolved");
        place.querySelectorAll("[data-overdue], [data-claim]").forEach(function (el) { el.remove(); });
      }
    });
    if (activity.status === "resolved") {
      document.querySelectorAll('[data-open-request="' + id + '"]').forEach(function (el) { el.remove(); });
      const list = document.getElementById("open-requests");
      const count = document.getElementById("open-requests-count");
      if (list && count) count.textContent = String(list.querySelectorAll("[data-open-request]").length);
    }
  }

  function newRequestRow(activity) {
    const rows = document.querySelector("[data-requests]");
    const template = document.getElementById("request-row-template");
    if (!rows || !template || rows.querySelector('[data-request-id="' + activity.id + '"]')) return;
    if (rows.dataset.filtered) return;  // a filtered list cannot tell whether it belongs
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.requestId = String(activity.id);
    row.id = "request-" + activity.id;
    const time = row.querySelector("time");
    if (activity.due_at) { time.dateTime = activity.due_at; time.textContent = new Date(activity.due_at).toLocaleString(); }
    const subject = row.querySelector(".request-subject");
    subject.textContent = activity.subject;
    subject.href = "/requests/" + activity.id + "/";
    row.querySelector(".request-open").href = "/requests/" + activity.id + "/";
    const account = document.createElement("a");
    account.href = "/accounts/" + activity.account + "/";
    account.textContent = "Account #" + activity.account;
    row.querySelector(".request-account").appendChild(account);
    const priority = row.querySelector("[data-priority]");
    priority.textContent = capitalised(activity.priority);
    priority.classList.add("priority-" + activity.priority);
    row.querySelector("[data-status]").textContent = STATUS_LABELS[activity.status] || activity.status;
    row.querySelector("[data-assignee]").textContent = activity.assignee ? activity.assignee.display_name : "Unassigned";
    const empty = rows.querySelector("[data-empty]");
    if (empty) empty.remove();
    // The queue is ordered by due time: the new row goes before the first one due later.
    const later = Array.prototype.find.call(rows.querySelectorAll("tr[data-request-id]"), function (other) {
      const due = other.querySelector("time");
      return activity.due_at && (!due || !due.dateTime || new Date(due.dateTime) > new Date(activity.due_at));
    });
    if (later) later.before(row); else rows.appendChild(row);
    const count = document.getElementById("queue-count");
    if (count) count.textContent = String(rows.querySelectorAll("tr[data-request-id]").length);
  }

  function onRequests(frame) {
    const activity = frame.data;
    if (!activity || activity.kind !== "request") return;
    if (frame.type === "activity.created") newRequestRow(activity);
    else if (frame.type === "activity.updated") requestChanged(activity);
  }

  function wanted(activity) {
    const kind = timeline.dataset.onlyKind;
    const person = timeline.dataset.onlyPerson;
    const parent = timeline.dataset.onlyParent;
    if (parent && String(activity.parent) !== parent) return false;
    if (kind && activity.kind !== kind) return false;
    if (person && (!activity.author || activity.author.username !== person)) return false;
    // The ticker lists what the team's members did; work they were given by others (a manager's
    // task) moves their numbers and comes on the stream, but is not theirs to list.
    const members = timeline.dataset.members;
    if (members && (!activity.author || members.split(" ").indexOf(activity.author.username) < 0)) return false;
    return true;
  }

  function updated(activity) {
    if (activity.kind === "request") requestChanged(activity);
    const item = timeline.querySelector('[data-activity-id="' + activity.id + '"]');
    if (!item) return;
    // Rendered afresh (likes, facts, the "edited" link), unless the reader is typing in it.
    if (timeline.dataset.render && !item.querySelector("details[open]") && !item.contains(document.activeElement)) {
      render(activity, item);
      return;
    }
    const text = item.querySelector(".activity-text");
    if (text) text.textContent = activity.body;
    const subject = item.querySelector(".activity-subject");
    if (subject) subject.textContent = activity.subject;
    const meta = item.querySelector(".activity-meta");
    if (activity.is_edited && meta && !meta.querySelector(".edited")) {
      const link = document.createElement("a");
      link.className = "muted edited";
      link.href = "/activities/" + activity.id + "/history/";
      link.textContent = "edited";
      meta.appendChild(link);
    }
  }

  function removed(data) {
    const item = timeline.querySelector('[data-activity-id="' + data.id + '"]');
    if (item) item.remove();
    const thread = timeline.querySelector('[data-thread="' + data.id + '"]');
    if (thread) thread.remove();
  }

  function arrived(activity) {
    const id = String(activity.id);
    if (timeline.querySelector('[data-activity-id="' + id + '"]')) return;
    if (waiting.some(function (item) { return item.dataset.activityId === id; })) return;
    if (!wanted(activity)) return;
    const item = timeline.dataset.render ? placeholder(activity) : build(activity);
    if (activity.parent && !timeline.dataset.flat) {
      const holder = repliesOf(activity.parent);
      if (holder) { item.classList.add("reply"); holder.appendChild(item); }
      return;
    }
    if (isTopInView() || !marker) { show([item]); return; }
    waiting.push(item);
    updateMarker();
  }

  if (marker) {
    marker.addEventListener("click", function () {
      show(waiting.splice(0));
      updateMarker();
      timeline.scrollIntoView({ behavior: "smooth", block: "start" });
    });
    window.addEventListener("scroll", function () {
      if (waiting.length && isTopInView()) { show(waiting.splice(0)); updateMarker(); }
    }, { passive: true });
  }

  function showViewers(viewers) {
    if (!viewersBox) return;
    const others = viewers.filter(function (person) { return String(person.id) !== me; });
    viewersBox.hidden = others.length === 0;
    const names = viewersBox.querySelector(".viewer-names");
    names.textContent = others.map(function (person) { return person.display_name; }).join(", ");
  }

  function setUnread(count) {
    if (!badge) return;
    badge.dataset.unread = String(count);
    badge.textContent = String(count);
    badge.hidden = count === 0;
    const markAll = document.querySelector("[data-mark-all]");
    if (markAll) markAll.disabled = count === 0;
  }

  function noticed(data) {
    if (!inbox || inbox.querySelector('[data-notification-id="' + data.id + '"]')) return;
    const item = document.createElement("li");
    item.className = "inbox-item unread";
    item.dataset.notificationId = String(data.id);
    // Opening it marks it read, as for a rendered one: a POST form (its CSRF token from the
    // page's template) to /notifications/<id>/open/.
    const template = document.getElementById("inbox-item-template");
    const form = template ? template.content.firstElementChild.cloneNode(true) : null;
    const link = form ? form.querySelector("button") : document.createElement("a");
    if (form) form.action = "/notifications/" + data.id + "/open/"; else link.href = data.url;
    link.className = "inbox-open";
    [["inbox-kind", data.kind.replace(/_/g, " ")], ["inbox-title", data.title], ["muted", "just now"]].forEach(function (part) {
      const span = document.createElement("span");
      span.className = part[0];
      span.textContent = part[1];
      link.appendChild(span);
    });
    item.appendChild(form || link);
    const empty = inbox.querySelector("[data-empty]");
    if (empty) empty.remove();
    inbox.prepend(item);
  }

  function onNotification(frame) {
    if (frame.type === "resync") {
      // Too far behind to replay: start again from now and read the count afresh.
      cursors.notifications = null;
      fetch("/api/v1/notifications/?unread=1", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (page) { if (page) setUnread(page.unread); })
        .catch(function () {});
      if (currentSocket) currentSocket.send(JSON.stringify({ op: "subscribe", stream: "notifications", since: null }));
      return;
    }
    if (frame.type === "notification.created") noticed(frame.data);
    if (frame.type === "notification.read" && inbox) {
      inbox.querySelectorAll(".inbox-item.unread").forEach(function (item) {
        if (frame.data.all || frame.data.ids.indexOf(Number(item.dataset.notificationId)) >= 0) item.classList.remove("unread");
      });
    }
    if (frame.data && typeof frame.data.unread === "number") setUnread(frame.data.unread);
  }

  // The dashboard's tables follow the team's stream by asking the server again (not by counting
  // in the browser): a second's wait gathers a burst of events into one fetch, and a fetch
  // never overlaps another; events during one bring one more.
  const panels = document.querySelector("[data-panels]");
  let panelsTimer = null;
  let panelsBusy = false;
  let panelsAgain = false;

  function markChanged(fresh, old) {
    fresh.querySelectorAll("tr[data-person]").forEach(function (row) {
      const before = old.querySelector('tr[data-person="' + row.dataset.person + '"]');
      if (!before) return;
      Array.prototype.forEach.call(row.cells, function (cell, index) {
        const was = before.cells[index];
        if (was && was.textContent !== cell.textContent) cell.classList.add("changed");
      });
    });
  }

  function refreshPanels() {
    panelsTimer = null;
    if (panelsBusy) { panelsAgain = true; return; }
    panelsBusy = true;
    fetch(panels.dataset.panels, { credentials: "same-origin", headers: { Accept: "text/html" }, redirect: "error" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        const fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("section[id^='panel-']").forEach(function (section) {
          const old = document.getElementById(section.id);
          if (!old) return;
          markChanged(section, old);
          old.replaceWith(document.importNode(section, true));
        });
        panels.dataset.refreshed = String(Number(panels.dataset.refreshed || 0) + 1);
      })
      .catch(function () {})
      .then(function () {
        panelsBusy = false;
        if (panelsAgain) { panelsAgain = false; panelsMoved(); }
      });
  }

  function panelsMoved() {
    if (!panels || panelsTimer) return;
    panelsTimer = window.setTimeout(refreshPanels, 1000);
  }

  function onMessage(message) {
    let frame;
    try { frame = JSON.parse(message.data); } catch (e) { return; }
    if (frame.type === "subscribed") { attempt = 0; setStatus("online"); }
    if (frame.stream && frame.cursor && frame.stream in cursors) cursors[frame.stream] = frame.cursor;
    if (frame.stream === "notifications") { onNotification(frame); return; }
    if (!timeline || (frame.stream && frame.stream !== stream)) return;
    if (stream === "requests") { onRequests(frame); if (frame.type === "resync") window.location.reload(); return; }
    if (panels && /^activity\./.test(frame.type || "")) panelsMoved();
    if (frame.type === "activity.created") arrived(frame.data);
    else if (frame.type === "activity.updated") updated(frame.data);
    else if (frame.type === "activity.deleted") removed(frame.data);
    else if (frame.type === "presence.changed") showViewers(frame.data.viewers);
    else if (frame.type === "resync") window.location.reload();
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/");
    currentSocket = socket;
    setStatus("connecting");
    socket.addEventListener("open", function () {
      // The backoff starts over once a subscription is answered, not at "open": the server
      // accepts a socket it then closes (4503 while its database is away), and resetting here
      // retried every second for as long as the outage lasted.
      if (!timeline && !bell) attempt = 0;
      if (timeline) socket.send(JSON.stringify({ op: "subscribe", stream: stream, since: cursors[stream], presence: Boolean(viewersBox) }));
      if (bell) socket.send(JSON.stringify({ op: "subscribe", stream: "notifications", since: cursors.notifications }));
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      setStatus("offline");
      showViewers([]);
      if (event.code === 4401) { window.location.href = "/login/?next=" + encodeURIComponent(window.location.pathname); return; }
      if (event.code === 4403) return;
      attempt += 1;
      const ceiling = Math.min(30000, 500 * Math.pow(2, attempt));
      window.setTimeout(connect, ceiling / 2 + Math.random() * ceiling / 2);
    });
  }

  connect();
})();
