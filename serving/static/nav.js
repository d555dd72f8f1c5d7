// Shared by every page: who is signed in (GET /api/me), shown in the header with sign-in / sign-out; the
// service worker that makes the app installable and usable offline.
const $ = (id) => document.getElementById(id);
// "2026-11-23T10:00:00+00:00" -> "2026-11-23 10:00:00 UTC"
const stjWhen = (iso) => (iso ? iso.replace("T", " ").replace("+00:00", " UTC") : "never");
const stjMe = fetch("/api/me").then((r) => r.json()).catch(() => ({ auth: "none", user: null, offline: true }));
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});

stjMe.then((me) => {
  const slot = document.getElementById("account-nav");
  if (!slot || me.auth === "none" || me.offline) return;
  if (me.user) {
    if (me.user.admin && !document.querySelector('nav a[href="/review"]')) {  // admins review corrections
      const review = document.createElement("a");
      review.href = "/review"; review.textContent = "Review";
      slot.before(review, " ");
    }
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
