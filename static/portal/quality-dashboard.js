// The quality dashboard's charts (templates/admin/quality/dashboard.html, issue #12 item 6): completeness and
// timeliness per source (bars), and the indicators over the last twelve months (lines). The data comes from the
// json_script element "qd-data" (apps.quality.indicators.dashboard); a file, not an inline script, because the
// Content Security Policy runs none. ECharts is vendored in static/vendor/echarts.
"use strict";
(function () {
  const COLORS = { completeness: "#2f6f9f", timeliness: "#4caf7a", continuity: "#8e6bbf", consistency: "#e0a030",
    automaticShare: "#7a8793" };

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function base(text, grid, emptyText, empty) {
    return {
      animation: false,
      textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
      legend: { top: 0, left: 0, itemWidth: 12, itemHeight: 8, textStyle: { color: text, fontSize: 11 } },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "—" : v + " %") },
      title: empty ? { text: emptyText, left: "center", top: "middle",
        textStyle: { color: text, fontSize: 12, fontWeight: "normal" } } : undefined,
    };
  }

  // From 0 for the bars; for the trend from a round figure under the lowest value, so that a change of a few
  // points between months shows (the indicators mostly sit in the nineties).
  function percentAxis(text, grid, zoomed) {
    return { type: "value", max: 100,
      min: zoomed ? (v) => Math.max(0, Math.floor((v.min - 2) / 10) * 10) : 0, axisLabel: { color: text, fontSize: 10, formatter: "{value} %" },
      splitLine: { lineStyle: { color: grid } } };
  }

  function sourcesChart(el, data, text, grid) {
    const chart = window.echarts.init(el, null, { renderer: "canvas" });
    const L = data.labels;
    const many = data.sources.length > 12;
    chart.setOption(Object.assign(base(text, grid, L.empty, !data.sources.length), {
      grid: { left: 44, right: 12, top: 30, bottom: many ? 56 : 40 },
      xAxis: { type: "category", data: data.sources.map((s) => s.id),
        axisLabel: { color: text, fontSize: 10, interval: 0, rotate: data.sources.length > 4 ? 30 : 0 },
        axisLine: { lineStyle: { color: grid } }, axisTick: { show: false } },
      yAxis: percentAxis(text, grid),
      dataZoom: many ? [{ type: "slider", height: 14, bottom: 4, startValue: 0, endValue: 11 }] : [],
      series: ["completeness", "timeliness"].map((k) => ({
        id: k, name: L[k], type: "bar", barMaxWidth: 18, color: COLORS[k],
        data: data.sources.map((s) => s[k]),
      })),
    }));
    return chart;
  }

  function trendChart(el, data, text, grid) {
    const chart = window.echarts.init(el, null, { renderer: "canvas" });
    const L = data.labels;
    const keys = ["completeness", "continuity", "timeliness", "consistency", "automaticShare"];
    chart.setOption(Object.assign(base(text, grid, L.emptyTrend, !data.trend.length), {
      grid: { left: 44, right: 16, top: 48, bottom: 28 },  // room for a legend on two lines (English)
      xAxis: { type: "category", data: data.trend.map((t) => t.month), boundaryGap: false,
        axisLabel: { color: text, fontSize: 10 }, axisLine: { lineStyle: { color: grid } } },
      yAxis: percentAxis(text, grid, true),
      series: keys.map((k) => ({ id: k, name: L[k], type: "line", color: COLORS[k], symbolSize: 6,
        connectNulls: false, data: data.trend.map((t) => t[k]) })),
    }));
    return chart;
  }

  function start() {
    const node = document.getElementById("qd-data");
    if (!node || !window.echarts) return;
    const data = JSON.parse(node.textContent);
    const text = cssVar("--body-quiet-color", "#666");
    const grid = cssVar("--hairline-color", "#e8e8e8");
    const charts = [];
    for (const [id, draw] of [["qd-chart-sources", sourcesChart], ["qd-chart-trend", trendChart]]) {
      const el = document.getElementById(id);
      if (!el) continue;
      charts.push(draw(el, data, text, grid));
      el.dataset.rendered = "true";
    }
    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
