// Interactive API docs: swagger-ui (vendored from npm) on the server's own OpenAPI document.
document.getElementById("snippet").textContent =
  `curl -F image=@photo.jpg ${location.origin}/predict\n` +
  `curl -H "Authorization: Bearer $STJ_TOKEN" -F image=@photo.jpg "${location.origin}/predict?history=1"`;
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
