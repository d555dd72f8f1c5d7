// STJ page: load a photo (file, drop, paste, camera or example), shrink it, predict, occlude, explain.
const MAX_SIDE = 1500;
const photo = $("photo"), ctx = photo.getContext("2d");
let clean = null;          // canvas holding the photo without strokes
let drawing = false, last = null;
let keepHistory = false;   // signed in, or a server without accounts

function showError(message) { $("error").textContent = message || ""; }

function busy(message) {
  // progress while the server works; every action button waits
  $("busy").textContent = message || "";
  document.body.classList.toggle("waiting", !!message);
}

function showResults() {
  $("results").hidden = false;
  $("results").scrollIntoView({ behavior: "smooth", block: "start" });
}

const MODEL_TITLES = { stj: "saree · trousers · jeans", imagenet: "ImageNet, top 5 of 1000 classes" };

let stjClasses = [];  // the served classifier's classes, for "this doesn't look like ..."

function anyOf(names) {
  // "saree, trousers or jeans"
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : names.join("");
}

async function metadata() {
  try {
    const meta = await (await fetch("/metadata")).json();
    $("model").textContent = `${meta.model.name} v${meta.model.version}`;
    stjClasses = meta.classes;
    const picker = $("model-picker");
    for (const [key, model] of Object.entries(meta.models || {})) {
      const option = document.createElement("option");
      option.value = key;
      option.textContent = `${MODEL_TITLES[key] || key} (${model.name} v${model.version})`;
      picker.appendChild(option);
    }
    if (meta.models && meta.models.stj) picker.value = "stj";  // STJ's own classes first (keys arrive sorted)
    $("picker").hidden = picker.options.length < 2;  // a choice only when several models are served
  } catch (e) { $("model").textContent = "offline: the model runs in your browser"; }
}

function chosenModel() { return $("model-picker").value || "stj"; }

function loadImage(source) {
  // draw `source` (an image or video frame) shrunk so its longest side is at most MAX_SIDE
  const w = source.videoWidth || source.naturalWidth || source.width;
  const h = source.videoHeight || source.naturalHeight || source.height;
  const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
  photo.width = Math.round(w * scale); photo.height = Math.round(h * scale);
  ctx.drawImage(source, 0, 0, photo.width, photo.height);
  clean = document.createElement("canvas");
  clean.width = photo.width; clean.height = photo.height;
  clean.getContext("2d").drawImage(photo, 0, 0);
  $("work").hidden = false; $("predict-occluded").disabled = true; $("explain").disabled = false;
  $("after").hidden = true; $("cam").hidden = true;
  showError("");
}

function openImage(url, revoke) {
  const img = new Image();
  img.onload = () => { loadImage(img); if (revoke) URL.revokeObjectURL(url); predict(false); };
  img.onerror = () => showError("That file is not an image this browser can open.");
  img.src = url;
}

function openFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) { showError("That file is not an image."); return; }
  openImage(URL.createObjectURL(file), true);
}

$("file").addEventListener("change", (event) => openFile(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault(); drop.classList.remove("over");
  openFile(event.dataTransfer.files[0]);
});
document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) openFile(item.getAsFile());
});
for (const example of document.querySelectorAll(".example")) {
  example.addEventListener("click", () => openImage(example.dataset.src, false));
}

$("camera-start").addEventListener("click", async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    $("video").srcObject = stream; $("camera").hidden = false;
  } catch (e) { showError("No camera available: " + e.message); }
});
$("capture").addEventListener("click", () => {
  const video = $("video");
  loadImage(video);
  video.srcObject.getTracks().forEach((t) => t.stop());
  $("camera").hidden = true;
  predict(false);
});

function toBlob(canvas) { return new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.92)); }

function renderChart(el, topK) {
  el.replaceChildren();
  for (const { label, probability } of topK) {
    const row = document.createElement("div");
    row.className = "bar"; row.dataset.label = label; row.dataset.probability = probability;
    const name = document.createElement("span"), track = document.createElement("div");
    const fill = document.createElement("div"), pct = document.createElement("span");
    name.textContent = label;  // labels are data, never markup
    track.className = "track"; fill.className = "fill"; fill.style.width = `${(probability * 100).toFixed(1)}%`;
    pct.className = "pct"; pct.textContent = `${(probability * 100).toFixed(1)}%`;
    track.appendChild(fill); row.append(name, track, pct);
    el.appendChild(row);
  }
}

async function send(canvas, path, extra) {
  const form = new FormData();
  form.append("image", await toBlob(canvas), "photo.jpg");
  return fetch(path + (extra || ""), { method: "POST", body: form });
}

async function askServer(canvas) {
  // [ok, body] from the server, or null when it can't be reached
  try {
    const response = await send(canvas, "/predict", `?model=${chosenModel()}${keepHistory ? "&history=1" : ""}`);
    return [response.ok, await response.json()];
  } catch (e) { return null; }
}

async function askBrowser(canvas) {
  if (chosenModel() !== "stj") throw new Error("Offline, only STJ's own model runs in the browser.");
  return stjLocal.classify(canvas);
}

