// dizimail's pages: the only script they run (the Content-Security-Policy allows no other, and no inline script).
// - [data-refresh="URL"][data-every="SECONDS"]: the element's content is fetched again from URL every SECONDS
//   (the dashboard, an import's progress), until [data-until] (a selector) matches inside it.
// - [data-confirm="TEXT"] on a form or a button: asks before submitting.
"use strict";

function refresh(element) {
  const url = element.dataset.refresh;
  const every = Math.max(0.2, parseFloat(element.dataset.every || "10")) * 1000;
  const until = element.dataset.until;
  async function tick() {
    if (until && element.querySelector(until)) {
      return;
    }
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.redirected) {  // the session ended: the whole page goes to the login
        window.location.reload();
        return;
      }
      if (response.ok) {
        const template = document.createElement("template");
        template.innerHTML = await response.text();  // our own escaped fragment, same origin
        element.replaceChildren(template.content);
      }
    } catch (error) {
      // offline for a moment: try again at the next tick
    }
    window.setTimeout(tick, every);
  }
  window.setTimeout(tick, every);
}

function confirmFirst(event) {
  const source = event.submitter && event.submitter.dataset.confirm ? event.submitter : event.target;
  const text = source.dataset.confirm;
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("form").forEach((form) => form.addEventListener("submit", confirmFirst));
});

// The compose form (webmail):
// - form[data-autosave="URL"][data-every="SECONDS"]: once changed, the form (without new files) is saved as a
//   draft every SECONDS; the answer's UID goes into draft_uid, so the next save replaces that draft, and the
//   kept attachments take their numbers in the new draft.
// - input[type=file][data-max]: the files' total size checked against the limit before anything is sent.
// - with files chosen, the form is sent by XMLHttpRequest to show the upload's progress in #upload-progress.
function autosave(form) {
  const every = Math.max(5, parseFloat(form.dataset.every || "30")) * 1000;
  const status = document.getElementById("autosaved");
  let dirty = false;
  let sending = false;
  form.addEventListener("input", () => { dirty = true; });
  form.addEventListener("submit", () => { sending = true; });
  async function tick() {
    if (dirty && !sending) {
      dirty = false;
      const data = new FormData(form);
      data.delete("attach");
      try {
        const response = await fetch(form.dataset.autosave, { method: "POST", body: data, credentials: "same-origin" });
        if (response.ok && !sending) {
          const answer = await response.json();
          form.elements.draft_uid.value = String(answer.uid);
          const boxes = Array.from(form.querySelectorAll("input[name=keep]"));
          boxes.filter((box) => !box.checked).forEach((box) => box.closest("label").remove());
          boxes.filter((box) => box.checked).forEach((box, i) => { box.value = String(answer.keep[i]); });
          if (status) {
            status.textContent = status.dataset.saved + " " + new Date().toLocaleTimeString();
          }
        } else {
          dirty = true;
        }
      } catch (error) {
        dirty = true;  // offline for a moment: the next tick tries again
      }
    }
    window.setTimeout(tick, every);
  }
  window.setTimeout(tick, every);
}

function sizeCheck(input) {
  input.addEventListener("change", () => {
    const total = Array.from(input.files).reduce((sum, file) => sum + file.size, 0);
    input.setCustomValidity(total > parseInt(input.dataset.max, 10) ? input.dataset.tooBig : "");
    input.reportValidity();
  });
}

function withProgress(form, bar) {
  form.addEventListener("submit", (event) => {
    const files = form.querySelector("input[type=file]");
    if (event.defaultPrevented || !files || files.files.length === 0) {
      return;  // nothing to upload: the browser sends the form as usual
    }
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.append(event.submitter.name, event.submitter.value);
    }
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    bar.hidden = false;
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        bar.value = Math.round(100 * progress.loaded / progress.total);
      }
    });
    request.addEventListener("load", () => {
      if (request.status < 400 && request.responseURL) {
        window.location.assign(request.responseURL);  // where the server sent us (the folder, or the draft)
      } else {
        document.open();  // the form again, with the server's reason
        document.write(request.responseText);
        document.close();
      }
    });
    request.addEventListener("error", () => { bar.hidden = true; });
    request.send(data);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-autosave]").forEach(autosave);
  document.querySelectorAll("input[type=file][data-max]").forEach(sizeCheck);
  const bar = document.getElementById("upload-progress");
  if (bar) {
    withProgress(bar.form || bar.closest("form"), bar);
  }
});

