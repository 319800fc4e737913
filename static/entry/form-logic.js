/* CarbonPark: a form's conditions and calculated fields in the browser, the same walk as the
   server's apps/entry/validation.py, over the vendored json-logic-js (static/vendor/json-logic/logic.js).

   FormLogic.evaluate(definition, values) -> {values, hidden}
     values: what the server's validate_values keeps for valid input: visible, non-empty entered values with
             their types settled and calculated fields computed; repeat sections as lists of rows;
     hidden: paths of hidden fields and sections ("coal_only", "fuels[2].ncv", "coal_lots").
   Order: fields in document order; a field's visibleIf and calc see the final values of the fields above it
   (hidden ones as null) and the entered values of those below. Inside a repeat section a row's expressions see
   the form's values with the row's own fields over them. The server stays the judge of errors: an entered
   value this file cannot read (a number that is no number) is null here, and the server answers why. */
(function (root) {
  "use strict";
  var DECIMAL = /^[+-]?\d{1,40}(?:\.\d{1,40})?$/;
  var DATE = /^\d{4}-\d{2}-\d{2}$/;
  var DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})$/;
  var ATTACHMENT = /^[A-Za-z0-9_-]{1,64}$/;

  function empty(raw) {
    return raw === null || raw === undefined || (typeof raw === "string" && raw.trim() === "");
  }

  function options(f) {
    return (f.options || []).map(function (o) { return o.value; });
  }

  function validDate(text) {
    var d = new Date(text + "T00:00:00Z");
    return !isNaN(d.getTime()) && d.toISOString().slice(0, 10) === text;
  }

  // An entered value with its type settled, or null (empty, or unreadable: the server names the error).
  function coerce(f, raw) {
    if (empty(raw)) return null;
    switch (f.type) {
      case "number": {
        var n = null;
        if (typeof raw === "number") n = raw;
        else if (typeof raw === "string" && DECIMAL.test(raw.trim())) n = Number(raw.trim());
        if (n === null || !isFinite(n) || Math.abs(n) > 1e300) return null;
        if (f.min !== undefined && n < f.min) return null;
        if (f.max !== undefined && n > f.max) return null;
        return n;
      }
      case "enum":
        return typeof raw === "string" && options(f).indexOf(raw) !== -1 ? raw : null;
      case "date":
        return typeof raw === "string" && DATE.test(raw.trim()) && validDate(raw.trim()) ? raw.trim() : null;
      case "datetime":
        return typeof raw === "string" && DATETIME.test(raw.trim()) ? raw.trim() : null;
      case "attachment":
        if (typeof raw === "number" && raw > 0 && Math.floor(raw) === raw) return String(raw);
        return typeof raw === "string" && ATTACHMENT.test(raw) ? raw : null;
      default:
        return typeof raw === "string" && raw.indexOf("\u0000") === -1 &&
          raw.length <= (f.maxLength || 2000) ? raw : null;
    }
  }

  function apply(logic, data) {
    try {
      var r = root.jsonLogic.apply(logic, data);
      return r === undefined ? null : JSON.parse(JSON.stringify(r)); // Infinity, NaN -> null, as the server
    } catch (e) {
      return null;
    }
  }

  function calcResult(f, v) {
    if (v === null || v === undefined) return null;
    if (f.type === "number") return typeof v === "number" ? v : null;
    if (f.type === "text") return typeof v === "string" ? v : (typeof v === "object" ? null : String(v));
    if (f.type === "date") return typeof v === "string" && DATE.test(v) ? v : null;
    if (f.type === "enum") return typeof v === "string" && options(f).indexOf(v) !== -1 ? v : null;
    return null;
  }

  function isRepeat(s) {
    return s.repeat !== undefined && s.repeat !== null;
  }

  function evaluate(definition, values) {
    values = values && typeof values === "object" && !Array.isArray(values) ? values : {};
    var sections = definition.sections || [];
    var data = {}, rowsOf = {}, hidden = [], out = {};
    sections.forEach(function (s) {
      if (isRepeat(s)) {
        var raw = values[s.key];
        var max = Math.min(s.repeat.max || 1000, 1000);
        var rows = Array.isArray(raw) && raw.length <= max ? raw : [];
        rowsOf[s.key] = rows.map(function (row) {
          var r = {};
          row = row && typeof row === "object" && !Array.isArray(row) ? row : {};
          s.fields.forEach(function (f) { r[f.key] = coerce(f, row[f.key]); });
          return r;
        });
        data[s.key] = rowsOf[s.key].map(function (r) { return Object.assign({}, r); });
      } else {
        s.fields.forEach(function (f) { data[f.key] = coerce(f, values[f.key]); });
      }
    });

    function field(f, path, data, kept) {
      if (f.visibleIf !== undefined && !root.jsonLogic.truthy(apply(f.visibleIf, data))) {
        data[f.key] = null;
        hidden.push(path);
        return;
      }
      if (f.calc !== undefined) data[f.key] = calcResult(f, apply(f.calc, data));
      if (data[f.key] !== null) kept[f.key] = data[f.key];
    }

    sections.forEach(function (s) {
      var visible = s.visibleIf === undefined || root.jsonLogic.truthy(apply(s.visibleIf, data));
      if (isRepeat(s)) {
        if (!visible) {
          data[s.key] = [];
          hidden.push(s.key);
          return;
        }
        var finals = [];
        out[s.key] = rowsOf[s.key].map(function (row, i) {
          var rdata = Object.assign({}, data, row), kept = {};
          s.fields.forEach(function (f) { field(f, s.key + "[" + i + "]." + f.key, rdata, kept); });
          var fin = {};
          s.fields.forEach(function (f) { fin[f.key] = rdata[f.key]; });
          finals.push(fin);
          return kept;
        });
        data[s.key] = finals;
        return;
      }
      s.fields.forEach(function (f) {
        if (!visible) {
          data[f.key] = null;
          hidden.push(f.key);
          return;
        }
        field(f, f.key, data, out);
      });
    });
    return {values: out, hidden: hidden};
  }

  root.FormLogic = {evaluate: evaluate, coerce: coerce};
}(this));
