// The only JS sent with every redraw of a live chart (ui/live_chart.py). The chart's code (uPlot and
// live_chart.js) comes once per browser session in `data.lib`, with the first element a page run
// draws, and is kept in `window`.
//
// The browser may render the elements of one page run in any order: an element that comes before
// the one that brings the code waits for it (it is drawn when the code arrives). Only when no code
// has come a second later (a new tab of an old session) does it ask Python for it (trigger "need").
const LIB = "__mnistLiveChart_" + "LIB_VERSION";
const WAIT_MS = 1000;

function waiting() {
  // parentElement -> {component (the latest args), timer, cleanup}
  return (window[LIB + "_waiting"] = window[LIB + "_waiting"] || new Map());
}

function drawWaiting(except) {
  const queue = waiting();
  for (const [parent, w] of [...queue]) {
    if (parent === except) continue; // drawn by its own call, with its newer args
    queue.delete(parent);
    clearTimeout(w.timer);
    w.cleanup = window[LIB].render(w.component);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  if (!window[LIB] && data.lib) {
    window[LIB] = new Function(data.lib + "\nreturn mnistLiveChart;")();
    drawWaiting(parentElement);
  }
  const queue = waiting();
  if (window[LIB]) {
    const mine = queue.get(parentElement);
    if (mine) {
      queue.delete(parentElement);
      clearTimeout(mine.timer);
    }
    return window[LIB].render(component);
  }
  let w = queue.get(parentElement);
  if (w) {
    w.component = component; // drawn again before the code came: draw the latest args
  } else {
    w = { component, cleanup: null };
    w.timer = setTimeout(() => {
      if (!window[LIB] && queue.get(parentElement) === w) setTriggerValue("need", { lib: true, run: data.run });
    }, WAIT_MS);
    queue.set(parentElement, w);
  }
  return () => {
    if (queue.get(parentElement) === w) queue.delete(parentElement);
    clearTimeout(w.timer);
    if (w.cleanup) w.cleanup();
  };
}