// [data-live="URL"]: the page listens to URL (server-sent events: "changed" whenever the user's mail changes,
// by this browser or any other client) and then fetches itself again, replacing each [data-live-part] element
// (by id) with its new version; the boxes checked stay checked.
function live(element) {
  let pending = null;
  async function update() {
    pending = null;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (!response.ok || response.redirected) {
        return;  // the message went, or the session ended: the next click shows it
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const checked = new Set(Array.from(document.querySelectorAll("input[name=uid]:checked"), (box) => box.value));
      document.querySelectorAll("[data-live-part][id]").forEach((part) => {
        const next = fresh.getElementById(part.id);
        if (next) {
          part.replaceChildren(...Array.from(next.childNodes).map((node) => document.adoptNode(node)));
        }
      });
      document.querySelectorAll("input[type=checkbox][name=uid]").forEach((box) => {
        if (checked.has(box.value)) {
          box.checked = true;
        }
      });
      document.dispatchEvent(new CustomEvent("mail:updated"));
    } catch (error) {
      // offline for a moment: the next change tries again
    }
  }
  const source = new EventSource(element.dataset.live);
  source.addEventListener("changed", () => {
    if (pending === null) {
      pending = window.setTimeout(update, 150);  // a burst of changes: one fetch
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(live);
});

// Webmail's keys and drag-and-drop ([data-keys] on a folder's list, or on a message page with its data-uid):
// j / k move through the list, o or Enter opens, x selects, r / a / f reply, reply to all, forward, # deletes
// (the selected messages, else the current one); rows dragged onto a folder of the list are moved there.
// Every change is the same POST /mail/act the buttons send.
function mailAct(folder, action, uids, target) {
  const form = document.getElementById("act");
  const body = new URLSearchParams({ csrf: form.elements.csrf.value, f: folder, action: action, target: target || "" });
  uids.forEach((uid) => body.append("uid", uid));
  return fetch("/mail/act", { method: "POST", body: body, credentials: "same-origin" });
}

function mailKeys(element) {
  const folder = element.dataset.folder;
  const page = element.dataset.uid;  // a message's page
  const rows = () => Array.from(element.querySelectorAll("tbody tr[data-uid]"));
  let current = -1;
  function show(index) {
    const all = rows();
    if (all.length === 0) {
      return;
    }
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("current", i === current));
    const link = all[current].querySelector("a");
    if (link) {
      link.focus();
    }
  }
  function chosen() {
    const checked = Array.from(element.querySelectorAll("input[name=uid]:checked"), (box) => box.value);
    if (page) {
      return [page];
    }
    return checked.length ? checked : (current >= 0 && rows()[current] ? [rows()[current].dataset.uid] : []);
  }
  const answer = { r: "reply", a: "all", f: "forward" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || target.isContentEditable ||
        ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) {
      return;
    }
    const one = chosen()[0];
    if (!page && (event.key === "j" || event.key === "k")) {
      show(current + (event.key === "j" ? 1 : -1));
    } else if (!page && (event.key === "o" || (event.key === "Enter" && target.tagName !== "A")) && one) {
      window.location.assign(rows()[current].querySelector("a").href);
    } else if (!page && event.key === "x" && current >= 0) {
      const box = rows()[current].querySelector("input[name=uid]");
      box.checked = !box.checked;
    } else if (answer[event.key] && one) {
      window.location.assign("/mail/compose?f=" + encodeURIComponent(folder) + "&" + answer[event.key] + "=" + one);
    } else if (event.key === "#" && one) {
      mailAct(folder, "delete", chosen()).then(() => {
        window.location.assign(page ? "/mail?f=" + encodeURIComponent(folder) : window.location.href);
      });
    } else {
      return;
    }
    event.preventDefault();
  });
  if (page) {
    return;
  }
  element.addEventListener("dragstart", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-uid]");
    if (!row) {
      return;
    }
    const box = row.querySelector("input[name=uid]");
    const checked = Array.from(element.querySelectorAll("input[name=uid]:checked"), (b) => b.value);
    const uids = box && box.checked && checked.length ? checked : [row.dataset.uid];
    event.dataTransfer.setData("application/x-dizimail-uids", JSON.stringify(uids));
    event.dataTransfer.effectAllowed = "move";
  });
  document.querySelectorAll("nav.folders").forEach((nav) => {
    nav.addEventListener("dragover", (event) => {
      const link = event.target.closest && event.target.closest("a[data-folder]");
      if (link && link.dataset.folder !== folder && event.dataTransfer.types.includes("application/x-dizimail-uids")) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
      }
    });
    nav.addEventListener("drop", (event) => {
      const link = event.target.closest && event.target.closest("a[data-folder]");
      const data = event.dataTransfer.getData("application/x-dizimail-uids");
      if (!link || !data) {
        return;
      }
      event.preventDefault();
      mailAct(folder, "move", JSON.parse(data), link.dataset.folder).then(() => window.location.reload());
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-keys]").forEach(mailKeys);
});

