// callvault — progressive enhancements only; every page works without this file.
// Loaded from 'self' (the CSP forbids inline script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Copy" buttons: data-copy names the id of the input whose value is copied.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      if (!input) return;
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(input.value);
      } catch {
        // Clipboard API unavailable (e.g. plain http): select the text so Ctrl/Cmd+C works.
        input.focus();
        input.select();
        button.textContent = "Press Ctrl+C";
        return;
      }
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(() => {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1600);
    });
  }

  // Forms with data-confirm ask before submitting (deletions, revocations).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Read-only inputs select their whole value on focus, for easy manual copying.
  for (const input of document.querySelectorAll("input[readonly]")) {
    input.addEventListener("focus", () => input.select());
  }
});
