// gradebook's own script. The pages work without it; it adds live updates
// to pages that have a [data-live] part: it listens to /events (server-sent
// events fed by `watch`, only what the user may see) and, on each burst of
// events, fires `gradebook:changed` on the body; htmx then fetches the part
// again (hx-get on the part, hx-trigger="gradebook:changed from:body").
// No inline script anywhere: the content security policy forbids it.
"use strict";

(function () {
  function live() {
    if (!document.querySelector("[data-live]") || !window.EventSource) return;
    var source = new EventSource("/events");
    var pending = null;
    function changed() {
      // Several events in a burst (a whole column published): one refresh.
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        document.body.dispatchEvent(new CustomEvent("gradebook:changed"));
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
