// gradebook's own script. The pages work without it; it adds live updates
// (server-sent events from /events) to pages that have a [data-live] part.
// No inline script anywhere: the content security policy forbids it.
"use strict";

(function () {
  function refresh(part) {
    fetch(part.dataset.live, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        part.innerHTML = html;
        part.dispatchEvent(new CustomEvent("gradebook:updated", { bubbles: true }));
      })
      .catch(function () { /* the next event or a reload will do */ });
  }

  function live() {
    var parts = document.querySelectorAll("[data-live]");
    if (parts.length === 0 || !window.EventSource) return;
    var source = new EventSource("/events");
    var pending = null;
    function changed() {
      // Several events in a burst (a whole column published): one refresh.
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        parts.forEach(refresh);
      }, 150);
    }
    ["grade.published", "grade.added", "grade.updated", "grade.unpublished",
     "grade.deleted", "promotion.locked", "promotion.unlocked"].forEach(function (kind) {
      source.addEventListener(kind, changed);
    });
    // After a lag the browser reconnects by itself: catch up once.
    source.addEventListener("lagged", changed);
    source.addEventListener("open", function () { document.body.dataset.live = "on"; });
  }

  document.addEventListener("DOMContentLoaded", live);
})();