// input[data-complete="URL"]: as the user types an address field, what URL?q=WORD offers for the word being
// typed (after the last comma) shows in a list under it: the user's contacts, groups, the domain's directory.
// Arrow keys and Enter (or a click) put the choice in place of the word.
function completer(input) {
  const list = document.createElement("ul");
  list.className = "completions";
  list.setAttribute("role", "listbox");
  list.id = input.name + "-completions";
  list.hidden = true;
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.insertAdjacentElement("afterend", list);
  let chosen = -1;
  let asked = 0;
  const word = () => input.value.split(/[,，;；]/).pop().trim();
  function pick(value) {
    const parts = input.value.split(/[,，;；]/);
    parts.pop();
    input.value = [...parts.map((p) => p.trim()).filter((p) => p), value].join(", ") + ", ";
    list.hidden = true;
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function mark(index) {
    const items = Array.from(list.children);
    chosen = (index + items.length) % Math.max(items.length, 1);
    items.forEach((item, i) => item.setAttribute("aria-selected", String(i === chosen)));
  }
  input.addEventListener("input", async (event) => {
    if (!event.isTrusted) {
      return;
    }
    const text = word();
    const mine = ++asked;
    if (text.length < 1) {
      list.hidden = true;
      return;
    }
    try {
      const response = await fetch(input.dataset.complete + "?q=" + encodeURIComponent(text), { credentials: "same-origin" });
      const found = response.ok ? await response.json() : [];
      if (mine !== asked) {
        return;  // a later keystroke asked again
      }
      list.replaceChildren(...found.map((entry) => {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.textContent = entry.label;  // text, never markup
        item.dataset.value = entry.value;
        item.dataset.source = entry.source;
        item.addEventListener("mousedown", (e) => { e.preventDefault(); pick(entry.value); });
        return item;
      }));
      list.hidden = found.length === 0;
      chosen = -1;
    } catch (error) {
      list.hidden = true;
    }
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden) {
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      mark(chosen + (event.key === "ArrowDown" ? 1 : -1));
      event.preventDefault();
    } else if (event.key === "Enter" && chosen >= 0) {
      pick(list.children[chosen].dataset.value);
      event.preventDefault();
    } else if (event.key === "Escape") {
      list.hidden = true;
    }
  });
  input.addEventListener("blur", () => { window.setTimeout(() => { list.hidden = true; }, 100); });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[data-complete]").forEach(completer);
});

// The compose form's rich text: [data-rich-toggle] switches between the plain textarea and #editor (a
// contenteditable box; its buttons run the browser's own editing commands). The HTML goes in the hidden
// textarea "html" (the server cleans it and makes the text/plain part); rich=1 says which one counts.
function richText(form) {
  const tools = form.querySelector(".editor-tools");
  const editor = form.querySelector("#editor");
  const plain = form.elements.body;
  const html = form.elements.html;
  if (!tools || !editor) {
    return;
  }
  tools.hidden = false;
  const toggle = tools.querySelector("[data-rich-toggle]");
  const only = tools.querySelector("[data-rich-only]");
  function show(rich) {
    form.elements.rich.value = rich ? "1" : "0";
    toggle.setAttribute("aria-pressed", String(rich));
    editor.hidden = !rich;
    plain.closest("label").hidden = rich;
    plain.required = false;
    only.hidden = !rich;
  }
  function textToHtml(text) {
    const box = document.createElement("div");
    text.split(/\n{2,}/).forEach((block) => {
      const p = document.createElement("p");
      block.split("\n").forEach((line, i) => {
        if (i) {
          p.appendChild(document.createElement("br"));
        }
        p.appendChild(document.createTextNode(line));
      });
      box.appendChild(p);
    });
    return box.innerHTML;
  }
  if (html.value.trim()) {
    editor.innerHTML = html.value;  // a draft written in rich text, as the server cleaned it
  }
  show(form.elements.rich.value === "1");
  toggle.addEventListener("click", () => {
    const rich = form.elements.rich.value !== "1";
    if (rich) {
      editor.innerHTML = textToHtml(plain.value);
    } else {
      plain.value = editor.innerText;
    }
    show(rich);
    form.dispatchEvent(new Event("input"));
  });
  tools.querySelectorAll("[data-command]").forEach((button) => {
    button.addEventListener("click", () => {
      let value = button.dataset.value || null;
      if (button.dataset.ask) {
        value = window.prompt(button.dataset.ask, "https://");
        if (!value || !/^(https?:|mailto:)/i.test(value)) {
          return;
        }
      }
      editor.focus();
      document.execCommand(button.dataset.command, false, value);
      form.dispatchEvent(new Event("input"));
    });
  });
  editor.addEventListener("input", () => form.dispatchEvent(new Event("input")));
  const sync = () => {
    if (form.elements.rich.value === "1") {
      html.value = editor.innerHTML;
      plain.value = editor.innerText;
    }
  };
  form.addEventListener("formdata", sync);
  form.addEventListener("submit", sync, true);
}

document.addEventListener("DOMContentLoaded", () => {
  const compose = document.getElementById("compose");
  if (compose) {
    richText(compose);
  }
});
