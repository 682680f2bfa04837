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

  // The player's src is the permalink, which streams to media elements so every seek and resume comes back
  // through the access check. Should a request still fail with a network error (a dropped connection, a
  // proxy in between that turned the answer into a redirect to a seconds-lived URL), reload through the
  // permalink (the query string defeats the browser's memory of an old redirect) and carry on where the
  // listener was.
  const player = document.querySelector("audio[data-permalink]");
  if (player) {
    let wantPlaying = false;
    let reloads = 0;
    player.addEventListener("play", () => { wantPlaying = true; });
    // The error event fires before the pause it causes: a pause with an error set is not the listener's.
    player.addEventListener("pause", () => { if (!player.error) wantPlaying = false; });
    player.addEventListener("playing", () => { reloads = 0; });
    player.addEventListener("error", () => {
      const error = player.error;
      // Only network errors are worth a new link (a 401 after logout shows as "not supported"); a few
      // attempts in a row at most, so a dead link never loops.
      if (!error || error.code !== MediaError.MEDIA_ERR_NETWORK || reloads >= 3) return;
      reloads += 1;
      const at = player.currentTime;
      const resume = wantPlaying;
      player.addEventListener("loadedmetadata", () => {
        player.currentTime = at;
        if (resume) player.play().catch(() => {});
      }, { once: true });
      player.src = `${player.dataset.permalink}?reload=${Date.now()}`;
    });
  }

  // Read-only inputs select their whole value on focus, for easy manual copying.
  for (const input of document.querySelectorAll("input[readonly]")) {
    input.addEventListener("focus", () => input.select());
  }
});
