// Swagger UI for roomtemp: loads openapi.json next to this page and sends requests to the same
// base the page is served from (so /api/docs talks to /api/..., /docs to /...).
(function () {
  "use strict";
  var page = window.location.pathname;
  var base = page.replace(/docs\/?$/, "");
  var specUrl = new URL("openapi.json", window.location.origin + base).toString();
  fetch(specUrl)
    .then(function (response) {
      if (!response.ok) throw new Error("openapi.json answered " + response.status);
      return response.json();
    })
    .then(function (spec) {
      spec.servers = [{ url: window.location.origin + base.replace(/\/$/, "") }];
      window.ui = SwaggerUIBundle({
        spec: spec,
        dom_id: "#swagger-ui",
        deepLinking: true,
        persistAuthorization: true,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
      });
    })
    .catch(function (error) {
      document.getElementById("swagger-ui").textContent = "Could not load the API description: " + error;
    });
})();