async function predict(occluded) {
  const canvas = occluded ? photo : clean;
  busy("Predicting…");
  let answer = await askServer(canvas), where = "server";
  if (answer === null) {
    busy("The server can't be reached: classifying in your browser…");
    try { answer = [true, await askBrowser(canvas)]; where = "browser"; }
    catch (e) { busy(); showError(`The server can't be reached, and the browser model is not available: ${e.message}`); return; }
  }
  busy();
  const [ok, body] = answer;
  if (!ok) { showError(body.error.message); return; }
  showError("");
  const suffix = occluded ? "-after" : "";
  const percent = `${(body.confidence * 100).toFixed(1)}%`;
  const unlike = body.in_distribution === false;  // the model's "none of these": unlike every training photo
  $("label" + suffix).textContent = unlike ? `This doesn't look like ${anyOf(stjClasses)}` : body.label;
  $("label" + suffix).dataset.inDistribution = String(body.in_distribution ?? "unknown");
  $("confidence" + suffix).textContent = unlike ? `(closest: ${body.label}, ${percent})` : percent;
  renderChart($("chart" + suffix), body.top_k);
  $((occluded ? "after" : "before") + "-img").src = canvas.toDataURL("image/jpeg", 0.85);
  $("used-version").textContent = `${body.model.name} v${body.model.version}`;
  $("answered-by").textContent = where === "server" ? "Answered by the server."
    : "Answered in your browser: the server can't be reached (nothing was kept in the history). The browser "
      + "model cannot tell whether the photo shows a garment at all: it names the closest class.";
  $("answered-by").dataset.where = where;
  $("api-snippet").textContent = `curl -F image=@photo.jpg "${location.origin}/predict?model=${chosenModel()}"`;
  if (occluded) $("after").hidden = false;
  if (!occluded) offerCorrection(where === "server" && chosenModel() === "stj" ? body : null);
  showResults();
}

function offerCorrection(body) {
  // "Wrong? Pick the right class": only for the server's answers of STJ's own model (they have an id)
  const form = $("correction");
  form.hidden = !(body && body.prediction_id);
  if (form.hidden) return;
  form.dataset.predictionId = body.prediction_id;
  $("correction-status").textContent = "";
  const unlike = body.in_distribution === false;  // "none of these": any class may be the right one
  const choices = unlike ? stjClasses : stjClasses.filter((name) => name !== body.label);
  $("correct-class").replaceChildren(...choices.map((name) => new Option(name, name)));
}

$("correction").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("prediction_id", $("correction").dataset.predictionId);
  form.append("class", $("correct-class").value);
  form.append("image", await toBlob(clean), "photo.jpg");
  const response = await fetch("/api/feedback", { method: "POST", body: form }).catch(() => null);
  const status = $("correction-status");
  if (!response) { status.textContent = "The server can't be reached: the correction was not sent."; return; }
  if (response.status === 401) { status.textContent = "Log in to send a correction."; return; }
  const answer = await response.json();
  status.textContent = response.ok ? `Thanks: sent as "${answer.corrected}". It is reviewed before the next training run.`
    : answer.error.message;
});

$("predict").addEventListener("click", () => predict(false));
$("predict-occluded").addEventListener("click", () => predict(true));
$("clear").addEventListener("click", () => { ctx.drawImage(clean, 0, 0); $("predict-occluded").disabled = true; });

$("explain").addEventListener("click", async () => {
  busy("Computing the Grad-CAM heatmap (a few seconds)…");
  const response = await send(clean, "/explain", `?model=${chosenModel()}`).catch(() => null);
  busy();
  if (!response) { showError("The server is not reachable."); return; }
  if (!response.ok) { showError((await response.json()).error.message); return; }
  $("heatmap").src = URL.createObjectURL(await response.blob());
  $("cam-label").textContent = response.headers.get("X-Explained-Label");
  $("cam").hidden = false;
  showResults();
});

function point(event) {
  const rect = photo.getBoundingClientRect();
  const src = event.touches ? event.touches[0] : event;
  return [(src.clientX - rect.left) * photo.width / rect.width, (src.clientY - rect.top) * photo.height / rect.height];
}
function stroke(event) {
  if (!drawing) return;
  event.preventDefault();
  const [x, y] = point(event);
  const width = Number($("brush").value) * photo.width / photo.getBoundingClientRect().width;
  ctx.strokeStyle = "#000"; ctx.lineWidth = width; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...(last || [x, y])); ctx.lineTo(x, y); ctx.stroke();  // joined even for fast moves
  last = [x, y];
  $("predict-occluded").disabled = false;
}
photo.addEventListener("pointerdown", (e) => { drawing = true; last = null; stroke(e); });
photo.addEventListener("pointermove", stroke);
window.addEventListener("pointerup", () => { drawing = false; last = null; });

metadata();
async function prepareOffline() {
  // fetch the browser model while online, through the service worker (which keeps it), so the page still
  // classifies when the server can't be reached
  const workers = navigator.serviceWorker;
  if (workers) {
    await workers.ready;
    if (!workers.controller) await new Promise((ok) => workers.addEventListener("controllerchange", ok, { once: true }));
  }
  await stjLocal.load();
  document.body.dataset.offlineReady = "1";
}
window.addEventListener("load", () => prepareOffline().catch(() => {}));
stjMe.then((me) => {
  keepHistory = me.auth === "none" || !!me.user;
  $("history-note").textContent = me.offline ? "Offline: photos are classified in your browser and not kept."
    : me.auth === "none" ? "Predictions are kept in the history."
    : me.user ? "Your predictions are kept in your history." : "Sign in to keep a history of your predictions.";
});
