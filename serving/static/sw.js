// STJ's service worker: the app shell from cache when the server can't be reached; the browser runtime and
// the served model cached as they pass (a model version's URL never changes). Predictions (POST) are never
// cached: when they fail, the page classifies in the browser.
const SHELL = "stj-shell-v1", FILES = "stj-files-v1";
const SHELL_URLS = [
  "/", "/offline", "/manifest.webmanifest", "/static/style.css", "/static/nav.js", "/static/app.js",
  "/static/local.js", "/static/icon.svg", "/static/icons/icon-192.png", "/static/examples/saree.jpg",
  "/static/examples/trousers.jpg", "/static/examples/jeans.jpg", "/static/vendor/onnxruntime-web/ort.wasm.min.js",
];
const KEEP = [/^\/static\/vendor\//, /^\/browser-model\/[^/]+\/[^/]+\/model\.onnx$/];  // immutable: cache first

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_URLS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (![SHELL, FILES].includes(name)) await caches.delete(name);
    await self.clients.claim();
  })());
});

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) (await caches.open(FILES)).put(request, response.clone());
  return response;
}

async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok) (await caches.open(SHELL)).put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await caches.match(request, { ignoreSearch: request.mode === "navigate" });
    if (cached) return cached;
    if (request.mode === "navigate") return caches.match("/offline");
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;  // predictions go to the server
  if (url.pathname.startsWith("/api/") || url.pathname === "/metrics") return;  // private or live: never cached
  event.respondWith(KEEP.some((re) => re.test(url.pathname)) ? cacheFirst(event.request) : networkFirst(event.request));
});
