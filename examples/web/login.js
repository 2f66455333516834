/**
 * The reference site's only page script, served as `/hm/auth/login.js` (a same-origin module, as
 * the page's `script-src 'self'` requires; the page has no inline script). It wires the header
 * button: "Log in" logs in with this browser's own WebCrypto key (made on first use, kept in
 * IndexedDB, never extractable) and reloads; "Log out" ends the session and reloads. The server
 * renders the button's label and `data-action` from the session, so a reload shows the new state.
 *
 * @module
 */
import { loginWithLocalKey, logout } from "/hm/auth/browser.js";

const button = /** @type {HTMLButtonElement | null} */ (document.getElementById("seed-auth"));
const problem = document.getElementById("seed-auth-error");

/**
 * Shows why a login or logout failed, as text.
 *
 * @param {unknown} err
 */
function show(err) {
  if (problem === null) return;
  problem.textContent = `Could not ${button?.dataset.action === "logout" ? "log out" : "log in"}: ${
    err instanceof Error ? err.message : String(err)
  }`;
  problem.hidden = false;
}

button?.addEventListener("click", async () => {
  button.disabled = true;
  try {
    if (button.dataset.action === "logout") await logout();
    else await loginWithLocalKey();
    location.reload();
  } catch (err) {
    show(err);
    button.disabled = false;
  }
});
