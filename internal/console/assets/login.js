// The console's sign-in: the token goes to POST /ui/login, which sets it
// as an HttpOnly session cookie; then back to the page that sent us here.
"use strict";
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  const res = await fetch("/ui/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value }),
    credentials: "same-origin",
  });
  if (res.ok) {
    // Only a console path: never send the user to another site.
    const next = new URLSearchParams(location.search).get("next") || "";
    location.assign(/^\/ui(\/|$)/.test(next) ? next : "/ui/");
    return;
  }
  let msg = "sign-in failed (" + res.status + ")";
  try { msg = (await res.json()).message || msg; } catch (_) {}
  err.textContent = msg;
});
