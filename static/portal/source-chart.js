// A data source's time series (templates/admin/sources/datasource/chart.html, issue #12 item 6). The data
// comes from the json_script elements "source-chart-data" (apps.quality.charts.source_chart) and
// "source-chart-labels"; a file, not an inline script, because the Content Security Policy runs none.
//
// One line per data item (its effective values); the points that are not plain raw readings are drawn again
// on top, one scatter series per kind, each in its own style: suspect orange, invalid a red triangle, repaired
// a green diamond, patched a hollow dashed circle (and the line through patched points dashed), corrected a
// purple square with the value before correction as a faint grey point beside it. Open gaps are shaded bands.
// An item read as a meter register (apps/quality/registers) has its hourly consumption drawn beside it as bars on
// a second, right-hand axis: orange where the hour includes a rollover, reset, replacement or implausible
// advance, lighter with a dashed rim where it was spread over a gap.
"use strict";
(function () {
  const PALETTE = ["#2f6f9f", "#4caf7a", "#8e6bbf", "#3aa6b9", "#7a8793", "#d0584f", "#e0a030"];
  // Style of each kind of point: exported on the series (kind) so that tests and readers can tell them apart.
  const KIND_STYLES = {
    suspect: { symbol: "circle", symbolSize: 8, itemStyle: { color: "#e08a00", borderColor: "#fff", borderWidth: 1 } },
    invalid: { symbol: "triangle", symbolSize: 9, itemStyle: { color: "#d0303a" } },
    repaired: { symbol: "diamond", symbolSize: 9, itemStyle: { color: "#2e9d5b" } },
    patched: {  // hollow (the fill is the background), a dashed teal rim
      symbol: "emptyCircle", symbolSize: 10,
      itemStyle: { color: "#0b8a8a", borderColor: "#0b8a8a", borderWidth: 2, borderType: "dashed" },
    },
    corrected: { symbol: "rect", symbolSize: 8, itemStyle: { color: "#8e44ad" } },
    correctedRaw: { symbol: "circle", symbolSize: 6, itemStyle: { color: "#9aa0a6", opacity: 0.45 } },
  };
  const KIND_ORDER = ["suspect", "invalid", "repaired", "patched", "corrected", "correctedRaw"];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function seriesName(s) {
    return s.code + " " + s.name + (s.unit ? " (" + s.unit + ")" : "");
  }

  // Local wall-clock text → the same instant as ECharts reads such text (the browser's local time), in ms.
  function ms(text) {
    return new Date(text.replace(" ", "T")).getTime();
  }

  // The points with a null in the middle of each open gap, so that the line stops at a hole instead of
  // drawing straight across it.
  function withBreaks(points, gaps) {
    if (!gaps.length) return points;
    const breaks = gaps.map((g) => [(ms(g[0]) + ms(g[1])) / 2, null, "gap", null]);
    return [...points, ...breaks].sort((a, b) => (typeof a[0] === "number" ? a[0] : ms(a[0]))
      - (typeof b[0] === "number" ? b[0] : ms(b[0])));
  }

  function itemSeries(s, k, labels) {
    const color = PALETTE[k % PALETTE.length];
    const pts = withBreaks(s.points, s.gaps);
    const patched = (i) => i >= 0 && i < pts.length && pts[i][2] === "patched";
    const out = [{
      id: "item-" + s.code, name: seriesName(s), type: "line", color: color,
      // a patched point breaks the solid line: the dashed series below bridges it
      data: pts.map((p) => [p[0], p[2] === "patched" ? null : p[1]]),
      showSymbol: pts.length <= 150, symbol: "circle", symbolSize: 4, connectNulls: false,
      lineStyle: { width: 1.5, type: "solid" }, emphasis: { focus: "none" },
      markArea: s.gaps.length ? {
        silent: false, itemStyle: { color: "rgba(208, 88, 79, 0.12)" },
        label: { show: false },
        data: s.gaps.map((g) => [{ xAxis: g[0], name: labels.gap + " · " + labels.missing + " " + g[2] },
          { xAxis: g[1] }]),
      } : undefined,
    }];
    if (pts.some((p) => p[2] === "patched")) {
      out.push({
        id: "patched-line-" + s.code, name: seriesName(s), type: "line", color: color, kind: "patched",
        data: pts.map((p, i) => [p[0], patched(i) || patched(i - 1) || patched(i + 1) ? p[1] : null]),
        showSymbol: false, connectNulls: false, lineStyle: { width: 2, type: "dashed", color: KIND_STYLES.patched.itemStyle.color },
        tooltip: { show: false },
      });
    }
    if (s.rollup) {  // the hour's range beside its average
      out.push({
        id: "range-" + s.code, name: seriesName(s), type: "line", color: color, showSymbol: false,
        data: pts.map((p) => [p[0], p[5]]), lineStyle: { width: 0.5, opacity: 0.5 }, tooltip: { show: false },
      }, {
        id: "range-low-" + s.code, name: seriesName(s), type: "line", color: color, showSymbol: false,
        data: pts.map((p) => [p[0], p[4]]), lineStyle: { width: 0.5, opacity: 0.5 }, tooltip: { show: false },
      });
    }
    return out;
  }

  const CONSUMPTION_COLOR = "#5b8fd6";
  const FLAGGED_COLOR = "#e08a00";
  const HALF_HOUR = 30 * 60 * 1000;

  function consumptionName(s, labels) {
    return s.code + " " + labels.consumption + (s.unit ? " (" + s.unit + ")" : "");
  }

  // One bar per park-local hour, drawn at the middle of its hour.
  function consumptionSeries(data, labels) {
    return data.series.filter((s) => s.register).map((s) => ({
      id: "consumption-" + s.code, name: consumptionName(s, labels), type: "bar", yAxisIndex: 1,
      color: CONSUMPTION_COLOR, barMaxWidth: 14, barCategoryGap: "10%", z: 1,
      data: s.register.consumption.map((p) => ({
        value: [ms(p[0]) + HALF_HOUR, p[1]], flagged: p[2], spread: p[3],
        itemStyle: p[2] ? { color: FLAGGED_COLOR }
          : (p[3] ? { color: "rgba(91, 143, 214, 0.35)", borderColor: CONSUMPTION_COLOR, borderType: "dashed", borderWidth: 1 }
            : undefined),
      })),
      tooltip: {
        valueFormatter: (v) => (v === null || v === undefined ? "-" : Number(v).toPrecision(6)),
      },
    }));
  }

  function kindSeries(data, labels) {
    const byKind = {};
    KIND_ORDER.forEach((kind) => { byKind[kind] = []; });
    data.series.forEach((s) => s.points.forEach((p) => {
      if (p[2] in byKind) byKind[p[2]].push({ value: [p[0], p[1]], item: s.code });
      if (p[2] === "corrected" && p[3] !== null) byKind.correctedRaw.push({ value: [p[0], p[3]], item: s.code });
    }));
    return KIND_ORDER.filter((kind) => byKind[kind].length).map((kind) => ({
      id: "kind-" + kind, name: labels[kind], type: "scatter", kind: kind, z: 5, data: byKind[kind],
      ...KIND_STYLES[kind],
    }));
  }

  function draw(el, data, labels) {
    const text = cssVar("--body-quiet-color", "#666");
    const grid = cssVar("--hairline-color", "#e8e8e8");
    const chart = window.echarts.init(el, null, { renderer: "canvas" });
    const lines = data.series.flatMap((s, k) => itemSeries(s, k, labels));
    const kinds = kindSeries(data, labels);
    const bars = consumptionSeries(data, labels);
    const registers = data.series.filter((s) => s.register);
    const empty = !data.series.some((s) => s.points.length);
    const valueAxis = {
      type: "value", scale: true,
      axisLabel: { color: text, fontSize: 11 },
      splitLine: { lineStyle: { color: grid } },
    };
    chart.setOption({
      animation: false,
      grid: { left: 56, right: bars.length ? 64 : 24, top: bars.length ? 80 : 56, bottom: 64 },
      legend: {
        top: 0, left: 0, right: 96, type: "scroll", textStyle: { color: text, fontSize: 12 },
        data: [...data.series.map(seriesName), ...bars.map((s) => s.name), ...kinds.map((s) => s.name)],
      },
      toolbox: {
        right: 8, top: 0,
        feature: {
          dataZoom: { yAxisIndex: "none", title: { zoom: labels.zoom, back: labels.zoomBack } },
          restore: { title: labels.restore },
        },
      },
      tooltip: { trigger: "axis", axisPointer: { type: "line" } },
      xAxis: {
        type: "time", min: data.start, max: data.end,
        axisLabel: { color: text, fontSize: 11, hideOverlap: true },
        axisLine: { lineStyle: { color: grid } },
      },
      yAxis: bars.length ? [
        { ...valueAxis, name: labels.register, nameTextStyle: { color: text, fontSize: 11 } },
        { ...valueAxis, scale: false, min: 0, position: "right", splitLine: { show: false },
          name: labels.consumption + (registers[0].unit ? " (" + registers[0].unit + ")" : ""),
          nameTextStyle: { color: text, fontSize: 11, align: "right" } },
      ] : valueAxis,
      dataZoom: [
        { type: "inside", xAxisIndex: 0, filterMode: "none" },
        { type: "slider", xAxisIndex: 0, filterMode: "none", height: 22, bottom: 12 },
      ],
      title: empty ? {
        text: labels.empty, left: "center", top: "middle", textStyle: { color: text, fontSize: 14, fontWeight: "normal" },
      } : undefined,
      series: [...bars, ...lines, ...kinds],
    });
    el.dataset.rendered = "true";
    return chart;
  }

  function start() {
    const el = document.getElementById("source-chart");
    const data = document.getElementById("source-chart-data");
    const labels = document.getElementById("source-chart-labels");
    if (!el || !data || !labels || !window.echarts) return;
    const chart = draw(el, JSON.parse(data.textContent), JSON.parse(labels.textContent));
    window.addEventListener("resize", () => chart.resize());
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
