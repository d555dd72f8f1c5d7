// Sign in or create an account, then go back where the user came from (a path on this site only).
function nextPage() {
  // only a page of this site: "/\\evil.example" and the like resolve elsewhere, so compare resolved origins
  const next = new URL(new URLSearchParams(location.search).get("next") || "/", location.origin);
  return next.origin === location.origin ? next.pathname + next.search + next.hash : "/";
}

function bind(formId, path, errorId) {
  document.getElementById(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const [ok, body] = await stjJson(path, "POST", { email: form.email.value, password: form.password.value });
    if (ok) { location.href = nextPage(); return; }
    document.getElementById(errorId).textContent = body.error ? body.error.message : "Something went wrong.";
  });
}

bind("login-form", "/api/login", "login-error");
bind("signup-form", "/api/signup", "signup-error");
stjMe.then((me) => { document.getElementById("signup").hidden = !me.signup; });
