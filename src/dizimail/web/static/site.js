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
