// Shared by every page: who is signed in (GET /api/me), shown in the header with sign-in / sign-out.
const stjMe = fetch("/api/me").then((r) => r.json()).catch(() => ({ auth: "none", user: null }));

stjMe.then((me) => {
  const slot = document.getElementById("account-nav");
  if (!slot || me.auth === "none") return;
  if (me.user) {
    const account = document.createElement("a");
    account.href = "/account"; account.textContent = me.user.email;  // user text: never markup
    const out = document.createElement("button");
    out.type = "button"; out.className = "link"; out.textContent = "Sign out";
    out.addEventListener("click", async () => {
      await fetch("/api/logout", { method: "POST" });
      location.href = "/";
    });
    slot.append(account, out);
  } else {
    const signIn = document.createElement("a");
    signIn.href = "/login?next=" + encodeURIComponent(location.pathname); signIn.textContent = "Sign in";
    slot.append(signIn);
  }
});

async function stjJson(path, method, body) {
  // a JSON request; resolves to [ok, body] with the API's error message on failure
  const response = await fetch(path, {
    method, headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  return [response.ok, parsed, response.status];
}
