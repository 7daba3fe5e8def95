// Conveyor's small page script: times in the viewer's zone (UTC on hover), and the
// launchpad's bookkeeping. Runs on every page and on every fragment htmx swaps in.
(function () {
  "use strict";

  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  function utcText(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function localText(d, style) {
    var now = new Date();
    var time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (style === "time") return time;
    var sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() &&
      d.getDate() === now.getDate();
    if (sameDay && style !== "full") return time;
    var date = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    return date + " " + time;
  }

  // <time datetime="ISO" data-style="time|full"> gets the local time as its text and UTC as its title.
  function formatTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (el.dataset.local === "1") continue;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      el.textContent = localText(d, el.dataset.style);
      el.title = utcText(d);
      el.dataset.local = "1";
    }
  }

  // The launchpad sends what the user edited last: the form's fields or the editor's text.
  function trackSource(root) {
    var forms = (root || document).querySelectorAll("form[data-launchpad]");
    for (var i = 0; i < forms.length; i++) {
      var form = forms[i];
      if (form.dataset.tracked === "1") continue;
      form.dataset.tracked = "1";
      form.addEventListener("input", function (event) {
        var source = this.querySelector("input[name=source]");
        if (!source || !event.target.name || event.target.name === "source") return;
        if (event.target.name === "config_text") source.value = "editor";
        else if (event.target.name.indexOf("cfg.") === 0) source.value = "form";
      });
    }
  }

  function init(root) {
    formatTimes(root);
    trackSource(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
  window.conveyorFormatTimes = formatTimes;
})();

// A followed log stays scrolled to its end, unless the reader scrolled up.
(function () {
  "use strict";
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var view = event.target.closest ? event.target.closest(".logs") : null;
    if (view) view.dataset.atEnd = view.scrollHeight - view.scrollTop - view.clientHeight < 40 ? "1" : "0";
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    var view = event.target.closest ? event.target.closest(".logs") : null;
    if (view && view.dataset.atEnd === "1") view.scrollTop = view.scrollHeight;
  });
  // The attempt ended: the page no longer says it follows it.
  document.addEventListener("htmx:sseClose", function () {
    var notes = document.querySelectorAll(".live-note");
    for (var i = 0; i < notes.length; i++) notes[i].remove();
  });
  document.addEventListener("DOMContentLoaded", function () {
    var view = document.querySelector(".logs");
    if (view) view.scrollTop = view.scrollHeight;
  });
})();

// Every request htmx makes carries the page's CSRF token (from <meta name="csrf-token">):
// the server refuses a state-changing request from a browser without it.
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && event.detail && event.detail.headers) {
      event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });
})();
