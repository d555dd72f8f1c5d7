// STJ history: paginated, filterable list of past predictions with delete.
const $ = (id) => document.getElementById(id);
const PER_PAGE = 10;
let page = 1;

async function load() {
  const params = new URLSearchParams({ page, per_page: PER_PAGE });
  if ($("from").value) params.set("from", $("from").value);
  if ($("to").value) params.set("to", $("to").value);
  if ($("version").value) params.set("model_version", $("version").value);
  const body = await (await fetch("/api/history?" + params)).json();
  const select = $("version"), chosen = select.value;
  select.innerHTML = '<option value="">all</option>' + body.versions.map((v) => `<option value="${v}">${v}</option>`).join("");
  select.value = chosen;
  const tbody = document.querySelector("#rows tbody");
  tbody.innerHTML = "";
  for (const row of body.rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    tr.innerHTML = `<td><img src="/api/history/${row.id}/thumbnail" alt=""></td><td class="label">${row.label}</td>` +
      `<td>${(row.confidence * 100).toFixed(1)}%</td><td class="version">v${row.model_version}</td>` +
      `<td>${row.created_at.replace("T", " ").replace("+00:00", "")}</td><td><button class="delete" type="button">Delete</button></td>`;
    tr.querySelector(".delete").addEventListener("click", async () => {
      await fetch(`/api/history/${row.id}`, { method: "DELETE" });
      load();
    });
    tbody.appendChild(tr);
  }
  const pages = Math.max(1, Math.ceil(body.total / PER_PAGE));
  $("empty").hidden = body.total > 0;
  $("page-info").textContent = `page ${page} of ${pages} (${body.total} predictions)`;
  $("prev").disabled = page <= 1; $("next").disabled = page >= pages;
}

$("filters").addEventListener("submit", (e) => { e.preventDefault(); page = 1; load(); });
$("prev").addEventListener("click", () => { page -= 1; load(); });
$("next").addEventListener("click", () => { page += 1; load(); });
load();
