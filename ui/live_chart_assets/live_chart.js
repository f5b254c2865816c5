// Glue between Streamlit's custom components v2 and uPlot. Not a module: ui/live_chart.py sends
// uPlot's text followed by this one ONCE per browser session, in the element's data, and the tiny
// inline bootstrap (bootstrap.js) evaluates it into `window.__mnistLiveChart`. Every later redraw
// carries only the points that are new since the previous one.
//
// Streamlit runs the bootstrap again on every rerun with the new `data` and the SAME parentElement
// (the element's identity is its key). The uPlot instances are created once per parent and kept in
// a WeakMap, so a redraw only appends rows: the DOM nodes, and a zoom the user made, survive. A
// panel not zoomed follows the data (its x axis grows with it); a zoomed one keeps its scales until
// a double-click resets them (uPlot's own dblclick). "Pause chart" freezes what is drawn while the
// points keep arriving; unpausing draws them all.
//
// data: {run, from, n, rows, spec?}. `rows[i]` are panel i's new rows [x, y0, y1, ...]; `from` is
// how many source points this element had already been sent. A full set (`spec` present) replaces
// everything. A delta whose `from` is not what this element holds (a remount, a lost message, a new
// run) is not drawn: the element asks Python for the full set (trigger "need").
//
// Polled (data: {run, poll, spec, status, ...}, no rows; ui/live_route.py): the element fetches its
// points and the job's status itself, `GET <app base>/_live/<job>?from=N` every POLL_MS while the job
// runs (the whole history, thinned, when N is 0), appends them in place and redraws its progress bar
// and metrics; a page rerun with the same run and spec changes nothing. When the route says the job
// has ended it stops and sets the trigger "ended" (one rerun: the result appears); likewise when what
// else the page shows of the jobs changed. When the route no longer knows the job (a restarted
// server) the page loads again, and shows the run interrupted. It stops on unmount.

