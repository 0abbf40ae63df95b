// enduro's live dashboard: polls /api/live about once a second and draws it.
// Everything that came from the store (scraped records, error messages, page
// keys) is put in the page with textContent, never as markup.
"use strict";

(function () {
  const POLL_MS = 1000;
  const COLORS = ["#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#00838f", "#975a16", "#d53f8c", "#4a5568"];
  const MARKER_COLORS = {
    "restart": "#dd6b20", "login": "#3182ce", "re-login": "#3182ce", "cool-down": "#805ad5",
    "halt": "#000000", "stall": "#718096", "probe": "#718096", "start": "#38a169",
    "resume": "#38a169", "end": "#38a169", "fault": "#e53e3e",
  };
  const charts = {};
  let markers = [];
  let span = null;  // [first, last] seconds: every chart shows the same stretch of time

  function el(id) { return document.getElementById(id); }

  function text(node, value) { node.textContent = value === null || value === undefined ? "" : String(value); }

  function cell(row, value, cls) {
    const td = document.createElement("td");
    text(td, value);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function fill(tbody, rows, build) {
    const body = document.createDocumentFragment();
    for (const item of rows) {
      const tr = document.createElement("tr");
      build(tr, item);
      body.appendChild(tr);
    }
    tbody.replaceChildren(body);
  }

  function clock(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString() : ""; }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.round(seconds);
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function markerPlugin() {
    return {
      hooks: {
        draw: [function (u) {
          const ctx = u.ctx;
          const left = u.bbox.left, right = u.bbox.left + u.bbox.width;
          ctx.save();
          ctx.lineWidth = 1;
          for (const m of markers) {
            const x = Math.round(u.valToPos(m.ts, "x", true));
            if (!(x >= left && x <= right)) continue;
            ctx.strokeStyle = MARKER_COLORS[m.kind] || "#718096";
            ctx.setLineDash(m.kind === "fault" ? [4, 3] : []);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
  }

  function xRange(_u, min, max) { return span && span[1] > span[0] ? span : [min, max]; }

  function width(node) { return Math.max(300, node.clientWidth || 600); }

  // What each part of the page last showed: a part whose data did not change is
  // left alone (the page must cost the run it watches next to nothing).
  const shown = {};

  function changed(part, value) {
    const text = JSON.stringify(value);
    if (shown[part] === text) return false;
    shown[part] = text;
    return true;
  }

  // One uPlot per chart, built again only when its series change.
  function draw(id, shape, series, data, extra) {
    if (!changed(id, [span, markers.length, data])) return;
    const node = el(id);
    const key = JSON.stringify(series.map(function (s) { return [s.label, s.scale || "y"]; }));
    let chart = charts[id];
    if (!chart || chart.key !== key) {
      if (chart) chart.plot.destroy();
      const opts = Object.assign({
        width: width(node),
        height: 240,
        scales: { x: { time: true, range: xRange } },
        series: [{}].concat(series),
        axes: [{}, { scale: "y" }],
        plugins: [markerPlugin()],
        legend: { live: false },
      }, shape || {});
      if (extra) extra(opts);
      chart = { key: key, plot: new uPlot(opts, data, node) };
      charts[id] = chart;
    } else {
      chart.plot.setData(data);
    }
  }

  function progress(live) {
    const p = live.progress || { t: [], done: [], rate: [] };
    draw("chart-progress", {
      scales: { x: { time: true, range: xRange }, rate: { auto: true } },
      axes: [{}, { scale: "y", label: "pages done" }, { scale: "rate", side: 1, grid: { show: false }, label: "pages/s" }],
    }, [
      { label: "pages done", stroke: COLORS[0], width: 2, scale: "y" },
      { label: "pages/s", stroke: COLORS[2], scale: "rate" },
    ], [p.t, p.done, p.rate]);
    // what the chart shows now, readable from outside (the tests read it)
    const node = el("chart-progress");
    node.dataset.points = String(p.t.length);
    node.dataset.last = p.done.length ? String(p.done[p.done.length - 1]) : "";
  }

  function errors(live) {
    const e = live.errors || { t: [], by_category: {} };
    const names = Object.keys(e.by_category).sort();
    const series = [], data = [e.t];
    if (names.length === 0) {
      series.push({ label: "errors", stroke: COLORS[8] });
      data.push(e.t.map(function () { return 0; }));
    }
    names.forEach(function (name, i) {
      series.push({ label: name, stroke: COLORS[(i + 1) % COLORS.length], width: 2, points: { show: true } });
      data.push(e.by_category[name]);
    });
    draw("chart-errors", null, series, data);
  }

  function memory(live) {
    const m = live.memory || { t: [], hosts: {} };
    const hosts = Object.keys(m.hosts).sort();
    const series = [], data = [m.t];
    hosts.forEach(function (host, i) {
      series.push({ label: "browser PSS MB " + host, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true });
      data.push(m.hosts[host].browser_pss_mb);
      series.push({ label: "runner RSS MB " + host, stroke: COLORS[i % COLORS.length], dash: [5, 4], spanGaps: true });
      data.push(m.hosts[host].runner_rss_mb);
    });
    if (hosts.length === 0) {
      series.push({ label: "no samples yet", stroke: COLORS[8] });
      data.push([]);
    }
    draw("chart-memory", null, series, data);
    text(el("leak"), live.leak ? "leak estimate: " + live.leak : "");
  }

  function cards(live) {
    if (!changed("cards", [live.pages, live.rate, live.eta_seconds, live.records, live.errors,
      live.workers, live.windows, live.faults])) return;
    const pages = live.pages || {};
    const total = pages.total || 0, done = pages.done || 0;
    text(el("done"), done + " / " + total);
    text(el("pages"), (total ? Math.floor(100 * done / total) + "% · " : "") +
      (pages.pending || 0) + " pending · " + (pages.leased || 0) + " in hand");
    text(el("rate"), (live.rate || 0).toFixed(2) + " pages/s");
    text(el("eta"), live.eta_seconds ? "about " + duration(live.eta_seconds) + " left" : (total && done === total ? "every page done" : ""));
    text(el("records"), live.records || 0);
    text(el("failed"), (pages.failed || 0) + " pages failed");
    const cats = (live.errors && live.errors.by_category) || {};
    let sum = 0; const parts = [];
    Object.keys(cats).sort().forEach(function (c) {
      const n = cats[c].reduce(function (a, b) { return a + b; }, 0);
      sum += n; parts.push(c + " " + n);
    });
    text(el("error-total"), sum);
    text(el("error-cats"), parts.join(" · "));
    const rates = (live.workers || []).map(function (w) { return w.rate; });
    const rate = rates.length ? rates[0] : null;
    text(el("limit"), rate === null || rate === undefined ? "unlimited" : rate.toFixed(2) + " /s");
    const windows = live.windows || [];
    text(el("windows"), windows.length
      ? windows.map(function (w) { return w.endpoint + " held " + w.ends_in + " s"; }).join(" · ")
      : "no Retry-After window open");
    text(el("faults"), live.faults || 0);
    const last = (live.markers || []).filter(function (m) { return m.kind === "fault"; }).pop();
    text(el("fault-last"), last ? clock(last.ts) + " " + last.text : "");
  }

  function tables(live) {
    if (!changed("tables", [live.alerts, live.workers, live.last_errors, live.latest_records, live.runs])) return;
    const alerts = el("alerts");
    alerts.replaceChildren();
    if (!live.alerts || live.alerts.length === 0) { text(alerts, "none"); alerts.className = "muted"; }
    else {
      alerts.className = "";
      for (const a of live.alerts) {
        const div = document.createElement("div");
        div.className = "alert";
        text(div, a.metric + ": " + a.message);
        alerts.appendChild(div);
      }
    }
    fill(el("workers").tBodies[0], live.workers || [], function (tr, w) {
      if (w.stale) tr.className = "stale";
      cell(tr, w.host); cell(tr, w.worker); cell(tr, w.page || "—");
      cell(tr, w.browser_running ? duration(w.browser_age) : "not running");
      cell(tr, w.browser_pages); cell(tr, w.browser_starts);
      cell(tr, w.rate === null || w.rate === undefined ? "unlimited" : w.rate.toFixed(2));
      cell(tr, w.cooldown ? w.cooldown + " s" : "");
    });
    fill(el("errors").tBodies[0], live.last_errors || [], function (tr, e) {
      cell(tr, clock(e.ts));
      const cat = cell(tr, "");
      const span = document.createElement("span");
      span.className = "cat";
      text(span, e.category);
      cat.appendChild(span);
      cell(tr, e.page); cell(tr, e.message, "message"); cell(tr, e.host);
      const links = cell(tr, "");
      for (const part of ["screenshot", "html"]) {
        const name = e.flight && e.flight[part];
        if (!name) continue;
        const a = document.createElement("a");
        a.href = "flight/" + encodeURIComponent(name);
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        text(a, part);
        links.appendChild(a);
        links.appendChild(document.createTextNode(" "));
      }
    });
    const rows = live.latest_records || [];
    text(el("records-page"), live.records_page ? "(page " + live.records_page + ")" : "");
    const columns = [];
    for (const r of rows) for (const k of Object.keys(r)) if (columns.indexOf(k) < 0 && columns.length < 8) columns.push(k);
    const head = document.createElement("tr");
    for (const c of columns) { const th = document.createElement("th"); text(th, c); head.appendChild(th); }
    el("latest").tHead.replaceChildren(head);
    fill(el("latest").tBodies[0], rows, function (tr, r) {
      for (const c of columns) cell(tr, typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c]);
    });
    fill(el("runs").tBodies[0], (live.runs || []).slice().reverse(), function (tr, r) {
      cell(tr, r.run_id); cell(tr, r.host); cell(tr, r.status); cell(tr, clock(r.started_at));
    });
  }

  function show(live) {
    text(el("job"), live.job ? "— " + live.job : "");
    text(el("where"), live.store || "");
    text(el("connection"), live.waiting ? "waiting: " + live.waiting : "updated " + clock(live.now));
    markers = live.markers || [];
    if (!live.job) return;
    // the time axis moves when a new point comes, not with every second of the clock
    const t = (live.progress && live.progress.t) || [];
    const step = (live.progress && live.progress.step && live.progress.step[0]) || 1;
    span = t.length ? [t[0], t[t.length - 1] + step] : null;
    cards(live);
    progress(live);
    errors(live);
    memory(live);
    tables(live);
  }

  function poll() {
    if (document.hidden) { setTimeout(poll, POLL_MS); return; }  // nobody looks: no work
    fetch("api/live", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (live) {
        try { show(live); } catch (err) { console.error("dashboard: " + err.message); }
      }, function (err) { text(el("connection"), "no answer (" + err.message + "), trying again"); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  window.addEventListener("resize", function () {
    for (const id of Object.keys(charts)) charts[id].plot.setSize({ width: width(el(id)), height: 240 });
  });
  poll();
})();
