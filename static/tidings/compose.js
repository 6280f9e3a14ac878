/* Tidings composer helpers: @mention completion, a warning before posting when a mentioned person
 * cannot see the account, and confirmation before destructive buttons. No inline script (CSP). */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  const cache = new Map();

  function suggest(accountId, prefix) {
    const key = accountId + ":" + prefix.toLowerCase();
    if (!cache.has(key)) {
      const url = "/api/v1/accounts/" + accountId + "/mentions/?q=" + encodeURIComponent(prefix);
      cache.set(key, fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .catch(function () { return []; }));
    }
    return cache.get(key);
  }

  function mentionAt(textarea) {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = /(^|[^\w@.])@([\w.+-]*)$/.exec(before);
    return match ? { prefix: match[2], start: before.length - match[2].length - 1 } : null;
  }

  function closeMenu(textarea) {
    if (textarea._menu) { textarea._menu.remove(); textarea._menu = null; }
  }

  function openMenu(textarea, people, at) {
    closeMenu(textarea);
    if (!people.length) return;
    const menu = document.createElement("ul");
    menu.className = "mention-menu";
    menu.setAttribute("role", "listbox");
    people.forEach(function (person, index) {
      const item = document.createElement("li");
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", index === 0 ? "true" : "false");
      item.textContent = person.display_name + " (@" + person.username + ")";
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        insert(textarea, at, person.username);
      });
      menu.appendChild(item);
    });
    const rect = textarea.getBoundingClientRect();
    menu.style.left = rect.left + window.scrollX + "px";
    menu.style.top = rect.bottom + window.scrollY + "px";
    document.body.appendChild(menu);
    textarea._menu = menu;
    textarea._people = people;
    textarea._at = at;
  }

  function insert(textarea, at, username) {
    const value = textarea.value;
    const end = textarea.selectionStart;
    textarea.value = value.slice(0, at.start) + "@" + username + " " + value.slice(end);
    const caret = at.start + username.length + 2;
    textarea.setSelectionRange(caret, caret);
    closeMenu(textarea);
    textarea.focus();
    checkMentions(textarea);
  }

  function checkMentions(textarea) {
    const accountId = textarea.dataset.account;
    const warning = textarea.form && textarea.form.querySelector(".mention-warning");
    if (!warning) return;
    const names = Array.from(new Set((textarea.value.match(/(?:^|[^\w@.])@([\w.+-]+)/g) || [])
      .map(function (m) { return m.replace(/^[^@]*@/, "").replace(/\.$/, "").toLowerCase(); })));
    Promise.all(names.map(function (name) {
      return suggest(accountId, name).then(function (people) {
        return people.some(function (p) { return p.username.toLowerCase() === name; }) ? null : name;
      });
    })).then(function (outsiders) {
      const missing = outsiders.filter(Boolean);
      warning.hidden = missing.length === 0;
      warning.textContent = missing.map(function (n) { return "@" + n; }).join(", ") +
        (missing.length === 1 ? " cannot" : " cannot") +
        " see this account and will not be notified.";
    });
  }

  function wireMentions(textarea) {
    let timer = null;
    textarea.addEventListener("input", function () {
      const at = mentionAt(textarea);
      if (at) {
        suggest(textarea.dataset.account, at.prefix).then(function (people) {
          // Answers come back in any order: show only the one for what is typed now.
          const now = mentionAt(textarea);
          if (now && now.prefix === at.prefix) openMenu(textarea, people, at);
        });
      } else {
        closeMenu(textarea);
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { checkMentions(textarea); }, 300);
    });
    textarea.addEventListener("keydown", function (event) {
      if (!textarea._menu) return;
      const items = Array.from(textarea._menu.children);
      let index = items.findIndex(function (i) { return i.getAttribute("aria-selected") === "true"; });
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        items[index].setAttribute("aria-selected", "false");
        index = (index + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items[index].setAttribute("aria-selected", "true");
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        insert(textarea, textarea._at, textarea._people[index].username);
      } else if (event.key === "Escape") {
        closeMenu(textarea);
      }
    });
    textarea.addEventListener("blur", function () { window.setTimeout(function () { closeMenu(textarea); }, 150); });
  }

  document.querySelectorAll("textarea.mentionable[data-account]").forEach(wireMentions);
  // An activity live.js rendered after the page loaded brings its own reply box.
  document.addEventListener("tidings:rendered", function (event) {
    event.target.querySelectorAll("textarea.mentionable[data-account]").forEach(wireMentions);
  });
})();
