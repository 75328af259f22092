// The API reference: Swagger UI over the gateway's own OpenAPI document, loading nothing from
// any other site (no validator badge, no fonts or scripts from a CDN).
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
