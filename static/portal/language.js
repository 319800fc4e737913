// The portal's language menu and park switcher submit themselves when picked (templates/admin/language_form.html,
// templates/admin/park_switcher.html).
// A file, not an inline onchange handler: the Content Security Policy runs no inline script.
"use strict";
document.addEventListener("change", (event) => {
  if (event.target && (event.target.id === "language-select" || event.target.id === "park-select")) {
    event.target.form.submit();
  }
});
