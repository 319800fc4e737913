// The portal's language menu submits itself when a language is picked (templates/admin/language_form.html).
// A file, not an inline onchange handler: the Content Security Policy runs no inline script.
"use strict";
document.addEventListener("change", (event) => {
  if (event.target && event.target.id === "language-select") {
    event.target.form.submit();
  }
});
