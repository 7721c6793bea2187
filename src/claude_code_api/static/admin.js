// The admin site's only script: copy buttons, live filtering and an in-page revoke confirmation.
// Every page works without it; it never writes HTML from data (textContent only).
"use strict";

document.documentElement.classList.add("js");

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Older browsers: copy through a temporary, off-screen text area.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const text = "value" in source ? source.value : source.textContent;
      try {
        await copyText(text);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
        if (source.select) source.select();
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
  const key = document.getElementById("new-key");
  if (key) key.addEventListener("focus", () => key.select());
}

function setUpFilter() {
  const input = document.getElementById("key-filter");
  const rows = document.querySelectorAll("tr[data-name]");
  const noMatch = document.querySelector("tr.no-match");
  if (!input || !noMatch) return;
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const match = row.dataset.name.includes(needle);
      row.hidden = !match;
      if (match) shown += 1;
    }
    noMatch.querySelector("[data-query]").textContent = input.value.trim();
    noMatch.hidden = shown > 0;
  });
}

function setUpRevokeDialog() {
  const dialog = document.getElementById("revoke-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const confirm = dialog.querySelector("[data-dialog-confirm]");
  const error = dialog.querySelector("[data-dialog-error]");
  let current = null;

  for (const link of document.querySelectorAll("[data-revoke]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      current = link;
      dialog.querySelector("[data-dialog-name]").textContent = link.dataset.revokeName;
      dialog.querySelector("[data-dialog-prefix]").textContent = link.dataset.revokePrefix;
      error.hidden = true;
      confirm.disabled = false;
      dialog.showModal();
    });
  }

  confirm.addEventListener("click", async () => {
    if (!current) return;
    confirm.disabled = true;
    const keyId = current.dataset.revoke;
    try {
      const response = await fetch(`/admin/keys/${encodeURIComponent(keyId)}`, {
        method: "DELETE",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        throw new Error((body.error && body.error.message) || `The server answered ${response.status}.`);
      }
      markRevoked(current.closest("tr"), body.name || current.dataset.revokeName);
      dialog.close();
    } catch (problem) {
      error.textContent = problem.message;
      error.hidden = false;
      confirm.disabled = false;
    }
  });
}

function markRevoked(row, name) {
  const badge = row.querySelector("[data-status]");
  badge.textContent = "revoked";
  badge.className = "badge badge-revoked";
  for (const link of row.querySelectorAll("[data-revoke], [data-limits-link]")) link.remove();
  const active = document.querySelector("[data-active-count]");
  const count = Number.parseInt(active ? active.textContent.replace(/\D/g, "") : "", 10);
  if (active && count > 0) active.textContent = (count - 1).toLocaleString("en-US");
  const flash = document.getElementById("flash");
  const message = document.createElement("p");
  message.className = "alert alert-success";
  const strong = document.createElement("strong");
  strong.textContent = name;
  message.append("Key ", strong, " revoked: requests with it are refused from now on.");
  flash.replaceChildren(message);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpFilter();
  setUpRevokeDialog();
});
