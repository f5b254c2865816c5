// The only JS sent with every redraw of a live chart (ui/live_chart.py). The chart's code (uPlot and
// live_chart.js) comes once per browser session in `data.lib` and is kept in `window`; when it is
// missing (a new tab of an old session) the element asks Python for it (trigger "need").
export default function (component) {
  const { data, setTriggerValue } = component;
  const name = "__mnistLiveChart_" + "LIB_VERSION";
  if (!window[name] && data.lib) {
    window[name] = new Function(data.lib + "\nreturn mnistLiveChart;")();
  }
  if (!window[name]) {
    setTriggerValue("need", { lib: true, run: data.run });
    return undefined;
  }
  return window[name].render(component);
}
