// The landing page's charts (templates/admin/index.html): readings per local hour today, one bar series per
// channel, for each park card. The data comes from the json_script element "landing-charts"; a file, not an
// inline script, because the Content Security Policy runs none. ECharts is vendored in static/vendor/echarts.
"use strict";
(function () {
  const PALETTE = ["#2f6f9f", "#4caf7a", "#e0a030", "#8e6bbf", "#d0584f", "#3aa6b9", "#7a8793"];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw(spec) {
    const el = document.getElementById(spec.id);
    if (!el || !window.echarts) return null;
    const text = cssVar("--body-quiet-color", "#666");
    const grid = cssVar("--hairline-color", "#e8e8e8");
    const chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      color: PALETTE,
      animation: false,
      grid: { left: 44, right: 12, top: 28, bottom: 24 },
      legend: { top: 0, right: 0, itemWidth: 10, itemHeight: 10, textStyle: { color: text, fontSize: 11 } },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: {
        type: "category", data: spec.hours,
        axisLabel: { color: text, fontSize: 10, interval: 2 },
        axisLine: { lineStyle: { color: grid } }, axisTick: { show: false },
      },
      yAxis: {
        type: "value", minInterval: 1,
        axisLabel: { color: text, fontSize: 10 },
        splitLine: { lineStyle: { color: grid } },
      },
      title: spec.series.length ? undefined : {
        text: spec.empty, left: "center", top: "middle", textStyle: { color: text, fontSize: 12, fontWeight: "normal" },
      },
      series: spec.series.map((s) => ({ name: s.name, type: "bar", stack: "readings", data: s.data, barMaxWidth: 14 })),
    });
    el.dataset.rendered = "true";
    return chart;
  }

  function start() {
    const data = document.getElementById("landing-charts");
    if (!data) return;
    const charts = JSON.parse(data.textContent).map(draw).filter(Boolean);
    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
