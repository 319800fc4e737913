/* CarbonPark: the visual form designer (R-7.3.1, issue #10 item 2; apps/entry/designer.py).

   The page edits one object, the form's draft definition (docs/form-definitions.md), and draws three views of
   it: the catalog (left), sections and fields (middle: design, preview, JSON), the selected field's or
   section's properties (right). Drag and drop is the browser's own (HTML5): catalog items and free field types
   drop into a section, fields and sections move by dragging; every drag has a button beside it (add, up, down)
   for keyboard users. The preview resolves catalog items as publishing does and runs FormLogic.evaluate
   (static/entry/form-logic.js) on every input. The server judges: Check, Save draft and Publish POST the
   definition and show its E82xx problems at the field or section they name. */
(function () {
  "use strict";
  var cfg, S, lang, def, selected = null, dirty = false, problems = [], items = {};

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (ev) { e.addEventListener(ev, attrs.on[ev]); });
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function txt(t) { return t ? (lang === "en" && t.en ? t.en : t.zh || "") : ""; }
  function name(o) { return lang === "en" && o.name_en ? o.name_en : o.name_zh; }
  function clone(v) { return JSON.parse(JSON.stringify(v)); }
  function allKeys() {
    var keys = {};
    def.sections.forEach(function (s) { keys[s.key] = 1; s.fields.forEach(function (f) { keys[f.key] = 1; }); });
    return keys;
  }
  function freshKey(base) {
    var keys = allKeys(), k = base, n = 2;
    while (keys[k]) k = base + "_" + n++;
    return k;
  }
  var ITEM_TYPES = { number: "number", "enum": "enum", string: "text", date: "date" };

  // --- the definition as publishing resolves it (apps/entry/definitions.resolve), for the preview -------------
  function resolved() {
    var out = clone(def);
    out.sections.forEach(function (s) {
      s.fields.forEach(function (f) {
        var info = f.item && items[f.item];
        if (!info) return;
        if (!f.type) f.type = ITEM_TYPES[info.data_type] || "text";
        if (!f.label) f.label = info.name_en ? { zh: info.name_zh, en: info.name_en } : { zh: info.name_zh };
        if (f.type === "number" && info.unit && !f.unit) f.unit = info.unit;
        var step = parseFloat(info.precision);
        if (f.type === "number" && step > 0 && f.step === undefined) f.step = step;
        if (f.type === "enum" && info.options.length) f.options = info.options;
      });
    });
    return out;
  }
  function fieldLabel(f) {
    if (f.label) return txt(f.label);
    var info = f.item && items[f.item];
    return info ? name(info) : f.key;
  }
  function fieldType(f) {
    var info = f.item && items[f.item];
    return f.type || (info ? ITEM_TYPES[info.data_type] || "text" : "text");
  }

  // --- changes --------------------------------------------------------------------------------------------------
  function changed(redrawAll) {
    dirty = true;
    status(S.unsaved, "");
    document.getElementById("fd-json").textContent = JSON.stringify(def, null, 2);
    if (redrawAll !== false) { drawDesign(); drawProps(); }
  }
  function newField(source) {
    if (source.kind === "item") {
      var info = items[source.code];
      var f = { key: freshKey(source.code.toLowerCase()), item: source.code };
      if (info.precision === "unique") f.unique = true;
      return f;
    }
    var t = source.type, field = { key: freshKey("field"), type: t, label: { zh: S.new_field } };
    if (lang === "en") field.label = { zh: S.new_field, en: S.new_field };
    if (t === "enum") field.options = [{ value: "a", label: { zh: "A" } }, { value: "b", label: { zh: "B" } }];
    return field;
  }
  function addSection(repeat) {
    var s = { key: freshKey(repeat ? "rows" : "section"), title: { zh: S.new_section }, fields: [] };
    if (repeat) s.repeat = { min: 0, max: 50 };
    def.sections.push(s);
    selected = { s: def.sections.length - 1 };
    changed();
  }
  function insertField(si, index, source) {
    var sec = def.sections[si], f;
    if (source.kind === "field") {
      f = def.sections[source.s].fields.splice(source.f, 1)[0];
      if (source.s === si && source.f < index) index -= 1;
    } else {
      f = newField(source);
    }
    sec.fields.splice(index, 0, f);
    selected = { s: si, f: index };
    changed();
  }
  function moveSection(from, to) {
    var s = def.sections.splice(from, 1)[0];
    if (from < to) to -= 1;
    def.sections.splice(to, 0, s);
    selected = { s: to };
    changed();
  }

  // --- drag and drop (HTML5) ---------------------------------------------------------------------------------------
  var dragging = null;
  function draggable(node, payload) {
    node.setAttribute("draggable", "true");
    node.addEventListener("dragstart", function (e) {
      dragging = payload;
      e.dataTransfer.effectAllowed = "copyMove";
      e.dataTransfer.setData("text/plain", JSON.stringify(payload));
      e.stopPropagation();
    });
    node.addEventListener("dragend", function () { dragging = null; clearMarks(); });
  }
  function clearMarks() {
    document.querySelectorAll(".fd-drop-before,.fd-drop-after,.fd-drop-into").forEach(function (n) {
      n.classList.remove("fd-drop-before", "fd-drop-after", "fd-drop-into");
    });
  }
  function payloadOf(e) {
    if (dragging) return dragging;
    try { return JSON.parse(e.dataTransfer.getData("text/plain")); } catch (err) { return null; }
  }
  function fieldDropZone(list, si) {
    list.addEventListener("dragover", function (e) {
      var p = dragging;
      if (p && p.kind === "section") return;
      e.preventDefault();
      e.stopPropagation();
      clearMarks();
      var at = dropIndex(list, e.clientY);
      var rows = list.querySelectorAll(":scope > .fd-field");
      if (rows.length === 0) list.classList.add("fd-drop-into");
      else if (at < rows.length) rows[at].classList.add("fd-drop-before");
      else rows[rows.length - 1].classList.add("fd-drop-after");
    });
    list.addEventListener("drop", function (e) {
      var p = payloadOf(e);
      if (!p || p.kind === "section") return;
      e.preventDefault();
      e.stopPropagation();
      insertField(si, dropIndex(list, e.clientY), p);
    });
  }
  function dropIndex(list, y) {
    var rows = list.querySelectorAll(":scope > .fd-field");
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i].getBoundingClientRect();
      if (y < r.top + r.height / 2) return i;
    }
    return rows.length;
  }

  // --- catalog (left) -----------------------------------------------------------------------------------------------
  function drawCatalog() {
    var pane = document.getElementById("fd-catalog");
    var search = el("input", { type: "search", id: "fd-search", placeholder: S.search, "aria-label": S.search });
    var list = el("div", { id: "fd-catalog-list" });
    pane.appendChild(el("h2", { text: S.catalog }));
    pane.appendChild(search);
    var free = el("div", { "class": "fd-group" }, [el("h3", { text: S.free_fields })]);
    cfg.fieldTypes.forEach(function (t) {
      var chip = el("div", { "class": "fd-chip fd-free", "data-type": t }, [
        el("span", { "class": "fd-chip-name", text: S["type_" + t] }),
        el("button", { type: "button", "class": "fd-add", title: S.add, "aria-label": S.add + " " + S["type_" + t],
          text: "+", on: { click: function () { addToSelected({ kind: "free", type: t }); } } })]);
      draggable(chip, { kind: "free", type: t });
      free.appendChild(chip);
    });
    list.appendChild(free);
    cfg.catalog.forEach(function (g) {
      var group = el("div", { "class": "fd-group" }, [el("h3", { text: g.code + " " + name(g) })]);
      g.items.forEach(function (it) {
        var meta = [it.unit, S["type_" + (ITEM_TYPES[it.data_type] || "text")]].filter(Boolean).join(" · ");
        var chip = el("div", { "class": "fd-chip", "data-item": it.code,
          "data-search": (it.code + " " + it.name_zh + " " + it.name_en).toLowerCase() }, [
          el("span", { "class": "fd-code", text: it.code }),
          el("span", { "class": "fd-chip-name", text: it.name_zh, title: it.name_en }),
          it.name_en ? el("span", { "class": "fd-chip-en", text: it.name_en }) : null,
          el("span", { "class": "fd-meta", text: meta }),
          el("button", { type: "button", "class": "fd-add", title: S.add, "aria-label": S.add + " " + it.code, text: "+",
            on: { click: function () { addToSelected({ kind: "item", code: it.code }); } } })]);
        draggable(chip, { kind: "item", code: it.code });
        group.appendChild(chip);
      });
      list.appendChild(group);
    });
    pane.appendChild(list);
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      list.querySelectorAll(".fd-chip[data-item]").forEach(function (c) {
        c.hidden = q !== "" && c.getAttribute("data-search").indexOf(q) === -1;
      });
      list.querySelectorAll(".fd-group").forEach(function (g) {
        var chips = g.querySelectorAll(".fd-chip");
        g.hidden = chips.length > 0 && Array.prototype.every.call(chips, function (c) { return c.hidden; });
      });
    });
  }
  function addToSelected(source) {
    if (!def.sections.length) addSection(false);
    var si = selected ? selected.s : def.sections.length - 1;
    insertField(si, def.sections[si].fields.length, source);
  }

  // --- design (middle) ------------------------------------------------------------------------------------------------
  function problemsAt(prefix) {
    return problems.filter(function (p) {
      return p.path === prefix || p.path.indexOf(prefix + ".") === 0 ||
        (prefix.indexOf(".fields[") === -1 && p.path.indexOf(prefix + "[") === 0 && false);
    });
  }
  function problemNote(list) {
    if (!list.length) return null;
    return el("ul", { "class": "fd-errors" }, list.map(function (p) {
      return el("li", { text: p.code + " " + p.message });
    }));
  }
  function drawDesign() {
    var box = document.getElementById("fd-design");
    box.textContent = "";
    var formBox = el("div", { "class": "fd-formbox" + (selected && selected.form ? " fd-selected" : ""),
      id: "fd-form-settings", on: { click: function () { selected = { form: true }; drawDesign(); drawProps(); } } }, [
      el("strong", { text: txt(def.title) || S.form }),
      el("span", { "class": "fd-meta", text: S.period + ": " + S["period_" + def.period] }),
      problemNote(problems.filter(function (p) {
        return p.path === "" || p.path === "(root)" || p.path.indexOf("constraints") === 0 ||
          p.path === "title" || p.path === "period" || p.path === "sections";
      }))]);
    box.appendChild(formBox);
    var secs = el("div", { id: "fd-sections" });
    def.sections.forEach(function (s, si) {
      var isSel = selected && selected.s === si && selected.f === undefined;
      var head = el("div", { "class": "fd-section-head" }, [
        el("span", { "class": "fd-grip", text: "⠿", "aria-hidden": "true" }),
        el("span", { "class": "fd-main" }, [
          el("strong", { text: txt(s.title) || s.key }),
          el("code", { text: s.key }),
          s.repeat ? el("span", { "class": "fd-badge", text: S.repeating + " " + (s.repeat.min || 0) + "–" + (s.repeat.max || 1000) }) : null,
          s.visibleIf !== undefined ? el("span", { "class": "fd-badge fd-cond", title: JSON.stringify(s.visibleIf), text: conditionText(s.visibleIf) }) : null]),
        el("span", { "class": "fd-tools" }, [
          iconButton("↑", S.up, function () { if (si > 0) moveSection(si, si - 1); }),
          iconButton("↓", S.down, function () { if (si < def.sections.length - 1) moveSection(si, si + 2); }),
          iconButton("×", S["delete"], function () { def.sections.splice(si, 1); selected = null; changed(); })])]);
      var list = el("div", { "class": "fd-fields", "data-section": s.key });
      s.fields.forEach(function (f, fi) {
        var isF = selected && selected.s === si && selected.f === fi;
        var t = fieldType(f);
        var row = el("div", { "class": "fd-field" + (isF ? " fd-selected" : ""), "data-key": f.key, tabindex: "0",
          on: { click: function (e) { e.stopPropagation(); selected = { s: si, f: fi }; drawDesign(); drawProps(); } } }, [
          el("span", { "class": "fd-grip", text: "⠿", "aria-hidden": "true" }),
          el("span", { "class": "fd-main" }, [
            el("span", { "class": "fd-field-label", text: fieldLabel(f) + (f.required ? " *" : "") }),
            el("code", { text: f.key }),
            f.item ? el("span", { "class": "fd-code", text: f.item }) : null,
            el("span", { "class": "fd-meta", text: S["type_" + t] + (f.calc !== undefined ? " · " + S.calculated : "") }),
            f.visibleIf !== undefined ? el("span", { "class": "fd-badge fd-cond", title: JSON.stringify(f.visibleIf), text: conditionText(f.visibleIf) }) : null]),
          el("span", { "class": "fd-tools" }, [
            iconButton("↑", S.up, function () { if (fi > 0) insertField(si, fi - 1, { kind: "field", s: si, f: fi }); }),
            iconButton("↓", S.down, function () { if (fi < s.fields.length - 1) insertField(si, fi + 2, { kind: "field", s: si, f: fi }); }),
            iconButton("×", S["delete"], function () { s.fields.splice(fi, 1); selected = { s: si }; changed(); })]),
          problemNote(problemsAt("sections[" + si + "].fields[" + fi + "]"))]);
        draggable(row, { kind: "field", s: si, f: fi });
        list.appendChild(row);
      });
      if (!s.fields.length) list.appendChild(el("div", { "class": "fd-empty", text: S.drop_here }));
      fieldDropZone(list, si);
      var own = problems.filter(function (p) {
        var pre = "sections[" + si + "]";
        return (p.path === pre || p.path.indexOf(pre + ".") === 0) && p.path.indexOf(pre + ".fields[") !== 0;
      });
      var sec = el("section", { "class": "fd-section" + (s.repeat ? " fd-repeat" : "") + (isSel ? " fd-selected" : ""),
        "data-key": s.key, on: { click: function () { selected = { s: si }; drawDesign(); drawProps(); } } },
        [head, problemNote(own), list]);
      draggable(head, { kind: "section", s: si });
      sec.addEventListener("dragover", function (e) {
        if (!dragging || dragging.kind !== "section") return;
        e.preventDefault();
        clearMarks();
        var r = sec.getBoundingClientRect();
        sec.classList.add(e.clientY < r.top + r.height / 2 ? "fd-drop-before" : "fd-drop-after");
      });
      sec.addEventListener("drop", function (e) {
        var p = payloadOf(e);
        if (!p || p.kind !== "section") return;
        e.preventDefault();
        var r = sec.getBoundingClientRect();
        moveSection(p.s, e.clientY < r.top + r.height / 2 ? si : si + 1);
      });
      secs.appendChild(sec);
    });
    box.appendChild(secs);
    box.appendChild(el("div", { "class": "fd-actions" }, [
      el("button", { type: "button", "class": "button", id: "fd-add-section", text: "+ " + S.add_section,
        on: { click: function () { addSection(false); } } }),
      el("button", { type: "button", "class": "button", id: "fd-add-repeat", text: "+ " + S.add_repeat,
        on: { click: function () { addSection(true); } } })]));
  }
  function iconButton(label, title, fn) {
    return el("button", { type: "button", "class": "fd-icon", title: title, "aria-label": title, text: label,
      on: { click: function (e) { e.stopPropagation(); fn(); } } });
  }

  // --- properties (right) ---------------------------------------------------------------------------------------------
  function input(id, label, value, onchange, attrs) {
    var i = el("input", Object.assign({ id: id, value: value === undefined || value === null ? "" : value }, attrs || {}));
    i.addEventListener("change", function () { onchange(i.value); });
    return el("div", { "class": "fd-prop" }, [el("label", { "for": id, text: label }), i]);
  }
  function area(id, label, value, onchange, note) {
    var t = el("textarea", { id: id, rows: "3", spellcheck: "false" });
    t.value = value || "";
    var msg = el("div", { "class": "fd-prop-error", id: id + "-error" });
    t.addEventListener("change", function () { msg.textContent = onchange(t.value) || ""; });
    return el("div", { "class": "fd-prop" }, [el("label", { "for": id, text: label }), t, msg, note || null]);
  }
  function check(id, label, value, onchange) {
    var c = el("input", { type: "checkbox", id: id, checked: value ? "checked" : null });
    c.addEventListener("change", function () { onchange(c.checked); });
    return el("div", { "class": "fd-prop fd-check" }, [c, el("label", { "for": id, text: label })]);
  }
  function setText(obj, prop, langKey, value) {
    var t = Object.assign({}, obj[prop] || {});
    if (value.trim()) t[langKey] = value; else delete t[langKey];
    if (!t.zh && !t.en) delete obj[prop]; else obj[prop] = t;
  }
  function setNum(obj, prop, value) {
    if (value.trim() === "") delete obj[prop];
    else { var n = Number(value); obj[prop] = isFinite(n) ? n : value; }
  }
  function jsonProp(obj, prop) {
    return function (value) {
      if (value.trim() === "") { delete obj[prop]; changed(); return ""; }
      try { obj[prop] = JSON.parse(value); } catch (err) { return S.not_json + ": " + err.message; }
      changed();
      return "";
    };
  }
  function shown(v) { return v === undefined ? "" : JSON.stringify(v); }

  // --- the visibility condition: a builder for "field X <op> value", raw JSON Logic as the advanced option ----------
  var OPS = ["==", "!=", ">", ">=", "<", "<="];
  function simpleCondition(expr) {
    // {op: [{"var": key}, value]} with a scalar value, or null when the builder cannot show it
    if (!expr || typeof expr !== "object" || Array.isArray(expr)) return null;
    var ops = Object.keys(expr);
    if (ops.length !== 1 || OPS.indexOf(ops[0]) === -1) return null;
    var args = expr[ops[0]];
    if (!Array.isArray(args) || args.length !== 2 || !args[0] || typeof args[0] !== "object" ||
        Object.keys(args[0]).length !== 1 || typeof args[0]["var"] !== "string") return null;
    var v = args[1];
    if (v !== null && typeof v === "object") return null;
    return { key: args[0]["var"], op: ops[0], value: v };
  }
  var OP_SIGNS = { "==": "=", "!=": "≠", ">": ">", ">=": "≥", "<": "<", "<=": "≤" };
  function conditionText(expr) {
    // the badge: "if 燃料种类 = 原煤" for a simple condition, "if …" for an advanced one
    var c = simpleCondition(expr);
    if (!c) return S.cond_if + " …";
    var target = null;
    def.sections.forEach(function (s) { s.fields.forEach(function (f) { if (f.key === c.key) target = f; }); });
    var value = c.value === null ? "∅" : String(c.value);
    if (target) fieldOptions(target).forEach(function (o) { if (String(o.value) === value) value = txt(o.label); });
    return S.cond_if + " " + (target ? fieldLabel(target) : c.key) + " " + OP_SIGNS[c.op] + " " + value;
  }
  function conditionFields(si, self) {
    // what a condition may name: the fields of the form's plain sections, and in a repeating section its row's
    var out = [];
    def.sections.forEach(function (s, i) {
      if (!self && i === si) return;  // a section's condition looks outside it
      if (s.repeat && !(self && i === si)) return;  // a row's fields are seen from that row only
      s.fields.forEach(function (f) { if (f !== self) out.push(f); });
    });
    return out;
  }
  function fieldOptions(f) {
    var info = f.item && items[f.item];
    return info && info.options.length ? info.options : f.options || [];
  }
  function condition(obj, si, self) {
    var simple = simpleCondition(obj.visibleIf), advanced = obj.visibleIf !== undefined && !simple;
    var fields = conditionFields(si, self), byKey = {};
    fields.forEach(function (f) { byKey[f.key] = f; });
    if (simple && !byKey[simple.key]) { advanced = true; simple = null; }
    var fieldSel = el("select", { id: "fd-c-field", "aria-label": S.cond_field },
      [el("option", { value: "", text: advanced ? S.cond_advanced : S.cond_always })].concat(fields.map(function (f) {
        return el("option", { value: f.key, text: fieldLabel(f) + " (" + f.key + ")",
          selected: simple && simple.key === f.key ? "selected" : null });
      })));
    var opSel = el("select", { id: "fd-c-op", "aria-label": S.cond_op }, OPS.map(function (op) {
      return el("option", { value: op, text: S["op_" + OPS.indexOf(op)], selected: simple && simple.op === op ? "selected" : null });
    }));
    var target = simple && byKey[simple.key], valueBox, options = target ? fieldOptions(target) : [];
    var current = simple && simple.value !== null ? String(simple.value) : "";
    if (target && fieldType(target) === "enum" && options.length) {
      valueBox = el("select", { id: "fd-c-value", "aria-label": S.cond_value },
        [el("option", { value: "", text: S.select })].concat(options.map(function (o) {
          return el("option", { value: o.value, text: txt(o.label), title: o.value, selected: current === String(o.value) ? "selected" : null });
        })));
    } else {
      valueBox = el("input", { id: "fd-c-value", "aria-label": S.cond_value, value: current,
        inputmode: target && fieldType(target) === "number" ? "decimal" : null });
    }
    function apply() {
      var key = fieldSel.value;
      if (!key) { if (!advanced) delete obj.visibleIf; changed(); return; }
      var f = byKey[key], raw = valueBox.value.trim(), value = raw;
      if (fieldType(f) === "number" && raw !== "" && isFinite(Number(raw))) value = Number(raw);
      var expr = {};
      expr[opSel.value] = [{ "var": key }, value];
      obj.visibleIf = expr;
      changed();
    }
    fieldSel.addEventListener("change", function () {
      if (fieldSel.value && !valueBox.value && byKey[fieldSel.value]) {
        // a new field: the value control follows its type, so start over with the field chosen
        var e = {}; e[opSel.value] = [{ "var": fieldSel.value }, null];
        obj.visibleIf = e; changed(); return;
      }
      apply();
    });
    opSel.addEventListener("change", apply);
    valueBox.addEventListener("change", apply);
    var showRest = !!simple;
    var builder = el("div", { "class": "fd-cond-builder" }, [
      el("div", { "class": "fd-cond-row" }, [el("span", { "class": "fd-cond-word", text: S.cond_show_when }), fieldSel]),
      showRest ? el("div", { "class": "fd-cond-row" }, [opSel, valueBox]) : null]);
    var json = area("fd-p-visible", S.visible_if, shown(obj.visibleIf), jsonProp(obj, "visibleIf"),
      el("div", { "class": "fd-meta", text: S.example + ' {"and": [{"==": [{"var": "kind"}, "raw_coal"]}, {">": [{"var": "amount"}, 0]}]}' }));
    var details = el("details", { "class": "fd-advanced", id: "fd-c-advanced" }, [el("summary", { text: S.cond_json }), json]);
    if (advanced) details.open = true;
    return el("div", { "class": "fd-prop fd-condition" }, [
      el("label", { "for": "fd-c-field", text: S.condition }), builder,
      advanced ? el("p", { "class": "fd-meta", text: S.cond_is_advanced }) : null, details]);
  }

  function drawProps() {
    var pane = document.getElementById("fd-props");
    pane.textContent = "";
    pane.appendChild(el("h2", { text: S.properties }));
    if (!selected) { pane.appendChild(el("p", { "class": "fd-meta", text: S.nothing_selected })); return; }
    if (selected.form) {
      pane.appendChild(el("h3", { text: S.form_level }));
      pane.appendChild(input("fd-p-title-zh", S.title_zh, (def.title || {}).zh, function (v) { setText(def, "title", "zh", v); changed(); }));
      pane.appendChild(input("fd-p-title-en", S.title_en, (def.title || {}).en, function (v) { setText(def, "title", "en", v); changed(); }));
      var sel = el("select", { id: "fd-p-period" }, cfg.periods.map(function (p) {
        return el("option", { value: p, selected: def.period === p ? "selected" : null, text: S["period_" + p] });
      }));
      sel.addEventListener("change", function () { def.period = sel.value; changed(); });
      pane.appendChild(el("div", { "class": "fd-prop" }, [el("label", { "for": "fd-p-period", text: S.period }), sel]));
      pane.appendChild(area("fd-p-constraints", S.constraints, def.constraints ? JSON.stringify(def.constraints, null, 1) : "",
        jsonProp(def, "constraints")));
      return;
    }
    var s = def.sections[selected.s];
    if (!s) { selected = null; drawProps(); return; }
    var f = selected.f !== undefined ? s.fields[selected.f] : null;
    var obj = f || s;
    function keyChange(v) { obj.key = v.trim(); changed(); }
    if (!f) {
      pane.appendChild(el("h3", { text: txt(s.title) || s.key }));
      pane.appendChild(input("fd-p-key", S.key, s.key, keyChange));
      pane.appendChild(input("fd-p-label-zh", S.title_zh, (s.title || {}).zh, function (v) { setText(s, "title", "zh", v); changed(); }));
      pane.appendChild(input("fd-p-label-en", S.title_en, (s.title || {}).en, function (v) { setText(s, "title", "en", v); changed(); }));
      pane.appendChild(input("fd-p-help-zh", S.help_zh, (s.help || {}).zh, function (v) { setText(s, "help", "zh", v); changed(); }));
      pane.appendChild(input("fd-p-help-en", S.help_en, (s.help || {}).en, function (v) { setText(s, "help", "en", v); changed(); }));
      pane.appendChild(check("fd-p-repeat", S.repeating, !!s.repeat, function (on) {
        if (on) s.repeat = { min: 0, max: 50 }; else delete s.repeat;
        changed();
      }));
      if (s.repeat) {
        pane.appendChild(input("fd-p-repeat-min", S.repeat_min, s.repeat.min, function (v) { setNum(s.repeat, "min", v); changed(); }, { type: "number", min: "0" }));
        pane.appendChild(input("fd-p-repeat-max", S.repeat_max, s.repeat.max, function (v) { setNum(s.repeat, "max", v); changed(); }, { type: "number", min: "1" }));
      }
      pane.appendChild(condition(s, selected.s, null));
      pane.appendChild(area("fd-p-constraints", S.constraints, s.constraints ? JSON.stringify(s.constraints, null, 1) : "",
        jsonProp(s, "constraints")));
      return;
    }
    var t = fieldType(f), info = f.item && items[f.item];
    pane.appendChild(el("h3", { text: fieldLabel(f) }));
    if (info) pane.appendChild(el("p", { "class": "fd-meta", text: S.item + ": " + info.code + " · " + name(info) +
      (info.unit ? " · " + info.unit : "") + " · " + S["type_" + t] }));
    else pane.appendChild(el("p", { "class": "fd-meta", text: S.type + ": " + S["type_" + t] }));
    pane.appendChild(input("fd-p-key", S.key, f.key, keyChange));
    var ph = info ? { zh: info.name_zh, en: info.name_en } : {};
    pane.appendChild(input("fd-p-label-zh", S.label_zh, (f.label || {}).zh, function (v) { setText(f, "label", "zh", v); changed(); }, { placeholder: ph.zh }));
    pane.appendChild(input("fd-p-label-en", S.label_en, (f.label || {}).en, function (v) { setText(f, "label", "en", v); changed(); }, { placeholder: ph.en }));
    pane.appendChild(input("fd-p-help-zh", S.help_zh, (f.help || {}).zh, function (v) { setText(f, "help", "zh", v); changed(); }));
    pane.appendChild(input("fd-p-help-en", S.help_en, (f.help || {}).en, function (v) { setText(f, "help", "en", v); changed(); }));
    pane.appendChild(check("fd-p-required", S.required, f.required, function (on) {
      if (on) f.required = true; else delete f.required;
      changed();
    }));
    if (t === "number") {
      pane.appendChild(input("fd-p-min", S.min, f.min, function (v) { setNum(f, "min", v); changed(); }, { type: "number", step: "any" }));
      pane.appendChild(input("fd-p-max", S.max, f.max, function (v) { setNum(f, "max", v); changed(); }, { type: "number", step: "any" }));
      pane.appendChild(input("fd-p-step", S.step, f.step, function (v) { setNum(f, "step", v); changed(); }, { type: "number", step: "any", placeholder: info ? info.precision : "" }));
      if (!info) pane.appendChild(input("fd-p-unit", S.unit, f.unit, function (v) { if (v.trim()) f.unit = v.trim(); else delete f.unit; changed(); }));
    }
    if (t === "text") {
      pane.appendChild(input("fd-p-maxlength", S.max_length, f.maxLength, function (v) { setNum(f, "maxLength", v); changed(); }, { type: "number", min: "1" }));
      pane.appendChild(check("fd-p-unique", S.unique, f.unique, function (on) { if (on) f.unique = true; else delete f.unique; changed(); }));
    }
    if (t === "enum" && !info) {
      var lines = (f.options || []).map(function (o) { return [o.value, o.label.zh, o.label.en || ""].join("|").replace(/\|$/, ""); });
      pane.appendChild(area("fd-p-options", S.options, lines.join("\n"), function (v) {
        f.options = v.split("\n").map(function (l) { return l.trim(); }).filter(Boolean).map(function (l) {
          var p = l.split("|"), label = { zh: (p[1] || p[0]).trim() };
          if (p[2] && p[2].trim()) label.en = p[2].trim();
          return { value: p[0].trim(), label: label };
        });
        if (!f.options.length) delete f.options;
        changed();
        return "";
      }));
    }
    pane.appendChild(condition(f, selected.s, f));
    pane.appendChild(area("fd-p-calc", S.calc, shown(f.calc), jsonProp(f, "calc")));
    pane.appendChild(problemNote(problemsAt("sections[" + selected.s + "].fields[" + selected.f + "]")) || el("span"));
  }

  // --- preview --------------------------------------------------------------------------------------------------------
  var pvValues = {};
  function drawPreview() {
    var box = document.getElementById("fd-preview"), r = resolved();
    box.textContent = "";
    box.appendChild(el("p", { "class": "fd-meta", text: S.preview_note }));
    box.appendChild(el("h2", { text: txt(r.title) + " · " + S["period_" + r.period] }));
    r.sections.forEach(function (s) {
      var sec = el("fieldset", { "class": "fd-pv-section module", "data-path": s.key }, [el("h2", { text: txt(s.title) })]);
      if (s.help) sec.appendChild(el("p", { "class": "help", text: txt(s.help) }));
      if (s.repeat) {
        if (!Array.isArray(pvValues[s.key])) {
          pvValues[s.key] = [];
          for (var i = 0; i < Math.max(s.repeat.min || 0, 1); i++) pvValues[s.key].push({});
        }
        var table = el("table", { "class": "fd-pv-rows" }, [el("thead", {}, [el("tr", {}, s.fields.map(function (f) {
          return el("th", { text: txt(f.label) + (f.unit ? " (" + f.unit + ")" : "") + (f.required ? " *" : "") });
        }).concat([el("th")]))])]);
        var body = el("tbody");
        pvValues[s.key].forEach(function (row, ri) {
          var tr = el("tr");
          s.fields.forEach(function (f) {
            tr.appendChild(el("td", { "data-path": s.key + "[" + ri + "]." + f.key }, [control(f, row, s.key + "-" + ri)]));
          });
          tr.appendChild(el("td", {}, [iconButton("×", S.remove_row, function () { pvValues[s.key].splice(ri, 1); drawPreview(); })]));
          body.appendChild(tr);
        });
        table.appendChild(body);
        sec.appendChild(table);
        sec.appendChild(el("button", { type: "button", "class": "button fd-pv-add-row", text: "+ " + S.add_row,
          on: { click: function () { pvValues[s.key].push({}); drawPreview(); } } }));
      } else {
        s.fields.forEach(function (f) {
          sec.appendChild(el("div", { "class": "form-row fd-pv-field", "data-path": f.key }, [
            el("label", { "for": "pv-" + f.key, text: txt(f.label) + (f.required ? " *" : "") }),
            control(f, pvValues, ""), f.unit ? el("span", { "class": "fd-unit", text: " " + f.unit }) : null,
            f.help ? el("div", { "class": "help", text: txt(f.help) }) : null]));
        });
      }
      box.appendChild(sec);
    });
    refreshPreview();
  }
  function control(f, store, suffix) {
    var id = "pv-" + f.key + (suffix ? "-" + suffix : ""), c;
    if (f.type === "enum") {
      c = el("select", { id: id, name: f.key }, [el("option", { value: "", text: S.select })].concat((f.options || []).map(function (o) {
        return el("option", { value: o.value, text: txt(o.label), selected: store[f.key] === o.value ? "selected" : null });
      })));
    } else if (f.type === "attachment") {
      c = el("input", { id: id, name: f.key, type: "file", disabled: "disabled" });
    } else {
      var type = { number: "text", date: "date", datetime: "text", text: "text" }[f.type] || "text";
      c = el("input", { id: id, name: f.key, type: type, inputmode: f.type === "number" ? "decimal" : null,
        placeholder: f.type === "datetime" ? "2026-01-31T08:00+08:00" : null });
      c.value = store[f.key] === undefined || store[f.key] === null ? "" : store[f.key];
    }
    if (f.calc !== undefined) { c.readOnly = true; c.classList.add("fd-calc"); if (c.tagName === "SELECT") c.disabled = true; }
    c.addEventListener("input", function () { store[f.key] = c.value; refreshPreview(); });
    c.addEventListener("change", function () { store[f.key] = c.value; refreshPreview(); });
    return c;
  }
  function refreshPreview() {
    var r = resolved(), out;
    try { out = window.FormLogic.evaluate(r, pvValues); } catch (err) { return; }
    var hidden = {};
    out.hidden.forEach(function (p) { hidden[p] = true; });
    document.querySelectorAll("#fd-preview [data-path]").forEach(function (n) {
      n.hidden = !!hidden[n.getAttribute("data-path")];
    });
    r.sections.forEach(function (s) {
      s.fields.forEach(function (f) {
        if (f.calc === undefined) return;
        if (s.repeat) {
          (out.values[s.key] || []).forEach(function (row, ri) {
            var n = document.getElementById("pv-" + f.key + "-" + s.key + "-" + ri);
            if (n) n.value = row[f.key] === undefined || row[f.key] === null ? "" : row[f.key];
          });
        } else {
          var n = document.getElementById("pv-" + f.key);
          if (n) n.value = out.values[f.key] === undefined || out.values[f.key] === null ? "" : out.values[f.key];
        }
      });
    });
  }

  // --- server ---------------------------------------------------------------------------------------------------------
  function status(message, kind) {
    var s = document.getElementById("fd-status");
    s.textContent = message;
    s.className = kind ? "fd-status-" + kind : "";
  }
  function post(url, body) {
    var token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json",
      "X-CSRFToken": token }, body: body === undefined ? "{}" : JSON.stringify(body) })
      .then(function (r) {
        return r.json().catch(function () { return { ok: false, problems: [], status: r.status }; })
          .then(function (data) { data.status = r.status; return data; });
      });
  }
  function showProblems(list) {
    problems = list || [];
    var box = document.getElementById("fd-problems");
    box.textContent = "";
    box.hidden = !problems.length;
    if (problems.length) {
      box.appendChild(el("strong", { text: S.problems + " (" + problems.length + ")" }));
      box.appendChild(el("ul", {}, problems.map(function (p) {
        return el("li", { "data-code": p.code }, [el("code", { text: p.code }), " ", el("span", { text: (p.path ? p.path + ": " : "") + p.message })]);
      })));
    }
    drawDesign();
    drawProps();
  }
  function answered(data, okMessage) {
    if (data.ok) { showProblems([]); status(okMessage, "ok"); return true; }
    showProblems(data.problems);
    status(data.problems && data.problems.length ? S.problems + ": " + data.problems.length :
      S.request_failed.replace("%(status)s", data.status), "error");
    return false;
  }
  function save() {
    return post(cfg.urls.save, { definition: def }).then(function (data) {
      if (answered(data, S.saved)) dirty = false;
      return data.ok;
    });
  }

  function tab(which) {
    ["design", "preview", "json"].forEach(function (t) {
      document.getElementById("fd-tab-" + t).setAttribute("aria-selected", String(t === which));
      document.getElementById("fd-" + t).hidden = t !== which;
    });
    if (which === "preview") drawPreview();
  }

  function start() {
    cfg = JSON.parse(document.getElementById("fd-config").textContent);
    S = cfg.strings;
    lang = cfg.lang;
    def = clone(cfg.definition);
    if (!Array.isArray(def.sections)) def.sections = [];
    def.sections.forEach(function (s) { if (!Array.isArray(s.fields)) s.fields = []; });
    cfg.catalog.forEach(function (g) { g.items.forEach(function (it) { items[it.code] = it; }); });
    drawCatalog();
    drawDesign();
    drawProps();
    document.getElementById("fd-json").textContent = JSON.stringify(def, null, 2);
    document.getElementById("fd-tab-design").addEventListener("click", function () { tab("design"); });
    document.getElementById("fd-tab-preview").addEventListener("click", function () { tab("preview"); });
    document.getElementById("fd-tab-json").addEventListener("click", function () { tab("json"); });
    document.getElementById("fd-check").addEventListener("click", function () {
      post(cfg.urls.check, { definition: def }).then(function (data) { answered(data, S.checked_ok); });
    });
    document.getElementById("fd-save").addEventListener("click", save);
    document.getElementById("fd-publish").addEventListener("click", function () {
      save().then(function (ok) {
        if (!ok) return;
        post(cfg.urls.publish).then(function (data) {
          if (answered(data, S.published.replace("%(number)s", data.number).replace("%(hash)s", (data.content_hash || "").slice(0, 12) + "…"))) {
            document.getElementById("fd-current").textContent = S.current.replace("%(number)s", data.number)
              .replace("%(hash)s", data.content_hash);
            document.getElementById("fd-current").setAttribute("data-number", data.number);
          }
        });
      });
    });
    window.addEventListener("beforeunload", function (e) { if (dirty) { e.preventDefault(); e.returnValue = ""; } });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
}());
