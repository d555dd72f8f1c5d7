// STJ history: the signed-in user's past predictions, paginated and filterable, with delete.
const PER_PAGE = 10;
let page = 1;
let models = [];  // the (name, version) pairs of the history, as the filter lists them

function cell(child) {
  const td = document.createElement("td");
  if (typeof child === "string") td.textContent = child; else td.append(child);  // text is never markup
  return td;
}

function row(item) {
  const tr = document.createElement("tr");
  tr.dataset.id = item.id;
  const img = document.createElement("img");
  img.src = `/api/history/${item.id}/thumbnail`; img.alt = `photo predicted as ${item.label}`;
  const label = cell(item.label); label.className = "label";
  const version = cell(`${item.model_name ? item.model_name + " " : ""}v${item.model_version}`);
  version.className = "version";
  const remove = document.createElement("button");
  remove.type = "button"; remove.className = "delete danger"; remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete the ${item.label} prediction of ${item.created_at}`);
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete this prediction (${item.label})?`)) return;
    await fetch(`/api/history/${item.id}`, { method: "DELETE" });
    load();
  });
  tr.append(cell(img), label, cell(`${(item.confidence * 100).toFixed(1)}%`), version,
    cell(stjWhen(item.created_at)), cell(remove));
  return tr;
}

async function load() {
  const params = new URLSearchParams({ page, per_page: PER_PAGE });
  if ($("from").value) params.set("from", $("from").value);
  if ($("to").value) params.set("to", $("to").value);
  const model = models[$("version").value];  // the option's value is its place in `models`
  if (model) {
    params.set("model_version", model.version);
    if (model.name) params.set("model_name", model.name);
  }
  const response = await fetch("/api/history?" + params);
  const body = await response.json();
  if (response.status === 401) { $("signed-out").hidden = false; $("history").hidden = true; return; }
  const select = $("version"), chosen = model ? `${model.name} v${model.version}` : "";
  models = body.models;
  select.replaceChildren(new Option("all", ""), ...models.map((m, i) => new Option(`${m.name || "?"} v${m.version}`, i)));
  select.value = String(models.findIndex((m) => `${m.name} v${m.version}` === chosen));
  if (select.selectedIndex < 0) select.value = "";
  document.querySelector("#rows tbody").replaceChildren(...body.rows.map(row));
  const pages = Math.max(1, Math.ceil(body.total / PER_PAGE));
  $("empty").hidden = body.total > 0;
  $("page-info").textContent = `page ${page} of ${pages} (${body.total} predictions)`;
  $("prev").disabled = page <= 1; $("next").disabled = page >= pages;
}

$("filters").addEventListener("submit", (e) => { e.preventDefault(); page = 1; load(); });
$("prev").addEventListener("click", () => { page -= 1; load(); });
$("next").addEventListener("click", () => { page += 1; load(); });
load();
