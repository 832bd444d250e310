// Ask before destructive form submissions marked with data-confirm.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The composer: a live count per chosen channel (counted by the server with each network's own rule,
// so the counter and the check at "Schedule" never disagree), a preview per channel, and autosave.
(function composer() {
  const form = document.getElementById("composer");
  if (!form) return;
  const text = form.querySelector('textarea[name="text"]');
  const boxes = () => Array.from(form.querySelectorAll('input[name="channels"]'));
  const chosen = () => boxes().filter((b) => b.checked).map((b) => b.value);
  const overrideOf = (id) => form.querySelector(`textarea[name="override-${id}"]`);
  const previews = document.getElementById("previews");
  let pending = null;

  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(count, 250);
  }

  async function count() {
    const overrides = {};
    for (const id of chosen()) {
      const own = overrideOf(id);
      if (own && own.value.trim()) overrides[id] = own.value;
    }
    const response = await fetch(form.dataset.countUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify({ text: text.value, channels: chosen(), overrides }),
    });
    if (!response.ok) return;
    const counts = await response.json();
    for (const el of form.querySelectorAll("[data-counter-for]")) el.textContent = "";
    previews.replaceChildren();
    document.getElementById("previews-empty").hidden = counts.length > 0;
    for (const c of counts) {
      const el = form.querySelector(`[data-counter-for="${c.channel_id}"]`);
      if (el) {
        el.textContent = `${c.length} / ${c.limit}` + (c.over ? ` — ${c.length - c.limit} over ${c.network}'s limit` : "");
        el.classList.toggle("over", c.over);
      }
      previews.append(preview(c));
    }
  }

  const thread = form.querySelector('textarea[name="thread"]');
  function threadParts() {
    return thread.value.split(/^\s*---\s*$/m).map((p) => p.trim()).filter(Boolean);
  }

  function preview(c) {
    const card = document.createElement("article");
    card.className = "preview preview-" + c.network.toLowerCase().replace(/\W+/g, "-");
    const head = document.createElement("header");
    head.textContent = `${c.network} · @${c.handle}`;
    const body = document.createElement("p");
    body.className = "post-text";
    const own = overrideOf(c.channel_id);
    body.textContent = own && own.value.trim() ? own.value : text.value;
    const foot = document.createElement("footer");
    foot.className = c.over ? "error" : "muted";
    foot.textContent = `${c.length} of ${c.limit}` + (c.override ? " · own text" : "");
    card.append(head, body);
    const parts = threadParts();
    if (parts.length && c.supports_threads) {
      for (const [i, part] of parts.entries()) {
        const reply = document.createElement("p");
        reply.className = "post-text thread-part";
        reply.textContent = `${i + 2}/${parts.length + 1} ${part}`;
        card.append(reply);
      }
    } else if (parts.length) {
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = `${c.network} does not take threads: only the first post would go out, so scheduling refuses it.`;
      card.append(note);
    }
    card.append(foot);
    return card;
  }

  // Autosave: what is typed survives a closed tab or a crash, until it is saved or scheduled.
  const key = form.dataset.autosaveKey;
  const fields = () => Array.from(form.elements).filter((el) => el.name && el.name !== "csrf_token" && el.type !== "submit");
  function snapshot() {
    const data = {};
    for (const el of fields()) {
      if (el.type === "checkbox") data[`${el.name}=${el.value}`] = el.checked;
      else data[el.name] = el.value;
    }
    localStorage.setItem(key, JSON.stringify({ at: Date.now(), data }));
    document.getElementById("autosave-status").textContent = "Saved on this device as you type.";
  }
  function restore() {
    const saved = JSON.parse(localStorage.getItem(key) || "null");
    if (!saved || form.dataset.submitted) return;
    let changed = false;
    for (const el of fields()) {
      const value = el.type === "checkbox" ? saved.data[`${el.name}=${el.value}`] : saved.data[el.name];
      if (value === undefined) continue;
      if (el.type === "checkbox" ? el.checked !== value : el.value !== value) changed = true;
      if (el.type === "checkbox") el.checked = value;
      else el.value = value;
    }
    if (changed) document.getElementById("autosave-restored").hidden = false;
  }
  document.getElementById("autosave-discard").addEventListener("click", () => {
    localStorage.removeItem(key);
    window.location.reload();
  });
  form.addEventListener("submit", () => localStorage.removeItem(key));

  // The time is entered in the chosen channels' own zone when they share one, else the workspace's.
  const hint = document.getElementById("zone-hint");
  function showZone() {
    const zones = new Set(boxes().filter((b) => b.checked).map((b) => b.dataset.zone));
    const own = zones.size === 1 ? [...zones][0] : "";
    document.getElementById("zone-name").textContent = own || hint.dataset.workspaceZone;
    document.getElementById("zone-source").textContent = own
      ? "(the chosen channels' own zone)"
      : "(the workspace's zone; change it in Settings)";
  }
  form.addEventListener("change", showZone);

  restore();
  showZone();
  form.addEventListener("input", () => {
    snapshot();
    refresh();
  });
  form.addEventListener("change", refresh);
  count();
})();

// The calendar: drag a post to another day to move it there at the same local time.
(function calendar() {
  const grid = document.querySelector("[data-calendar]");
  if (!grid) return;
  const status = document.getElementById("calendar-status");
  grid.addEventListener("dragstart", (event) => {
    const item = event.target.closest("[data-move-url]");
    if (!item) return;
    event.dataTransfer.setData("text/plain", item.dataset.moveUrl + "\n" + item.dataset.time);
    event.dataTransfer.effectAllowed = "move";
  });
  grid.addEventListener("dragover", (event) => {
    if (event.target.closest("[data-date]")) event.preventDefault();
  });
  grid.addEventListener("drop", async (event) => {
    const day = event.target.closest("[data-date]");
    if (!day) return;
    event.preventDefault();
    const [url, time] = event.dataTransfer.getData("text/plain").split("\n");
    if (!url) return;
    const body = new URLSearchParams({ csrf_token: csrfToken(), date: day.dataset.date, time });
    const response = await fetch(url, { method: "POST", body, headers: { Accept: "application/json" } });
    const result = await response.json().catch(() => ({ message: "The move failed. Reload and try again." }));
    if (response.ok) {
      window.location.reload();
    } else {
      status.textContent = result.message;
      status.hidden = false;
    }
  });
})();

// The keyboard way to move a post: "Move" opens a dialog (date and time) instead of the move page.
(function moveDialog() {
  const dialog = document.getElementById("move-dialog");
  if (!dialog || !dialog.showModal) return; // without <dialog>, the link opens the move page
  const form = document.getElementById("move-dialog-form");
  let opener = null;
  document.addEventListener("click", (event) => {
    const link = event.target.closest(".move-link");
    if (!link) return;
    event.preventDefault();
    opener = link;
    form.action = link.href;
    form.elements.date.value = link.dataset.date;
    form.elements.time.value = link.dataset.time;
    document.getElementById("move-dialog-post").textContent = link.dataset.title;
    dialog.showModal();
    form.elements.date.focus();
  });
  document.getElementById("move-dialog-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener && opener.focus());
})();
