// Quanyu console: CSRF header on htmx requests, the tenant switcher, uPlot charts.
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.matches && el.matches("[data-switch-tenant]")) {
      window.location.href = "/console/t/" + encodeURIComponent(el.value) + "/";
    }
  });
  // <div class="chart" data-chart='{"x":[unix seconds...],"series":[{"label":"…","values":[…]}]}'>
  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var spec = JSON.parse(el.dataset.chart);
      var colors = ["#1f6feb", "#e8590c", "#2e7d32", "#9c36b5", "#c62828", "#0b7285"];
      var series = [{}].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: colors[i % colors.length], width: 2,
                 points: { show: spec.x.length < 40 } };
      }));
      var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
      var opts = { width: el.clientWidth || 600, height: spec.height || 220, series: series,
                   scales: { x: { time: spec.time !== false } },
                   // room for the longest y label ("3,000,000"), which the default cuts
                   axes: [{}, { size: function (u, values) {
                     var n = (values || []).reduce(function (m, v) {
                       return Math.max(m, String(v).length); }, 0);
                     return Math.max(50, n * 8 + 18);
                   } }] };
      el.dataset.drawn = "1";
      new uPlot(opts, data, el);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawCharts(e.target); });
  // when the page's last live part arrived (read by the page-load benchmark)
  document.addEventListener("htmx:afterSettle", function () {
    window.quanyuLastSwap = performance.now();
  });
})();
