// Sent with every redraw: keep it short. The chart's code comes once in `data.lib`; an element
// rendered before it waits for it, then asks for it (ui/live_chart.py, bootstrap).
const LIB = "__mnistLiveChart_" + "LIB_VERSION";
const queue = (window[LIB + "_waiting"] = window[LIB + "_waiting"] || new Map()); // parent -> waiter

export default function (component) {
  const { data, parentElement: parent, setTriggerValue } = component;
  if (!window[LIB] && data.lib) {
    window[LIB] = new Function(data.lib + "\nreturn mnistLiveChart;")();
    for (const [other, w] of [...queue]) {
      if (other === parent) continue;
      queue.delete(other);
      clearTimeout(w.timer);
      w.cleanup = window[LIB].render(w.component);
    }
  }
  let w = queue.get(parent);
  if (window[LIB]) {
    if (w) clearTimeout(w.timer), queue.delete(parent);
    return window[LIB].render(component);
  }
  if (w) w.component = component;
  else {
    w = { component, cleanup: null };
    w.timer = setTimeout(() => queue.get(parent) === w && setTriggerValue("need", { lib: true, run: data.run }), 1000);
    queue.set(parent, w);
  }
  return () => {
    if (queue.get(parent) === w) queue.delete(parent);
    clearTimeout(w.timer);
    if (w.cleanup) w.cleanup();
  };
}
