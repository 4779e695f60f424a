// The console's one script (served from /console/assets, allowed by the
// Content-Security-Policy as 'self'): times in the viewer's zone, with UTC
// kept on hover. Everything else works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("time[datetime]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(d.getTime())) {
      el.textContent = d.toLocaleString();
    }
  }
});
