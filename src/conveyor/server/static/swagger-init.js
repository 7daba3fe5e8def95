// Starts Swagger UI on /docs: a file, not an inline script, so the page's
// Content-Security-Policy (script-src 'self') holds. "Try it out" sends the
// page's CSRF token, as Conveyor's own pages do.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      if (meta && request.method && request.method.toUpperCase() !== "GET") {
        request.headers["X-CSRF-Token"] = meta.getAttribute("content");
      }
      return request;
    }
  });
})();
