// Progressive enhancement only: every page works without this script.
// Live parts ([data-live]) are fetched again when the host reports a change
// (server-sent events); a followed log or build ([data-follow]) every two seconds;
// the deploy dialog's compatibility table follows its choices; [data-copy]
// buttons copy a field. Errors (script, console, failed loads) are kept for
// the browser tests.
(function () {
  "use strict";
  window.__uiErrors = [];
  window.addEventListener("error", function (e) {
    // A script error, or a stylesheet, script or image that failed to load.
    window.__uiErrors.push(e.message ? String(e.message) : "failed to load " + (e.target.src || e.target.href));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { window.__uiErrors.push(String(e.reason)); });
  var consoleError = console.error;
  console.error = function () {
    window.__uiErrors.push(Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };

  function swap(ids) {
    return fetch(location.href, { credentials: "same-origin" }).then(function (answer) {
      if (!answer.ok) { return; }
      return answer.text().then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var fresh = page.getElementById(id), here = document.getElementById(id);
          if (fresh && here) { here.innerHTML = fresh.innerHTML; }
        });
      });
    });
  }

  var live = Array.prototype.map.call(document.querySelectorAll("[data-live]"), function (el) { return el.id; });
  if (live.length && window.EventSource) {
    var due = null;
    var refresh = function () {
      if (due) { return; }
      due = setTimeout(function () { due = null; swap(live); }, 150);
    };
    var source = new EventSource("/admin/stream");
    ["deployment.state", "deployment.deleted", "deployment.restarted", "deployment.built", "health.failing",
     "health.recovered", "approval.requested", "approval.approved", "approval.rejected", "approval.expired"]
      .forEach(function (kind) { source.addEventListener(kind, refresh); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Asked afresh each time: a live swap may start or end a follow (a pull begins, a build ends).
  setInterval(function () {
    var followed = Array.prototype.map.call(document.querySelectorAll("[data-follow]"), function (el) { return el.id; });
    if (followed.length) { swap(followed); }
  }, 2000);

  var compat = document.getElementById("compat");
  if (compat) {
    document.querySelectorAll("select[data-compat]").forEach(function (select) {
      select.addEventListener("change", function () {
        var q = "profile=" + encodeURIComponent(document.getElementById("profile").value) +
                "&backend=" + encodeURIComponent(document.getElementById("backend").value);
        fetch("/admin/compatibility?" + q, { credentials: "same-origin" })
          .then(function (answer) { return answer.ok ? answer.text() : ""; })
          .then(function (html) { if (html) { compat.innerHTML = html; } });
      });
    });
  }

  // Delegated: a live swap replaces the buttons, and listeners on them would go too.
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var field = document.querySelector(button.getAttribute("data-copy"));
    field.select();
    var url = new URL(field.value, location.href).href;
    if (navigator.clipboard) { navigator.clipboard.writeText(url).catch(function () {}); }
    button.textContent = "Copied";
  });
})();
