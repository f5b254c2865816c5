// Glue between Streamlit's custom components v2 and uPlot (loaded before this text: `uPlot`).
//
// Streamlit runs the default export again on every rerun with the new `data` and the SAME
// parentElement (the element's identity is its key). The uPlot instances are created once per
// parent and kept in a WeakMap, so a redraw only hands them new columns: the DOM nodes, and a
// zoom the user made, survive. A panel not zoomed follows the data (its x axis grows with it);
// a zoomed one keeps its scales until a double-click resets them (uPlot's own dblclick).

const MIN_PANEL_PX = 280;
const GAP_PX = 12; // live_chart.css: .mnist-live-chart gap
const mounted = new WeakMap(); // parentElement -> {root, panels, observer}

function formatValue(percent) {
  return (u, v) => (v == null ? "–" : percent ? (100 * v).toFixed(1) + "%" : v.toPrecision(4));
}

function options(panel, width, height, color) {
  const percent = !!panel.percent;
  const yScale = panel.y_range ? { range: panel.y_range } : { auto: true };
  return {
    width,
    height,
    title: panel.title,
    scales: { x: { time: false }, y: yScale },
    axes: [
      { label: panel.x_label, stroke: color, grid: { stroke: "rgba(128,128,128,0.2)" } },
      {
        label: panel.y_label,
        stroke: color,
        grid: { stroke: "rgba(128,128,128,0.2)" },
        values: percent ? (u, ticks) => ticks.map((t) => Math.round(100 * t) + "%") : undefined,
        size: 60,
      },
    ],
    series: [
      { label: panel.x_label, value: (u, v) => (v == null ? "–" : v.toFixed(2)) },
      ...panel.series.map((s) => ({
        label: s.name,
        stroke: s.color,
        width: s.markers ? 2 : 1.5,
        spanGaps: true,
        points: { show: !!s.markers, size: 7, fill: s.color },
        value: formatValue(percent),
      })),
    ],
    cursor: { drag: { x: true, y: false } },
    hooks: {
      setScale: [
        (u, key) => {
          if (key !== "x" || u._mnistApplying) return;
          const xs = u.data[0];
          if (!xs || xs.length === 0) return;
          const sc = u.scales.x;
          const span = Math.max(xs[xs.length - 1] - xs[0], 1e-9);
          const full = Math.abs(sc.min - xs[0]) < 1e-6 * span && Math.abs(sc.max - xs[xs.length - 1]) < 1e-6 * span;
          u._mnistZoomed = !full;
        },
      ],
    },
  };
}

function columns(panel) {
  return [panel.x, ...panel.series.map((s) => s.y)];
}

function mount(parent, data) {
  const root = document.createElement("div");
  root.className = "mnist-live-chart";
  parent.appendChild(root);
  const color = getComputedStyle(root).color || "#31333f";
  // Side by side when each panel gets at least MIN_PANEL_PX, else one under the other (a phone).
  const width = () => {
    const total = root.clientWidth || 600;
    const across = total >= MIN_PANEL_PX * data.panels.length ? data.panels.length : 1;
    return Math.max(160, Math.floor((total - GAP_PX * (across - 1)) / across));
  };
  const panels = data.panels.map((panel) => {
    const box = document.createElement("div");
    box.className = "mnist-live-panel";
    root.appendChild(box);
    const u = new uPlot(options(panel, width(), data.height, color), columns(panel), box);
    u._mnistZoomed = false;
    box.uplot = u; // for the browser tests: the instance behind this panel
    return u;
  });
  // New data during a drag-zoom would redraw under the user's selection and lose it: a drag
  // holds the updates, the last one is applied once uPlot has taken the selection as its zoom.
  const state = { root, panels, observer: null, dragging: false, pending: null };
  panels.forEach((u) =>
    u.over.addEventListener("mousedown", () => {
      state.dragging = true;
    }),
  );
  state.onMouseUp = () => {
    if (!state.dragging) return;
    state.dragging = false;
    setTimeout(() => {
      const pending = state.pending;
      state.pending = null;
      if (pending) update(state, pending);
    }, 0);
  };
  document.addEventListener("mouseup", state.onMouseUp);
  state.observer = new ResizeObserver(() => panels.forEach((u) => u.setSize({ width: width(), height: data.height })));
  state.observer.observe(root);
  root.dataset.redraws = "0";
  return state;
}

function unmount(state) {
  state.observer.disconnect();
  document.removeEventListener("mouseup", state.onMouseUp);
  state.panels.forEach((u) => u.destroy());
  state.root.remove();
}

function update(state, data) {
  state.root.dataset.received = String(Number(state.root.dataset.received || 0) + 1);
  if (state.dragging) {
    state.pending = data;
    return;
  }
  data.panels.forEach((panel, i) => {
    const u = state.panels[i];
    if (!u) return;
    if (u._mnistZoomed) {
      u.setData(columns(panel), false); // keep the user's scales
    } else {
      u._mnistApplying = true;
      try {
        u.setData(columns(panel), true);
      } finally {
        u._mnistApplying = false;
      }
    }
  });
  state.root.dataset.redraws = String(Number(state.root.dataset.redraws || 0) + 1);
}

export default function (component) {
  const { parentElement, data } = component;
  let state = mounted.get(parentElement);
  if (!state || state.panels.length !== data.panels.length) {
    if (state) unmount(state);
    state = mount(parentElement, data);
    mounted.set(parentElement, state);
  } else {
    update(state, data);
  }
  return () => {
    const current = mounted.get(parentElement);
    if (!current) return;
    unmount(current);
    mounted.delete(parentElement);
  };
}
