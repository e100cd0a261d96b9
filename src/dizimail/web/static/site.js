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
