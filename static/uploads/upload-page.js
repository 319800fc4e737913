/* The upload page (templates/admin/uploads/page.html, apps/uploads/portal.py; issue #11 item 2, R-7.2.2).
 *
 * Each file dropped or chosen: its name checked against the §7 rule (the same rule as
 * apps/batch/parsers/names.py; the server checks it again at creation), its MD5 computed in pieces
 * (SparkMD5, R-8.4.2.2), then sent with tus-js-client to /api/v1/uploads/ in chunks: pausable, resumed
 * from the server's offset after a dropped connection (retries, and again when the browser is back
 * online). Once the last byte is in, GET /api/v1/uploads/{id} is polled for the load: its progress,
 * then the counts and the rejection report, or the file-level error.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("upload-config").textContent);
  var T = JSON.parse(document.getElementById("upload-texts").textContent);
  var zh = config.lang !== "en";

  /* ---- the §7 file-name rule (mirror of apps/batch/parsers/names.py) ------------------------------ */
  var NAME_RE = /^([A-Za-z0-9_-]{2,32})_([A-Z]{2,3})_([0-9Q]{4,8})_([0-9]{14})_([0-9]{1,6})\.([A-Za-z]{3,4})(?:\.(gz|zip))?(\.enc)?$/i;
  var PERIOD_RE = /^(?:(\d{4})(?:(\d{2})(\d{2})?|Q([1-4]))?)$/;
  var CATEGORIES = ["CS", "CK", "CO", "MIX"];
  var FORMATS = ["csv", "xml", "xlsx"];

  function format(text, params) {
    return text.replace(/\{\{|\}\}|\{(\w+)\}/g, function (m, key) {
      if (m === "{{") { return "{"; }
      if (m === "}}") { return "}"; }
      return Object.prototype.hasOwnProperty.call(params, key) ? String(params[key]) : m;
    });
  }

  function validDate(y, m, d, hh, mm, ss) {
    var t = new Date(Date.UTC(y, m - 1, d, hh || 0, mm || 0, ss || 0));
    return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d &&
      t.getUTCHours() === (hh || 0) && t.getUTCMinutes() === (mm || 0) && t.getUTCSeconds() === (ss || 0);
  }

  function bad(name, en, zhText) {
    return {code: "E9101", message: format(T.E9101, {name: name.slice(0, 120), detail: en, detail_zh: zhText})};
  }

  /* null when ``name`` follows the rule and belongs to ``park``; else {code, message}. */
  function checkName(name, park) {
    if (typeof name !== "string" || /[\/\\\u0000]/.test(name)) {
      return bad(String(name), "a bare file name is expected", "应为不含路径的文件名");
    }
    var m = NAME_RE.exec(name);
    if (!m) { return bad(name, "its parts cannot be told apart", "无法分辨各组成部分"); }
    var category = m[2], period = m[3], stamp = m[4], fmt = m[6].toLowerCase();
    if (CATEGORIES.indexOf(category) < 0) {
      return bad(name, "the category " + category + " is not CS, CK, CO or MIX",
        "类别 " + category + " 不是 CS、CK、CO 或 MIX");
    }
    var p = PERIOD_RE.exec(period), ok = p !== null;
    if (ok && p[3]) {
      ok = validDate(+p[1], +p[2], +p[3]);
    } else if (ok && p[2]) {
      ok = +p[2] >= 1 && +p[2] <= 12;
    }
    if (!ok) {
      return bad(name, "the period " + period + " is not yyyyMMdd, yyyyMM, yyyyQn or yyyy",
        "期间 " + period + " 不是 yyyyMMdd、yyyyMM、yyyyQn 或 yyyy");
    }
    var s = stamp;
    if (!validDate(+s.slice(0, 4), +s.slice(4, 6), +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12),
      +s.slice(12, 14))) {
      return bad(name, stamp + " is not a time yyyyMMddHHmmss", stamp + " 不是 yyyyMMddHHmmss 格式的时间");
    }
    if (FORMATS.indexOf(fmt) < 0) {
      return bad(name, "the extension ." + fmt + " is not .csv, .xml or .xlsx",
        "扩展名 ." + fmt + " 不是 .csv、.xml 或 .xlsx");
    }
    if (park && m[1] !== park) {
      return {code: "E9102", message: format(T.E9102, {found: m[1], expected: park, where: "file name",
        where_zh: "文件名"})};
    }
    return null;
  }
  window.CarbonParkUploadNames = {check: checkName};

  /* ---- the whole file's MD5, in pieces ------------------------------------------------------------ */
  var MD5_PIECE = 4 * 1024 * 1024;

  function md5Of(file, onProgress) {
    var spark = new SparkMD5.ArrayBuffer();
    var offset = 0;
    function next() {
      if (offset >= file.size) { return Promise.resolve(spark.end()); }
      var piece = file.slice(offset, Math.min(offset + MD5_PIECE, file.size));
      return piece.arrayBuffer().then(function (buf) {
        spark.append(buf);
        offset += buf.byteLength;
        onProgress(file.size ? offset / file.size : 1);
        return next();
      });
    }
    return next();
  }

  /* ---- the queue ---------------------------------------------------------------------------------- */
  var queue = document.getElementById("upload-queue");
  var body = queue.querySelector("tbody");
  var csrf = document.querySelector("#upload-form [name=csrfmiddlewaretoken]").value;
  var parkSelect = document.getElementById("upload-park");
  var items = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function size(n) {
    if (n >= 1048576) { return (n / 1048576).toFixed(1) + " MB"; }
    if (n >= 1024) { return (n / 1024).toFixed(1) + " KB"; }
    return n + " B";
  }

  function Item(file, park) {
    this.file = file;
    this.park = park;
    this.upload = null;
    this.state = "waiting";
    this.row = el("tr", "upload-item");
    this.row.dataset.name = file.name;
    this.row.appendChild(el("td", "name", file.name));
    this.row.appendChild(el("td", "nowrap", size(file.size)));
    var cell = el("td", "nowrap");
    this.bar = el("progress");
    this.bar.max = 100;
    this.bar.value = 0;
    this.pct = el("span", "pct", "0 %");
    cell.appendChild(this.bar);
    cell.appendChild(this.pct);
    this.row.appendChild(cell);
    var stateCell = el("td", "state");
    this.status = el("div", "status", T.waiting);
    this.outcome = el("div", "outcome");
    stateCell.appendChild(this.status);
    stateCell.appendChild(this.outcome);
    this.row.appendChild(stateCell);
    var actions = el("td", "nowrap");
    this.pauseButton = el("button", "pause button", T.pause);
    this.pauseButton.type = "button";
    this.pauseButton.hidden = true;
    var self = this;
    this.pauseButton.addEventListener("click", function () { self.toggle(); });
    actions.appendChild(this.pauseButton);
    this.row.appendChild(actions);
    body.appendChild(this.row);
    queue.hidden = false;
  }

  Item.prototype.set = function (state, text, cls) {
    this.state = state;
    this.row.dataset.state = state;
    this.status.textContent = text;
    this.status.className = "status" + (cls ? " " + cls : "");
  };

  Item.prototype.progress = function (fraction) {
    var pct = Math.floor(fraction * 100);
    this.bar.value = pct;
    this.pct.textContent = pct + " %";
  };

  Item.prototype.refuse = function (error) {
    this.set("refused", T.refused, "refused");
    this.outcome.textContent = error.code + " " + error.message;
    this.outcome.className = "outcome refused";
    this.row.dataset.code = error.code;
  };

  Item.prototype.start = function () {
    var self = this;
    var problem = checkName(this.file.name, this.park);
    if (!problem && this.file.size > config.maxBytes) {
      problem = {code: "E9003", message: format(T.E9003, {length: this.file.size, limit: config.maxBytes})};
    }
    if (problem) { this.refuse(problem); return; }
    this.set("md5", format(T.md5, {pct: 0}));
    md5Of(this.file, function (f) { self.status.textContent = format(T.md5, {pct: Math.floor(f * 100)}); })
      .then(function (md5) { self.md5 = md5; self.send(); })
      .catch(function (err) { self.set("error", T.error + ": " + err, "refused"); });
  };

  function statusOf(err) {
    return err && err.originalResponse ? err.originalResponse.getStatus() : 0;
  }

  function bodyError(err) {
    try {
      var data = JSON.parse(err.originalResponse.getBody());
      if (data && data.code) { return data; }
    } catch (e) { /* not JSON: a network error */ }
    return null;
  }

  Item.prototype.send = function () {
    var self = this;
    var file = this.file;
    this.set("sending", T.sending);
    this.pauseButton.hidden = false;
    this.upload = new tus.Upload(file, {
      endpoint: config.endpoint,
      chunkSize: config.chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: {filename: file.name, park: this.park, md5: this.md5},
      headers: {"X-CSRFToken": csrf},
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      fingerprint: function (f) {
        return Promise.resolve(["carbonpark", self.park, f.name, f.size, f.lastModified, self.md5].join("-"));
      },
      onShouldRetry: function (err) {
        var status = statusOf(err);
        var retry = !(status >= 400 && status < 500) || status === 409 || status === 423;
        if (retry) { self.set("retrying", T.retrying); }
        return retry;
      },
      onProgress: function (sent, total) {
        if (self.state === "retrying") { self.set("sending", T.sending); }
        self.progress(total ? sent / total : 1);
      },
      onError: function (err) {
        var data = bodyError(err);
        if (data) {
          self.pauseButton.hidden = true;
          self.refuse(data);
          return;
        }
        self.set("error", T.error + " (" + (err && err.message ? err.message.split("\n")[0] : err) + ")", "refused");
      },
      onSuccess: function () {
        self.pauseButton.hidden = true;
        self.progress(1);
        self.id = self.upload.url.split("/").pop();
        self.row.dataset.uploadId = self.id;
        self.set("received", T.received);
        self.poll();
      }
    });
    this.upload.findPreviousUploads().then(function (previous) {
      if (previous.length) { self.upload.resumeFromPreviousUpload(previous[0]); }
      self.upload.start();
    });
  };

  Item.prototype.toggle = function () {
    if (!this.upload) { return; }
    if (this.state === "paused") {
      this.pauseButton.textContent = T.pause;
      this.set("sending", T.sending);
      this.upload.start();  // HEAD for the server's offset, then on from there
    } else if (this.state === "sending" || this.state === "retrying") {
      this.upload.abort();  // keeps the upload on the server: resumable
      this.pauseButton.textContent = T.resume;
      this.set("paused", T.paused);
    }
  };

  Item.prototype.poll = function () {
    var self = this;
    fetch(this.upload.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) { self.show(data); })
      .catch(function () { setTimeout(function () { self.poll(); }, config.pollMs * 3); });
  };

  Item.prototype.show = function (data) {
    var self = this;
    var load = data.load || {};
    if (data.state === "received") {
      this.set("received", T.received);
    } else if (data.state === "loading") {
      this.set("loading", format(T.loading, {rows: load.rows || 0}));
    }
    if (data.state === "received" || data.state === "loading" || data.state === "receiving") {
      setTimeout(function () { self.poll(); }, config.pollMs);
      return;
    }
    this.outcome.textContent = "";
    if (data.state === "loaded") {
      this.set("loaded", T.loaded, "done");
      var counts = el("div", "counts", format(T.counts, load));
      counts.dataset.accepted = load.accepted;
      counts.dataset.duplicates = load.duplicates;
      counts.dataset.rejected = load.rejected;
      this.outcome.appendChild(counts);
    } else {
      this.set(data.state, data.state === "expired" ? T.expired : T.failed, "file-error");
    }
    if (data.error) {
      this.row.dataset.code = data.error.code;
      this.outcome.appendChild(el("div", "file-error", data.error.code + " " + data.error.message));
    }
    var links = el("div", "reports");
    if (data.report && data.report.csv) {
      var a = el("a", "report-csv", T.reportCsv);
      a.href = data.report.csv;
      links.appendChild(a);
    }
    if (data.report && data.report.xlsx) {
      if (links.firstChild) { links.appendChild(document.createTextNode(" · ")); }
      var b = el("a", "report-xlsx", T.reportXlsx);
      b.href = data.report.xlsx;
      links.appendChild(b);
    }
    if (links.firstChild) { this.outcome.appendChild(links); }
    refreshRecent();
  };

  /* The recent uploads and loads below the queue, fetched again once a file is done. */
  function refreshRecent() {
    fetch(window.location.href, {credentials: "same-origin", headers: {Accept: "text/html"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["upload-recent", "load-recent"].forEach(function (id) {
          var now = document.querySelector("#" + id + " tbody"), then = fresh.querySelector("#" + id + " tbody");
          if (now && then) { now.replaceWith(document.importNode(then, true)); }
        });
      })
      .catch(function () { /* the lists stay as they were: the page shows them on its next load */ });
  }

  function add(files) {
    var park = parkSelect.value;
    for (var i = 0; i < files.length; i++) {
      var item = new Item(files[i], park);
      items.push(item);
      item.start();
    }
  }

  // Back online: the uploads that gave up on their retries go on from the server's offset.
  window.addEventListener("online", function () {
    items.forEach(function (item) {
      if (item.state === "error" && item.upload && item.upload.url) {
        item.set("sending", T.sending);
        item.upload.start();
      }
    });
  });

  var drop = document.getElementById("upload-drop");
  var input = document.getElementById("upload-input");
  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files) { add(e.dataTransfer.files); }
  });
  document.getElementById("upload-form").addEventListener("submit", function (e) { e.preventDefault(); });
}());
