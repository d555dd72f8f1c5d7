// Sign in or create an account, then go back where the user came from (a path on this site only).
function nextPage() {
  // only a page of this site: "/\\evil.example" and the like resolve elsewhere, so compare resolved origins,
  // then go to the resolved absolute URL: a path such as "/.//evil.example" resolves to "//evil.example",
  // which the browser would read as another host if it were navigated to as a path
  const next = new URL(new URLSearchParams(location.search).get("next") || "/", location.origin);
  const path = next.pathname;
  if (next.origin !== location.origin || path.startsWith("//")) return location.origin + "/";
  return next.href;
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
