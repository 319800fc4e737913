/* CarbonPark: the filling page (R-7.3.1.2–3; templates/admin/entry/submission/fill.html).

   Draws a published form version from the json_script config "filling-config", then as the clerk types:
   - FormLogic (static/entry/form-logic.js) hides fields and computes calculated ones, as the server does;
   - a debounced POST /api/v1/forms/{code}/validate (the form's constraints and the park's rule library)
     answers errors and warnings that are shown at their fields, in the page's language;
   - a debounced POST /api/v1/submissions saves the draft ("saved at hh:mm"); the first save makes it;
   - files go to /api/v1/submissions/{id}/attachments (PDF, PNG or JPEG by their first bytes, size-limited;
     the server checks again and keeps each with its SHA-256);
   - "Submit" posts the values to /api/v1/submissions/{id}/submit and opens the submission's page.
   Every text is set with textContent: nothing from the definition or the server is parsed as HTML. */
(function () {
  "use strict";
  mark("filling-start");
  var cfg = JSON.parse(document.getElementById("filling-config").textContent);
  var def = cfg.definition;
  var zh = cfg.lang !== "en";
  var root = document.getElementById("filling-form");
  var statusEl = document.getElementById("filling-status");
  var VALIDATE_MS = 250, SAVE_MS = 1200;
  var validateTimer = null, saveTimer = null, validateSeq = 0, saving = null, dirty = false;
  var MAGIC = [[0x25, 0x50, 0x44, 0x46], [0x89, 0x50, 0x4e, 0x47], [0xff, 0xd8, 0xff]];

  function T(text) {
    if (!text) return "";
    return zh ? (text.zh || text.en || "") : (text.en || text.zh || "");
  }
  function t(key, params) {
    var s = cfg.i18n[key] || key;
    Object.keys(params || {}).forEach(function (k) { s = s.replace("%(" + k + ")s", params[k]); });
    return s;
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function isRepeat(s) { return s.repeat !== undefined && s.repeat !== null; }
  function setStatus(text, bad) {
    statusEl.textContent = text;
    statusEl.className = "filling-status" + (bad ? " bad" : "");
  }
  function api(url, body, isForm) {
    var headers = {"X-CSRFToken": cfg.csrf, "Accept": "application/json"};
    if (!isForm) headers["Content-Type"] = "application/json";
    return fetch(url, {method: "POST", credentials: "same-origin", headers: headers,
                       body: isForm ? body : JSON.stringify(body)})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return {status: r.status, body: j}; });
      });
  }
  function message(body) {
    if (!body) return "";
    var m = body.messages || {};
    return (body.code ? body.code + ": " : "") + ((zh ? m.zh : m.en) || body.message || body.detail || "");
  }

  // --- drawing ----------------------------------------------------------------------------------------

  function attachmentById(id) {
    for (var i = 0; i < cfg.attachments.length; i++) if (String(cfg.attachments[i].id) === String(id)) return cfg.attachments[i];
    return null;
  }
  function attLabel(a) {
    return a.name + " · SHA-256 " + a.sha256.slice(0, 16) + "… · " + a.size + " B";
  }

  function control(f, value) {
    var wrap = el("div", {className: "ff-input"}), input;
    if (f.type === "attachment") {
      wrap.className += " attachment-box";
      input = el("input", {type: "hidden", "data-key": f.key, className: "ff-ctl"});
      input.value = value === undefined || value === null ? "" : String(value);
      var name = el("span", {className: "att-name"});
      var a = attachmentById(input.value);
      name.textContent = a ? attLabel(a) : "";
      var file = el("input", {type: "file", accept: "application/pdf,image/png,image/jpeg", className: "ff-file",
                              "aria-label": T(f.label) + " " + t("attach")});
      var pick = el("label", {className: "button file-button"}, a ? t("replace") : t("attach"));
      pick.appendChild(file);
      wrap.appendChild(input); wrap.appendChild(name); wrap.appendChild(pick);
      return wrap;
    }
    if (f.type === "enum") {
      input = el("select", {"data-key": f.key, className: "ff-ctl"});
      input.appendChild(el("option", {value: ""}, t("choose")));
      (f.options || []).forEach(function (o) { input.appendChild(el("option", {value: o.value}, T(o.label))); });
    } else {
      input = el("input", {type: f.type === "date" ? "date" : "text", "data-key": f.key, className: "ff-ctl"});
      if (f.type === "number") input.setAttribute("inputmode", "decimal");
      if (f.type === "datetime") input.setAttribute("placeholder", "2026-01-31T08:00:00+08:00");
      if (f.type === "text" && f.maxLength) input.setAttribute("maxlength", String(f.maxLength));
    }
    if (f.calc !== undefined) {
      input.readOnly = true;
      input.tabIndex = -1;
      input.setAttribute("title", t("calculated"));
    }
    if (value !== undefined && value !== null) input.value = String(value);
    input.setAttribute("aria-label", T(f.label));
    wrap.appendChild(input);
    return wrap;
  }

  function fieldRow(f, value) {
    var row = el("div", {className: "ff-field" + (f.calc !== undefined ? " calc" : ""), "data-path": f.key});
    var id = "ff-" + f.key;
    var label = el("label", {"for": id}, T(f.label));
    if (f.required) label.appendChild(el("span", {className: "req", title: t("required")}, "*"));
    row.appendChild(label);
    var c = control(f, value);
    var ctl = c.querySelector(".ff-ctl");
    if (f.type === "attachment") c.querySelector(".ff-file").id = id; else ctl.id = id;
    row.appendChild(c);
    row.appendChild(el("span", {className: "unit"}, f.unit || (f.calc !== undefined ? "(" + t("calculated") + ")" : "")));
    if (f.help) row.appendChild(el("div", {className: "help"}, T(f.help)));
    row.appendChild(el("ul", {className: "errorlist", "data-error-for": f.key}));
    row.appendChild(el("ul", {className: "warnlist", "data-warn-for": f.key}));
    return row;
  }

  function repeatRow(s, tbody, rowValues) {
    var tr = el("tr", {className: "ff-row"});
    tr.appendChild(el("td", {className: "ff-rownum"}));
    s.fields.forEach(function (f) {
      var td = el("td", {"data-key": f.key, className: f.calc !== undefined ? "calc" : ""});
      td.appendChild(control(f, rowValues ? rowValues[f.key] : null));
      td.appendChild(el("ul", {className: "errorlist"}));
      td.appendChild(el("ul", {className: "warnlist"}));
      tr.appendChild(td);
    });
    var rm = el("button", {type: "button", className: "button ff-remove"}, t("remove_row"));
    rm.addEventListener("click", function () {
      tr.remove();
      renumber(s, tbody);
      changed();
    });
    var last = el("td");
    last.appendChild(rm);
    tr.appendChild(last);
    tbody.appendChild(tr);
    return tr;
  }

  function renumber(s, tbody) {
    var rows = tbody.querySelectorAll("tr.ff-row");
    var min = (s.repeat && s.repeat.min) || 0, max = Math.min((s.repeat && s.repeat.max) || 1000, 1000);
    rows.forEach(function (tr, i) {
      tr.setAttribute("data-index", String(i));
      tr.querySelector(".ff-rownum").textContent = String(i + 1);
      tr.querySelectorAll("td[data-key]").forEach(function (td) {
        var p = s.key + "[" + i + "]." + td.getAttribute("data-key");
        td.setAttribute("data-path", p);
        td.querySelector(".errorlist").setAttribute("data-error-for", p);
        td.querySelector(".warnlist").setAttribute("data-warn-for", p);
      });
      tr.querySelector(".ff-remove").disabled = rows.length <= min;
    });
    var add = document.querySelector('.ff-add[data-section="' + s.key + '"]');
    if (add) add.disabled = rows.length >= max;
  }

  function draw() {
    (def.sections || []).forEach(function (s) {
      var box = el("fieldset", {className: "module ff-section", "data-section": s.key});
      box.appendChild(el("h2", {}, T(s.title)));
      if (s.help) box.appendChild(el("p", {className: "section-help"}, T(s.help)));
      if (isRepeat(s)) {
        var table = el("table", {className: "ff-rows", "data-section": s.key});
        var head = el("tr");
        head.appendChild(el("th", {}, "#"));
        s.fields.forEach(function (f) {
          var th = el("th", {}, T(f.label) + (f.unit ? " (" + f.unit + ")" : ""));
          if (f.required) th.appendChild(el("span", {className: "req"}, "*"));
          if (f.help) th.setAttribute("title", T(f.help));
          head.appendChild(th);
        });
        head.appendChild(el("th"));
        var thead = el("thead");
        thead.appendChild(head);
        table.appendChild(thead);
        var tbody = el("tbody");
        table.appendChild(tbody);
        var rows = Array.isArray(cfg.values[s.key]) ? cfg.values[s.key] : [];
        rows.forEach(function (r) { repeatRow(s, tbody, r); });
        for (var n = rows.length; n < ((s.repeat && s.repeat.min) || 0); n++) repeatRow(s, tbody, null);
        box.appendChild(table);
        box.appendChild(el("ul", {className: "errorlist", "data-error-for": s.key}));
        var add = el("button", {type: "button", className: "button ff-add", "data-section": s.key}, t("add_row"));
        add.addEventListener("click", function () {
          repeatRow(s, tbody, null);
          renumber(s, tbody);
          changed();
        });
        box.appendChild(add);
        root.appendChild(box);
        renumber(s, tbody);
      } else {
        s.fields.forEach(function (f) { box.appendChild(fieldRow(f, cfg.values[f.key])); });
        root.appendChild(box);
      }
    });
  }

  // --- values, logic, errors ------------------------------------------------------------------------

  function raw(ctl) {
    var v = ctl.value;
    return typeof v === "string" && v.trim() === "" ? null : v;
  }
  function collect() {
    var values = {};
    (def.sections || []).forEach(function (s) {
      var box = root.querySelector('fieldset[data-section="' + s.key + '"]');
      if (isRepeat(s)) {
        values[s.key] = [];
        box.querySelectorAll("tr.ff-row").forEach(function (tr) {
          var row = {};
          s.fields.forEach(function (f) {
            if (f.calc !== undefined) return;
            var v = raw(tr.querySelector('td[data-key="' + f.key + '"] .ff-ctl'));
            if (v !== null) row[f.key] = v;
          });
          values[s.key].push(row);
        });
      } else {
        s.fields.forEach(function (f) {
          if (f.calc !== undefined) return;
          var v = raw(box.querySelector('.ff-field[data-path="' + f.key + '"] .ff-ctl'));
          if (v !== null) values[f.key] = v;
        });
      }
    });
    return values;
  }

  function shown(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return String(Math.round(v * 1e9) / 1e9);
    return String(v);
  }

  function applyLogic() {
    var res = window.FormLogic.evaluate(def, collect());
    var hidden = {};
    res.hidden.forEach(function (p) { hidden[p] = true; });
    (def.sections || []).forEach(function (s) {
      var box = root.querySelector('fieldset[data-section="' + s.key + '"]');
      if (isRepeat(s)) {
        box.classList.toggle("ff-hidden", !!hidden[s.key]);
        var rows = res.values[s.key] || [];
        box.querySelectorAll("tr.ff-row").forEach(function (tr, i) {
          s.fields.forEach(function (f) {
            var td = tr.querySelector('td[data-key="' + f.key + '"]');
            var off = !!hidden[s.key + "[" + i + "]." + f.key];
            td.style.visibility = off ? "hidden" : "";
            if (f.calc !== undefined) td.querySelector(".ff-ctl").value = shown((rows[i] || {})[f.key]);
          });
        });
      } else {
        var all = true;
        s.fields.forEach(function (f) {
          var row = box.querySelector('.ff-field[data-path="' + f.key + '"]');
          row.classList.toggle("ff-hidden", !!hidden[f.key]);
          if (!hidden[f.key]) all = false;
          if (f.calc !== undefined) row.querySelector(".ff-ctl").value = shown(res.values[f.key]);
        });
        box.classList.toggle("ff-hidden", all && s.fields.length > 0);
      }
    });
  }

  function showProblems(errors, warnings) {
    document.querySelectorAll("[data-error-for], [data-warn-for]").forEach(function (ul) { ul.textContent = ""; });
    document.querySelectorAll(".has-error").forEach(function (e) { e.classList.remove("has-error"); });
    var formErrors = document.getElementById("form-errors");
    (errors || []).forEach(function (e) {
      var ul = document.querySelector('[data-error-for="' + CSS.escape(e.path || "") + '"]');
      var text = (zh ? (e.messages || {}).zh : (e.messages || {}).en) || e.message;
      var li = el("li", {"data-code": e.code}, (ul && ul !== formErrors ? "" : (e.path ? e.path + ": " : "")) + text);
      (ul || formErrors).appendChild(li);
      var holder = ul && ul.closest(".ff-field, td");
      if (holder) holder.classList.add("has-error");
    });
    (warnings || []).forEach(function (w) {
      var ul = document.querySelector('[data-warn-for="' + CSS.escape(w.path || "") + '"]');
      var text = (zh ? (w.messages || {}).zh : (w.messages || {}).en) || w.message;
      if (ul) ul.appendChild(el("li", {"data-code": w.code}, t("warning") + ": " + text));
    });
  }

  function validate() {
    var seq = ++validateSeq;
    return api(cfg.urls.validate, {values: collect(), park: cfg.park, period: cfg.period, version: cfg.version})
      .then(function (r) {
        if (seq !== validateSeq) return;
        if (r.status === 200) {
          showProblems(r.body.errors, r.body.warnings);
          var n = (r.body.errors || []).length;
          if (!saving && !dirty) setStatus(n ? t("errors", {count: n}) : t("no_errors"), n > 0);
        } else {
          setStatus(message(r.body), true);
        }
      }).catch(function () {});
  }

  function hhmm(d) {
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function save() {
    if (saving) {
      dirty = true;
      return saving;
    }
    clearTimeout(saveTimer);
    dirty = false;
    setStatus(t("saving"));
    saving = api(cfg.urls.drafts, {form: cfg.form, park: cfg.park, period: cfg.period, values: collect()})
      .then(function (r) {
        saving = null;
        if (r.status === 200) {
          var first = !cfg.submission;
          cfg.submission = r.body.submission.id;
          if (first) window.history.replaceState(null, "", cfg.urls.page.replace("/0/", "/" + cfg.submission + "/"));
          setStatus(t("saved_at", {time: hhmm(new Date())}));
          statusEl.setAttribute("data-saved", "1");
        } else {
          setStatus(t("not_saved", {reason: message(r.body)}), true);
        }
        if (dirty) return save();
      }, function () {
        saving = null;
        setStatus(t("not_saved", {reason: "network"}), true);
      });
    return saving;
  }

  function changed() {
    applyLogic();
    statusEl.removeAttribute("data-saved");
    clearTimeout(validateTimer);
    validateTimer = setTimeout(validate, VALIDATE_MS);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, SAVE_MS);
  }

  // --- files ----------------------------------------------------------------------------------------

  function looksAccepted(file) {
    return file.slice(0, 8).arrayBuffer().then(function (buf) {
      var b = new Uint8Array(buf);
      return MAGIC.some(function (m) { return m.every(function (x, i) { return b[i] === x; }); });
    });
  }

  function upload(file, fieldPath, errorUl) {
    errorUl.textContent = "";
    if (file.size > cfg.maxBytes) {
      errorUl.appendChild(el("li", {}, t("too_large", {limit: Math.floor(cfg.maxBytes / 1048576)})));
      return Promise.resolve(null);
    }
    return looksAccepted(file).then(function (ok) {
      if (!ok) {
        errorUl.appendChild(el("li", {}, t("wrong_type")));
        return null;
      }
      setStatus(t("uploading"));
      var ready = cfg.submission ? Promise.resolve() : save();
      return Promise.resolve(ready).then(function () {
        if (!cfg.submission) return null;
        var form = new FormData();
        form.append("file", file);
        form.append("field", fieldPath);
        return api(cfg.urls.api + cfg.submission + "/attachments", form, true).then(function (r) {
          if (r.status !== 201) {
            errorUl.appendChild(el("li", {"data-code": r.body.code || ""}, message(r.body)));
            setStatus(message(r.body), true);
            return null;
          }
          setStatus("");
          var a = {id: r.body.id, field: fieldPath, name: file.name, size: r.body.size, sha256: r.body.sha256};
          cfg.attachments.push(a);
          return a;
        });
      });
    });
  }

  function listEvidence() {
    var ul = document.getElementById("evidence-list");
    ul.textContent = "";
    cfg.attachments.filter(function (a) { return !a.field; }).forEach(function (a) {
      ul.appendChild(el("li", {"data-sha256": a.sha256}, attLabel(a)));
    });
  }

  // --- wiring -----------------------------------------------------------------------------------------

  function wire() {
    root.addEventListener("input", function (e) {
      if (e.target.classList.contains("ff-ctl")) changed();
    });
    root.addEventListener("change", function (e) {
      if (e.target.classList.contains("ff-ctl")) changed();
      if (!e.target.classList.contains("ff-file") || !e.target.files.length) return;
      var box = e.target.closest(".attachment-box");
      var holder = e.target.closest(".ff-field, td");
      var path = holder.getAttribute("data-path");
      var ul = holder.querySelector(".errorlist");
      upload(e.target.files[0], path, ul).then(function (a) {
        e.target.value = "";
        if (!a) return;
        box.querySelector(".ff-ctl").value = String(a.id);
        box.querySelector(".att-name").textContent = attLabel(a);
        box.querySelector(".file-button").firstChild.textContent = t("replace");
        changed();
      });
    });
    document.getElementById("evidence-file").addEventListener("change", function (e) {
      if (!e.target.files.length) return;
      upload(e.target.files[0], "", document.getElementById("evidence-errors")).then(function (a) {
        e.target.value = "";
        if (a) {
          listEvidence();
          setStatus(t("saved_at", {time: hhmm(new Date())}));
        }
      });
    });
    document.getElementById("submit-button").addEventListener("click", function () {
      var button = this;
      button.disabled = true;
      clearTimeout(saveTimer);
      clearTimeout(validateTimer);
      setStatus(t("submitting"));
      Promise.resolve(saving).then(function () { return cfg.submission ? null : save(); }).then(function () {
        if (!cfg.submission) {
          button.disabled = false;
          return;
        }
        return api(cfg.urls.api + cfg.submission + "/submit", {values: collect()}).then(function (r) {
          if (r.status === 200) {
            window.location.assign(cfg.urls.detail.replace("/0/", "/" + cfg.submission + "/"));
            return;
          }
          button.disabled = false;
          if (r.body.errors) showProblems(r.body.errors, []);
          else showProblems([{path: r.body.field || "", code: r.body.code, message: r.body.message,
                              messages: r.body.messages}], []);
          setStatus(message(r.body), true);
        });
      });
    });
  }

  // Marks for bench/entry.py and tests: "filling-built" when every field is in the DOM, "filling-drawn" (and
  // data-drawn on the form, with the number of controls) after the first frame that paints them.
  function mark(name) {
    if (window.performance && performance.mark) performance.mark(name);
  }

  draw();
  listEvidence();
  wire();
  applyLogic();
  mark("filling-built");
  requestAnimationFrame(function () {
    setTimeout(function () {
      mark("filling-drawn");
      root.setAttribute("data-drawn", String(root.querySelectorAll(".ff-ctl").length));
    }, 0);
  });
  if (cfg.submission) validate();
}());
