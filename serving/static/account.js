// The account page: API tokens (make, list, revoke) and deleting the account.

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

async function loadTokens() {
  const [ok, body] = await stjJson("/api/tokens", "GET");
  const tbody = document.querySelector("#tokens tbody");
  tbody.replaceChildren();
  if (!ok) return;
  for (const token of body.tokens) {
    const tr = document.createElement("tr");
    const revoke = document.createElement("button");
    revoke.type = "button"; revoke.textContent = "Revoke"; revoke.className = "danger";
    revoke.setAttribute("aria-label", `Revoke token ${token.name}`);
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke the token "${token.name}"? Programs using it will be refused.`)) return;
      await stjJson(`/api/tokens/${token.id}`, "DELETE");
      loadTokens();
    });
    const actions = document.createElement("td"); actions.append(revoke);
    tr.append(cell(token.name), cell(stjWhen(token.created_at)), cell(stjWhen(token.last_used_at)), actions);
    tbody.append(tr);
  }
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [ok, body] = await stjJson("/api/tokens", "POST", { name: $("token-name").value });
  if (!ok) { $("token-error").textContent = body.error.message; return; }
  $("token-error").textContent = "";
  $("token-value").textContent = body.token;
  $("token-usage").textContent =
    `curl -H "Authorization: Bearer ${body.token}" -F image=@photo.jpg ${location.origin}/predict`;
  $("new-token").hidden = false;
  event.target.reset();
  loadTokens();
});

$("delete-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!confirm("Delete your account, its history and its tokens? This cannot be undone.")) return;
  const [ok, body] = await stjJson("/api/account", "DELETE", { password: $("delete-password").value });
  if (ok) { location.href = "/"; return; }
  $("delete-error").textContent = body.error.message;
});

stjMe.then((me) => {
  if (!me.user) { location.href = "/login?next=/account"; return; }
  $("who").textContent = `Signed in as ${me.user.email}.`;
  loadTokens();
});