const mnistLiveChart = (() => {
  const MIN_PANEL_PX = 240;
  const GAP_PX = 12; // .mnist-live-chart gap
  const MAX_ROWS = 4000; // rows kept per panel; older ones are thinned beyond this
  const KEEP_RECENT = 1000; // the newest rows are never thinned
  const ASK_AGAIN_MS = 2000;
  const POLL_MS = 500;
  const mounted = new WeakMap(); // parentElement -> state

  function formatValue(panel) {
    if (panel.percent) return (u, v) => (v == null ? "–" : (100 * v).toFixed(1) + "%");
    return (u, v) => (v == null ? "–" : v.toPrecision(4));
  }

  function formatX(panel) {
    return (u, v) => {
      const perX = panel.steps_per_x; // read now: a polled chart learns it with its first points
      if (v == null) return "–";
      const epoch = panel.x_label + " " + v.toFixed(2);
      return perX ? epoch + " · step " + Math.round(v * perX).toLocaleString() : epoch;
    };
  }

  // A log axis's grid lines and ticks: one a decade (uPlot's own put one at every 2, 3 ... 9, a comb
  // over the curves); within less than two decades, at 1, 2 and 5 of each.
  function logSplits(u, splits) {
    const mantissa = (v) => v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
    const near = (m, k) => Math.abs(m - k) < 1e-6 * k;
    const decade = (v) => v > 0 && near(mantissa(v), 1);
    const oneTwoFive = (v) => v > 0 && [1, 2, 5].some((k) => near(mantissa(v), k));
    const keep = splits.filter(decade).length >= 2 ? decade : oneTwoFive;
    return splits.map((v) => (keep(v) ? v : null));
  }

  function options(panel, width, height, color) {
    const yScale = panel.y_range ? { range: panel.y_range } : { auto: true };
    if (panel.log) yScale.distr = 3;
    const percentTicks = (u, ticks) => ticks.map((t) => Math.round(100 * t) + "%");
    const grid = { stroke: "rgba(128,128,128,0.2)" };
    const yAxis = {
      label: panel.y_label, stroke: color, grid, values: panel.percent ? percentTicks : undefined, size: 60,
    };
    if (panel.log) {
      yAxis.grid = { ...grid, filter: logSplits };
      yAxis.ticks = { filter: logSplits };
    }
    return {
      width,
      height,
      title: panel.title,
      scales: { x: { time: false }, y: yScale },
      axes: [
        { label: panel.x_label, stroke: color, grid },
        yAxis,
      ],
      series: [
        { label: panel.x_label, value: formatX(panel) },
        ...panel.series.map((s) => ({
          label: s.name,
          stroke: s.color,
          width: s.markers ? 2 : 1.5,
          spanGaps: true,
          points: { show: !!s.markers, size: 7, fill: s.color },
          value: formatValue(panel),
        })),
      ],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setScale: [
          (u, key) => {
            if (key !== "x" || u._mnistApplying) return;
            const xs = u.data[0];
            if (!xs || xs.length === 0) return;
            // uPlot may call this after setData has returned (its drawing is queued). One x, or
            // none distinct, has no span: uPlot pads a range around it, which is not a user's zoom.
            if (!(xs[xs.length - 1] > xs[0])) {
              u._mnistZoomed = false;
              return;
            }
            const sc = u.scales.x;
            const span = Math.max(xs[xs.length - 1] - xs[0], 1e-9);
            const full =
              Math.abs(sc.min - xs[0]) < 1e-6 * span && Math.abs(sc.max - xs[xs.length - 1]) < 1e-6 * span;
            u._mnistZoomed = !full;
          },
        ],
      },
    };
  }

  // -- the rows each panel holds --------------------------------------------------------------

  function emptyColumns(panel) {
    return Array.from({ length: panel.series.length + 1 }, () => []);
  }

  // Append rows [x, y...]; a row at the x of the last one fills its gaps (a step point and an
  // epoch point at the same epoch end share a row); an x before the last one is inserted in order.
  function append(cols, rows) {
    const xs = cols[0];
    for (const row of rows) {
      const x = row[0];
      if (x == null) continue;
      let at = xs.length;
      if (at > 0 && x <= xs[at - 1]) {
        if (x === xs[at - 1]) {
          for (let j = 1; j < cols.length; j++) if (row[j] != null) cols[j][at - 1] = row[j];
          continue;
        }
        while (at > 0 && xs[at - 1] > x) at--;
      }
      for (let j = 0; j < cols.length; j++) cols[j].splice(at, 0, row[j] == null ? null : row[j]);
    }
  }

  // Beyond MAX_ROWS: every other old row goes, except the newest KEEP_RECENT and rows that carry
  // a marker series' point (validation, once per epoch).
  function thin(cols, markers) {
    const n = cols[0].length;
    if (n <= MAX_ROWS) return;
    const old = n - KEEP_RECENT;
    const keep = [];
    for (let i = 0; i < n; i++) {
      if (i >= old || i % 2 === 0 || i === 0 || markers.some((j) => cols[j][i] != null)) keep.push(i);
    }
    for (let j = 0; j < cols.length; j++) cols[j] = keep.map((i) => cols[j][i]);
    return cols;
  }

  // -- mounting --------------------------------------------------------------------------------

  function injectCss(css) {
    if (!css || document.getElementById("mnist-live-chart-css")) return;
    const style = document.createElement("style");
    style.id = "mnist-live-chart-css";
    style.textContent = css;
    document.head.appendChild(style);
  }

  function mount(parent, spec) {
    const root = document.createElement("div");
    root.className = "mnist-live-chart";
    const bar = document.createElement("label");
    bar.className = "mnist-live-pause";
    const pause = document.createElement("input");
    pause.type = "checkbox";
    bar.append(pause, document.createTextNode(" Pause chart"));
    const panelsBox = document.createElement("div");
    panelsBox.className = "mnist-live-panels";
    root.append(bar, panelsBox);
    parent.appendChild(root);
    const color = getComputedStyle(root).color || "#31333f";
    const count = spec.panels.length;
    // As many side by side as get MIN_PANEL_PX each; one under the other on a phone.
    const width = () => {
      const total = panelsBox.clientWidth || root.clientWidth || 600;
      const across = Math.max(1, Math.min(count, Math.floor((total + GAP_PX) / (MIN_PANEL_PX + GAP_PX))));
      return Math.max(160, Math.floor((total - GAP_PX * (across - 1)) / across));
    };
    const state = {
      root, spec, specText: JSON.stringify(spec), run: null, n: 0, paused: false,
      dragging: false, pending: [], asked: null, observer: null,
    };
    state.cols = spec.panels.map(emptyColumns);
    state.markers = spec.panels.map((p) => p.series.flatMap((s, j) => (s.markers ? [j + 1] : [])));
    state.panels = spec.panels.map((panel, i) => {
      const box = document.createElement("div");
      box.className = "mnist-live-panel";
      panelsBox.appendChild(box);
      const u = new uPlot(options(panel, width(), spec.height, color), state.cols[i], box);
      u._mnistZoomed = false;
      box.uplot = u; // for the browser tests: the instance behind this panel
      u.over.addEventListener("mousedown", () => {
        state.dragging = true;
      });
      return u;
    });
    pause.addEventListener("change", () => {
      state.paused = pause.checked;
      root.dataset.paused = String(state.paused);
      if (!state.paused) draw(state);
    });
    // New data during a drag-zoom would redraw under the user's selection and lose it: a drag
    // holds the drawing, which happens once uPlot has taken the selection as its zoom.
    state.onMouseUp = () => {
      if (!state.dragging) return;
      state.dragging = false;
      setTimeout(() => draw(state), 0);
    };
    document.addEventListener("mouseup", state.onMouseUp);
    state.observer = new ResizeObserver(() =>
      state.panels.forEach((u) => u.setSize({ width: width(), height: spec.height })),
    );
    state.observer.observe(panelsBox);
    root.dataset.redraws = "0";
    root.dataset.received = "0";
    root.dataset.paused = "false";
    return state;
  }

  function unmount(state) {
    state.observer.disconnect();
    document.removeEventListener("mouseup", state.onMouseUp);
    state.panels.forEach((u) => u.destroy());
    state.root.remove();
  }

  function draw(state) {
    if (state.paused || state.dragging) return;
    state.panels.forEach((u, i) => {
      const cols = state.cols[i].map((c) => c.slice()); // uPlot keeps what it is given: a frozen copy
      if (u._mnistZoomed) {
        u.setData(cols, false); // keep the user's scales
      } else {
        u._mnistApplying = true;
        try {
          u.setData(cols, true);
        } finally {
          u._mnistApplying = false;
        }
      }
    });
    state.root.dataset.redraws = String(Number(state.root.dataset.redraws) + 1);
    state.root.dataset.points = String(state.cols[0] ? state.cols[0][0].length : 0);
  }

  function receive(state, data, ask) {
    const t0 = performance.now();
    // Main-thread ms this chart spent on its updates, drawing included: uPlot draws in a microtask
    // queued by setData, before this one (scripts/live_view_browser.py reads it).
    const done = () => {
      state.root.dataset.ms = String(Number(state.root.dataset.ms || 0) + performance.now() - t0);
    };
    try {
      take(state, data, ask);
    } finally {
      queueMicrotask(done);
    }
  }

  function take(state, data, ask) {
    state.root.dataset.received = String(Number(state.root.dataset.received) + 1);
    if (data.spec) {
      state.cols = state.spec.panels.map(emptyColumns);
      state.run = data.run;
    } else if (data.run !== state.run || data.from !== state.n) {
      const now = Date.now();
      if (!state.asked || state.asked.run !== data.run || now - state.asked.at > ASK_AGAIN_MS) {
        state.asked = { run: data.run, at: now };
        ask({ run: data.run, have: state.run === data.run ? state.n : null });
      }
      return;
    }
    state.asked = null;
    state.n = data.n;
    if (!data.spec && data.rows.every((rows) => rows.length === 0)) return; // nothing new to draw
    data.rows.forEach((rows, i) => {
      if (!state.cols[i]) return;
      append(state.cols[i], rows);
      const thinned = thin(state.cols[i], state.markers[i]);
      if (thinned) state.cols[i] = thinned;
    });
    draw(state);
  }

  // -- polled: the element fetches its own points and status (ui/live_route.py) -------------------
  //
  // data: {run, poll, spec|null, height, status, compact, page, caption, ask}. `poll` is relative to
  // the app (`_live/<job>`): it is resolved against the URL the app's own code was loaded from, so the
  // route is found under server.baseUrlPath too. `status`: draw the progress bar and the metrics
  // above the chart from each answer. `spec` null: the panels come with the first answer that has
  // points (`panels`). `ask`: when the job has ended, or the route's `page` differs from the one the
  // page was drawn with, set the trigger "ended" once: Streamlit reruns the page (or the fragment the
  // element is in) and the result appears without the user doing anything.

  const polled = new WeakMap(); // parentElement -> polled state

  function appBase() {
    const script = document.querySelector('script[src*="static/js/index."]');
    if (script && script.src) return script.src.slice(0, script.src.lastIndexOf("static/js/"));
    return new URL("./", document.baseURI).href;
  }

  function routeUrl(relative, from, base) {
    const url = new URL(relative, base || appBase());
    url.searchParams.set("from", String(from));
    return url.href;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function mountStatus(parent) {
    const box = el("div", "mnist-live-status");
    const progress = el("div", "mnist-live-progress");
    progress.setAttribute("data-testid", "stProgress");
    const text = el("p", "mnist-live-progress-text", "");
    const track = el("div", "mnist-live-track");
    track.setAttribute("role", "progressbar");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    const fill = el("div", "mnist-live-fill");
    track.append(fill);
    progress.append(text, track);
    const metrics = el("div", "mnist-live-metrics");
    box.append(progress, metrics);
    parent.appendChild(box);
    box.dataset.updates = "0";
    return { box, text, track, fill, metrics, cells: [] };
  }

  function metricCell([label, value, help]) {
    const cell = el("div", "mnist-live-metric");
    cell.setAttribute("data-testid", "stMetric");
    const top = el("div", "mnist-live-metric-label");
    top.setAttribute("data-testid", "stMetricLabel");
    top.append(el("span", "", label));
    if (help) {
      const tip = el("span", "mnist-live-help", "?");
      tip.title = help;
      tip.setAttribute("aria-label", help);
      top.append(tip);
    }
    const valueNode = el("div", "mnist-live-metric-value", value);
    valueNode.setAttribute("data-testid", "stMetricValue");
    cell.append(top, valueNode);
    return { cell, label, value: valueNode };
  }

  function updateStatus(s, status, compact) {
    if (s.text.textContent !== status.text) s.text.textContent = status.text;
    const percent = Math.round(1000 * status.fraction) / 10;
    const width = percent + "%";
    if (s.fill.style.width !== width) {
      s.fill.style.width = width;
      s.track.setAttribute("aria-valuenow", String(percent));
    }
    const metrics = compact ? status.metrics.slice(0, 4) : status.metrics; // compact: no learning rate
    if (s.cells.length !== metrics.length || s.cells.some((c, i) => c.label !== metrics[i][0])) {
      s.cells = metrics.map(metricCell);
      s.metrics.replaceChildren(...s.cells.map((c) => c.cell));
    }
    metrics.forEach((m, i) => {
      if (s.cells[i].value.textContent !== m[1]) s.cells[i].value.textContent = m[1];
    });
    s.box.dataset.updates = String(Number(s.box.dataset.updates) + 1);
  }

  function mountPolledChart(p, spec) {
    p.chart = mount(p.parent, spec);
    p.chart.run = p.run;
    if (p.caption) {
      p.captionNode = el("p", "mnist-live-caption", p.caption);
      p.parent.appendChild(p.captionNode);
    }
  }

  function stopPolling(p) {
    if (p.timer) clearInterval(p.timer);
    p.timer = null;
  }

  function unmountPolled(p) {
    stopPolling(p);
    if (p.chart) unmount(p.chart);
    if (p.statusBox) p.statusBox.box.remove();
    if (p.captionNode) p.captionNode.remove();
  }

  function askRerun(p, why) {
    if (!p.ask || p.asked) return;
    p.asked = true;
    (window.__mnistLiveAsks = window.__mnistLiveAsks || []).push({ run: p.run, why }); // for the browser tests
    p.trigger("ended", { run: p.run, why, at: Date.now() });
  }

  async function poll(p) {
    if (p.busy || document.hidden || !p.timer) return; // a hidden tab asks for nothing
    p.busy = true;
    try {
      const have = p.chart ? p.chart.n : 0;
      const response = await fetch(routeUrl(p.url, have, p.base), { cache: "no-store" });
      if (response.status === 404) {
        // The server does not know this job any more: it was restarted, and the run is interrupted.
        // A tab left open said "Training now" for good. A rerun cannot help (the new server has none of
        // this page's fragments): the page loads again, from the server as it is now. Only after this
        // element had answers, so that a route that never knew the job cannot reload in a loop.
        stopPolling(p);
        if (p.known) {
          (window.__mnistLiveAsks = window.__mnistLiveAsks || []).push({ run: p.run, why: "reload" });
          window.location.reload();
        }
        return;
      }
      if (!response.ok) return; // a server still starting, a proxy's error: the next tick asks again
      p.known = true;
      const got = await response.json();
      if (!p.timer) return; // unmounted meanwhile
      const t0 = performance.now();
      if (p.statusBox && got.status) updateStatus(p.statusBox, got.status, p.compact);
      if (!p.chart && got.panels) mountPolledChart(p, { height: p.height, panels: got.panels });
      if (p.chart) {
        if (got.per) p.chart.spec.panels.forEach((panel) => (panel.steps_per_x = got.per));
        const data = { run: p.run, from: got.from, n: got.n, rows: got.rows };
        if (got.from === 0) data.spec = p.chart.spec; // the whole history: replaces what is drawn
        if (got.n > 0 || p.chart.n > 0) receive(p.chart, data, () => {}); // nothing yet: nothing to draw
      }
      if (p.statusBox) {
        // Main-thread ms spent on this answer, the chart's drawing included: queued after uPlot's
        // (scripts/live_view_browser.py reads it).
        const box = p.statusBox.box;
        queueMicrotask(() => (box.dataset.ms = String(Number(box.dataset.ms || 0) + performance.now() - t0)));
      }
      if (!got.active) {
        stopPolling(p);
        askRerun(p, "ended");
      } else if (p.page != null && got.page != null && got.page !== p.page) {
        askRerun(p, "changed");
      }
    } catch (err) {
      // a lost connection: the next tick asks again
    } finally {
      p.busy = false;
    }
  }

  function renderPolled(parentElement, data, setTriggerValue) {
    const key = JSON.stringify([data.run, data.poll, data.spec, data.status, data.compact, data.caption]);
    let p = polled.get(parentElement);
    if (p && p.key !== key) {
      unmountPolled(p);
      p = null;
    }
    if (!p) {
      p = {
        key, parent: parentElement, url: data.poll, base: appBase(), run: data.run, height: data.height,
        compact: !!data.compact, caption: data.caption || "", ask: data.ask !== false, chart: null,
        statusBox: data.status ? mountStatus(parentElement) : null, busy: false, timer: null,
      };
      if (data.spec) mountPolledChart(p, data.spec);
      polled.set(parentElement, p);
      p.timer = setInterval(() => poll(p), POLL_MS);
      poll(p);
    }
    // What this page run drew the element with: a rerun that still shows it may ask again later.
    p.page = data.page == null ? null : data.page;
    p.trigger = setTriggerValue;
    p.asked = false;
    return () => {
      const current = polled.get(parentElement);
      if (!current) return;
      unmountPolled(current);
      polled.delete(parentElement);
    };
  }

  function render(component) {
    const { parentElement, data, setTriggerValue } = component;
    const ask = (what) => setTriggerValue("need", what);
    injectCss(data.css);
    if (data.poll) return renderPolled(parentElement, data, setTriggerValue);
    let state = mounted.get(parentElement);
    if (data.spec) {
      const text = JSON.stringify(data.spec);
      if (state && state.specText !== text) {
        unmount(state);
        state = null;
      }
      if (!state) {
        state = mount(parentElement, data.spec);
        mounted.set(parentElement, state);
      }
    }
    if (!state) {
      ask({ run: data.run, have: null }); // mounted anew (the page was left and opened again)
      return undefined;
    }
    receive(state, data, ask);
    return () => {
      const current = mounted.get(parentElement);
      if (!current) return;
      unmount(current);
      mounted.delete(parentElement);
    };
  }

  return { render, append, thin, routeUrl };
})();
