/* hpsearch report: draws every plot from the page's data (the JSON in #hpsearch-data, see
   hpsearch/htmlreport/data.py) with plotly.js, which is inline in the page: nothing is
   fetched.

   What tests read: body[data-rendered] turns "ok" once every plot is drawn ("errors" when a
   section failed; window.hpsearchReport.errors says why), and each plot's element carries
   data-points, the number of runs (points, lines, bars) it was given; plots that show
   pruned runs also carry data-pruned, how many of those were pruned; plots that show
   finished runs of a search with constraints carry data-infeasible, how many of those break
   one.

   A pruned run is shown at its last report (the value the driver recorded when it stopped
   the run, at R.step), as a hollow grey marker whose hover says where it stopped; "best so
   far" lines follow the finished runs only, their final values being the ones to compare.
   An infeasible run (a finished run that breaks a constraint) is an orange cross, apart from
   the finished runs, and no "best so far" line follows it: the best shown is the best
   feasible run, as in the tables.
   The history by trial can show every run's value at one step instead (each run's first
   report at or past it, as RunView.value_at in hpsearch/searchview.py reads it).

   render(data) draws every section from one data object, again and again: a served page
   (hpsearch report --serve, hpsearch/inspect/report/live.py) holds #hpsearch-live, asks
   for newer data every few seconds and renders it in place (Plotly.react keeps each plot's
   zoom; the selects keep their choice); body[data-renders] counts the renders. */
(function () {
  "use strict";
  /* the data being drawn (set by use()) */
  var D, R, OBJ, MINIMIZE, CURVE_OF, BROKEN, hovers;
  var CONFIG = {displaylogo: false, responsive: true};
  /* above this many points a trace is drawn with WebGL (used for the few big plots only:
     a browser keeps a handful of WebGL contexts per page) */
  var GL_LIMIT = 2000;
  var STATUS_COLORS = {finished: "#1f77b4", pruned: "#d62728", running: "#2ca02c",
                       failed: "#7f7f7f", retried: "#fb8c00", cancelled: "#9e9e9e"};
  /* a pruned run's last report, wherever it sits among final values */
  var PRUNED_MARKER = {symbol: "circle-open", size: 7, color: "#757575",
                       line: {width: 1.5, color: "#757575"}};
  /* a finished run that breaks a constraint */
  var INFEASIBLE_MARKER = {symbol: "x", size: 8, color: "#ef6c00"};
  var BAR_COLORS = {finished: "#43a047", pruned: "#fb8c00", failed: "#e53935",
                    running: "#1e88e5", retried: "#ffb74d", cancelled: "#9e9e9e"};
  var state = {errors: []};
  var pending = [];
  window.hpsearchReport = state;

  function byId(id) { return document.getElementById(id); }

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function fmt(v) {
    if (v === null || v === undefined) { return ""; }
    if (typeof v !== "number") { return String(v); }
    if (Number.isInteger(v)) { return String(v); }
    return String(Number(v.toPrecision(4)));
  }

  function paramText(p, v) {
    return p.axis === "category" ? p.categories[v] : fmt(v);
  }

  function use(data) {
    D = data;
    R = D.runs;
    OBJ = D.objectives[0];
    MINIMIZE = D.directions[0] === "minimize";
    CURVE_OF = {};
    D.curves.forEach(function (c) { CURVE_OF[c.run] = c; });
    BROKEN = {};
    D.infeasible.run.forEach(function (i, k) { BROKEN[i] = D.infeasible.broken[k]; });
    hovers = [];
  }

  function feasible(i) { return BROKEN[i] === undefined; }
  function infeasible(i) { return BROKEN[i] !== undefined; }
  /* a plot's count of infeasible runs among ``idx`` (none without constraints) */
  function markInfeasible(el, idx) {
    if (D.infeasible.run.length) {
      el.dataset.infeasible = String(idx.filter(infeasible).length);
    } else {
      delete el.dataset.infeasible;
    }
  }

  function hover(i) {
    if (hovers[i] === undefined) {
      var lines = ["<b>trial " + R.trial[i] + "</b>  run " + esc(R.id[i])];
      if (R.status[i] === "pruned" && R.step[i] !== null) {
        lines.push("pruned at step " + esc(fmt(R.step[i])) + " (values: its last report)");
      } else if (R.status[i] !== "finished") {
        lines.push("status: " + esc(R.status[i]));
      } else if (infeasible(i)) {
        lines.push("infeasible: breaks " + esc(BROKEN[i]));
      }
      D.params.forEach(function (p) {
        var v = R.p[p.name][i];
        if (v !== null) { lines.push(esc(p.name) + " = " + esc(paramText(p, v))); }
      });
      D.metrics.forEach(function (m) {
        var v = R.m[m][i];
        if (v !== null) { lines.push(esc(m) + " = " + esc(fmt(v))); }
      });
      hovers[i] = lines.join("<br>");
    }
    return hovers[i];
  }

  /* el emptied: its plots (el itself, or plots inside it) purged, its children removed */
  function clear(el) {
    if (el.classList.contains("js-plotly-plot")) { Plotly.purge(el); }
    Array.prototype.forEach.call(el.querySelectorAll(".js-plotly-plot"), function (plot) {
      Plotly.purge(plot);
    });
    el.textContent = "";
  }

  function dropNotes(el) {
    Array.prototype.forEach.call(el.querySelectorAll(":scope > p.note"), function (p) {
      el.removeChild(p);
    });
  }

  function note(el, text) {
    clear(el);
    var p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    el.appendChild(p);
    el.dataset.points = "0";
  }

  /* the child of box keyed ``key`` (made when missing), moved to the end: asked for in
     order, the children end up in that order; dropOthers(box, keys) removes the rest */
  function keyed(box, key, className) {
    var el = null;
    Array.prototype.forEach.call(box.children, function (c) {
      if (c.dataset.key === key) { el = c; }
    });
    if (el === null) {
      el = document.createElement("div");
      el.className = className;
      el.dataset.key = key;
    }
    box.appendChild(el);
    return el;
  }

  function dropOthers(box, keys) {
    Array.prototype.slice.call(box.children).forEach(function (c) {
      if (keys.indexOf(c.dataset.key) < 0) {
        clear(c);
        box.removeChild(c);
      }
    });
  }

  function markers(n) { return n > GL_LIMIT ? "scattergl" : "scatter"; }

  /* draws into el, or updates what el shows (uirevision: a user's zoom stays) */
  function draw(el, traces, layout, points) {
    dropNotes(el);
    el.dataset.points = String(points);
    var base = {margin: {l: 64, r: 24, t: 24, b: 48}, hovermode: "closest",
                paper_bgcolor: "#fff", plot_bgcolor: "#fff", font: {size: 12},
                uirevision: "keep"};
    pending.push(Plotly.react(el, traces, Object.assign(base, layout), CONFIG));
  }

  function axisTitle(text) { return {title: {text: text}, automargin: true}; }

  function date(seconds) { return new Date((D.t0 + seconds) * 1000); }

  /* -- optimization history ------------------------------------------------------------ */
  function byTrialOrder(a, b) { return R.trial[a] - R.trial[b]; }

  /* finished runs (filled; infeasible ones crossed), pruned runs (hollow) and the best so far
     over the feasible runs of ``best`` (a list of runs sorted by x); y of a run: yOf(i);
     yText: a hover line for y, "" when the run's own lines say it */
  function historyTraces(finished, pruned, best, xOf, yOf, bestName, yText) {
    var bestValue = null;
    var broken = finished.filter(infeasible);
    finished = finished.filter(feasible);
    best = best.filter(feasible);
    var bestY = best.map(function (i) {
      var v = yOf(i);
      if (bestValue === null || (MINIMIZE ? v < bestValue : v > bestValue)) { bestValue = v; }
      return bestValue;
    });
    var mk = function (idx, name, marker) {
      return {type: markers(idx.length), mode: "markers", name: name, x: idx.map(xOf),
              y: idx.map(yOf), text: idx.map(hover),
              hovertemplate: "%{text}" + yText + "<extra></extra>", marker: marker};
    };
    var traces = [mk(finished, "finished (" + finished.length + ")",
                     {size: 6, color: STATUS_COLORS.finished})];
    if (pruned.length) {
      traces.push(mk(pruned, "pruned (" + pruned.length + ")", PRUNED_MARKER));
    }
    if (broken.length) {
      traces.push(mk(broken, "infeasible (" + broken.length + ")", INFEASIBLE_MARKER));
    }
    traces.push({type: "scatter", mode: "lines", name: bestName, x: best.map(xOf), y: bestY,
                 line: {shape: "hv", color: "#d62728"}, hoverinfo: "skip"});
    return traces;
  }

  function historyLayout(xaxis, ytitle) {
    return {height: 340, xaxis: xaxis, yaxis: axisTitle(ytitle),
            legend: {orientation: "h", y: 1.15}};
  }

  /* run i's first report of the objective at or past step s (null: it never got there) */
  function valueAt(i, s) {
    var c = CURVE_OF[i];
    var ys = c ? c.m[OBJ] : null;
    if (!ys) { return null; }
    for (var k = 0; k < c.step.length; k++) {
      if (c.step[k] >= s && ys[k] !== null) { return ys[k]; }
    }
    return null;
  }

  /* the history by trial: final values (step null), or every run's value at step s */
  function historyByTrial(el, s) {
    var trial = function (i) { return R.trial[i]; };
    var finished, pruned, best, yOf, bestName, ytitle, yText = "";
    if (s === null) {
      finished = D.scored.slice().sort(byTrialOrder);
      pruned = D.pruned.slice().sort(byTrialOrder);
      best = finished;
      yOf = function (i) { return R.m[OBJ][i]; };
      bestName = D.infeasible.run.length ? "best so far (feasible runs)"
        : "best so far (finished runs)";
      ytitle = OBJ;
    } else {
      var at = {};
      R.trial.forEach(function (_, i) {
        if (R.status[i] === "finished" || R.status[i] === "pruned") {
          var v = valueAt(i, s);
          if (v !== null) { at[i] = v; }
        }
      });
      best = Object.keys(at).map(Number).sort(byTrialOrder);
      finished = best.filter(function (i) { return R.status[i] === "finished"; });
      pruned = best.filter(function (i) { return R.status[i] === "pruned"; });
      yOf = function (i) { return at[i]; };
      bestName = "best so far at step " + fmt(s);
      ytitle = OBJ + " at step " + fmt(s);
      yText = "<br><b>" + esc(ytitle) + " = %{y}</b>";
    }
    el.dataset.pruned = String(pruned.length);
    markInfeasible(el, finished);
    return {traces: historyTraces(finished, pruned, best, trial, yOf, bestName, yText),
            layout: historyLayout(axisTitle("trial"), ytitle),
            points: finished.length + pruned.length};
  }

  /* a select's options made again from [value, text] pairs, keeping its choice when it is
     still one of them (else ``fallback`` when it is one, else the first); returns the value
     chosen */
  function setOptions(select, options, fallback) {
    var chosen = select.value;
    select.textContent = "";
    options.forEach(function (o) {
      var option = document.createElement("option");
      option.value = o[0];
      option.textContent = o[1];
      select.appendChild(option);
    });
    var values = options.map(function (o) { return o[0]; });
    select.value = values.indexOf(chosen) >= 0 ? chosen
      : values.indexOf(fallback) >= 0 ? fallback : values[0];
    return select.value;
  }

  function chosenStep() {
    var value = byId("history-step").value;
    return value === "" ? null : Number(value);
  }

  /* the step select's options; the step shown */
  function stepControl() {
    var select = byId("history-step");
    select.parentNode.hidden = !D.steps.length;
    setOptions(select, [["", "final value"]].concat(D.steps.map(function (s) {
      return [String(s), "value at step " + fmt(s)];
    })), "");
    return chosenStep();
  }

  byId("history-step").addEventListener("change", function () {
    var el = byId("plot-history-trial");
    var got = historyByTrial(el, chosenStep());
    el.dataset.points = String(got.points);
    Plotly.react(el, got.traces, Object.assign(el.layout, got.layout), CONFIG);
  });

  function history() {
    var byTrial = byId("plot-history-trial");
    var byTime = byId("plot-history-time");
    if (!D.scored.length && !D.pruned.length) {
      byId("history-step").parentNode.hidden = true;
      note(byTrial, "No run has finished or been pruned yet.");
      clear(byTime);
      byTime.dataset.points = "0";
      return;
    }
    var got = historyByTrial(byTrial, stepControl());
    draw(byTrial, got.traces, got.layout, got.points);
    var ended = function (i) { return R.end[i] !== null; };
    var byEnd = function (a, b) { return R.end[a] - R.end[b]; };
    var finished = D.scored.filter(ended).sort(byEnd);
    var pruned = D.pruned.filter(ended).sort(byEnd);
    var xaxis = axisTitle("time the run ended");
    xaxis.type = "date";
    var when = function (i) { return date(R.end[i]); };
    var last = function (i) { return R.m[OBJ][i]; };
    byTime.dataset.pruned = String(pruned.length);
    markInfeasible(byTime, finished);
    draw(byTime, historyTraces(finished, pruned, finished, when, last,
                               D.infeasible.run.length ? "best so far (feasible runs)"
                                 : "best so far (finished runs)", ""),
         historyLayout(xaxis, OBJ), finished.length + pruned.length);
  }

  /* -- parallel coordinates ------------------------------------------------------------ */
  function linearTicks(lo, hi) {
    if (lo === hi) { return [lo]; }
    var ticks = [];
    for (var k = 0; k <= 4; k++) { ticks.push(lo + (hi - lo) * k / 4); }
    return ticks;
  }

  function numericDimension(label, values, log) {
    var shown = values.map(function (v) {
      if (v === null || (log && !(v > 0))) { return null; }
      return log ? Math.log10(v) : v;
    });
    var known = shown.filter(function (v) { return v !== null; });
    var lo = known.length ? known.reduce(function (a, b) { return Math.min(a, b); }) : 0;
    var hi = known.length ? known.reduce(function (a, b) { return Math.max(a, b); }) : 1;
    var tickvals, ticktext;
    if (log) {
      tickvals = [];
      for (var e = Math.floor(lo); e <= Math.ceil(hi); e++) { tickvals.push(e); }
      ticktext = tickvals.map(function (e) { return fmt(Math.pow(10, e)); });
    } else {
      tickvals = linearTicks(lo, hi);
      ticktext = tickvals.map(fmt);
    }
    if (known.length < shown.length) {  /* runs without the key sit below the others */
      var none = lo - 0.1 * ((hi - lo) || 1);
      shown = shown.map(function (v) { return v === null ? none : v; });
      tickvals.unshift(none);
      ticktext.unshift("(none)");
      lo = none;
    }
    return {label: label, values: shown, tickvals: tickvals, ticktext: ticktext,
            range: [Math.min(lo, tickvals[0]), Math.max(hi, tickvals[tickvals.length - 1])]};
  }

  function dimension(p, idx) {
    var values = idx.map(function (i) { return R.p[p.name][i]; });
    if (p.axis !== "category") { return numericDimension(p.name, values, p.axis === "log"); }
    var labels = p.categories.slice();
    if (values.some(function (v) { return v === null; })) {
      labels.push("(none)");
      values = values.map(function (v) { return v === null ? labels.length - 1 : v; });
    }
    return {label: p.name, values: values, tickvals: labels.map(function (_, k) { return k; }),
            ticktext: labels, range: [0, Math.max(1, labels.length - 1)]};
  }

  function parcoords() {
    var el = byId("plot-parcoords");
    var idx = D.scored.concat(D.pruned);
    if (!idx.length) { note(el, "No run has finished or been pruned yet."); return; }
    var dims = D.params.map(function (p) { return dimension(p, idx); });
    D.objectives.forEach(function (k) {
      dims.push(numericDimension(k, idx.map(function (i) { return R.m[k][i]; }), false));
    });
    el.dataset.pruned = String(D.pruned.length);
    if (D.pruned.length) {  /* where each run's values come from: pruned runs stopped early */
      dims.push(numericDimension("last step", idx.map(function (i) { return R.step[i]; }),
                                 false));
    }
    markInfeasible(el, idx);
    if (D.infeasible.run.length) {  /* which runs keep the constraints */
      dims.push({label: "feasible", tickvals: [0, 1], ticktext: ["no", "yes"], range: [0, 1],
                 values: idx.map(function (i) { return infeasible(i) ? 0 : 1; })});
    }
    var color = idx.map(function (i) { return R.m[OBJ][i]; });
    draw(el, [{type: "parcoords", dimensions: dims,
               line: {color: color, colorscale: "Viridis", reversescale: MINIMIZE,
                      showscale: true, colorbar: {title: {text: OBJ}}}}],
         {height: 460, margin: {l: 80, r: 90, t: 70, b: 30}}, idx.length);
  }

  /* -- slices -------------------------------------------------------------------------- */
  function slices() {
    var box = byId("plot-slices");
    dropNotes(box);
    if (!D.params.length) { note(box, "No parameter took more than one value."); return; }
    if (!D.scored.length && !D.pruned.length) {
      note(box, "No run has finished or been pruned yet.");
      return;
    }
    var shown = function (p) {
      return function (i) {
        var v = R.p[p.name][i];
        return v !== null && (p.axis !== "log" || v > 0);
      };
    };
    dropOthers(box, D.params.map(function (p) { return p.name; }));
    D.params.forEach(function (p) {
      var el = keyed(box, p.name, "slice");
      el.dataset.param = p.name;
      var idx = D.scored.filter(shown(p));
      var broken = idx.filter(infeasible);
      idx = idx.filter(feasible);
      var pruned = D.pruned.filter(shown(p));
      var xaxis = axisTitle(p.name);
      if (p.axis === "log") { xaxis.type = "log"; }
      if (p.axis === "category") {
        xaxis.type = "category";
        xaxis.categoryorder = "array";
        xaxis.categoryarray = p.categories;
      }
      var mk = function (runs, name, marker) {
        return {type: "scatter", mode: "markers", name: name,
                x: runs.map(function (i) { return paramText(p, R.p[p.name][i]); }),
                y: runs.map(function (i) { return R.m[OBJ][i]; }),
                text: runs.map(hover), hovertemplate: "%{text}<extra></extra>",
                marker: marker};
      };
      var traces = [mk(idx, "finished (" + idx.length + ")",
                       {size: 7, color: idx.map(function (i) { return R.trial[i]; }),
                        colorscale: "Blues", line: {width: 0.5, color: "#455a64"}})];
      if (pruned.length) {
        traces.push(mk(pruned, "pruned (" + pruned.length + ")", PRUNED_MARKER));
      }
      if (broken.length) {
        traces.push(mk(broken, "infeasible (" + broken.length + ")", INFEASIBLE_MARKER));
      }
      el.dataset.pruned = String(pruned.length);
      markInfeasible(el, broken);
      draw(el, traces, {height: 300, margin: {l: 60, r: 12, t: 12, b: 48}, xaxis: xaxis,
                        yaxis: axisTitle(OBJ), showlegend: false},
           idx.length + broken.length + pruned.length);
    });
  }

  /* -- importance ---------------------------------------------------------------------- */
  function importance() {
    var el = byId("plot-importance");
    var imp = D.importance;
    byId("importance-method").textContent = "Method: " + imp.method +
      (imp.basis ? ", from " + imp.basis : "") + ".";
    if (imp.note) { note(el, "Not computed: " + imp.note + "."); return; }
    var rows = imp.values.slice().reverse();
    draw(el, [{type: "bar", orientation: "h",
               y: rows.map(function (r) { return r[0]; }),
               x: rows.map(function (r) { return r[1]; }),
               text: rows.map(function (r) { return fmt(r[1]); }), textposition: "auto",
               hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
               marker: {color: STATUS_COLORS.finished}}],
         {height: 90 + 30 * rows.length, xaxis: axisTitle("importance (sums to 1)"),
          yaxis: {type: "category", automargin: true}}, rows.length);
  }

  /* -- learning curves ----------------------------------------------------------------- */
  function curveTraces(metric) {
    var groups = {};
    var ends = {x: [], y: [], text: []};
    var drawn = 0;
    D.curves.forEach(function (c) {
      var ys = c.m[metric];
      if (!ys) { return; }
      var status = R.status[c.run];
      var g = groups[status] || (groups[status] = {x: [], y: [], text: [], n: 0});
      if (g.n) { g.x.push(null); g.y.push(null); g.text.push(""); }
      g.n += 1;
      drawn += 1;
      var text = hover(c.run);
      var last = -1;
      c.step.forEach(function (s, k) {
        g.x.push(s);
        g.y.push(ys[k]);
        g.text.push(text);
        if (ys[k] !== null) { last = k; }
      });
      if (status === "pruned" && last >= 0) {
        ends.x.push(c.step[last]);
        ends.y.push(ys[last]);
        ends.text.push(text);
      }
    });
    var traces = Object.keys(groups).map(function (status) {
      var g = groups[status];
      return {type: g.x.length > GL_LIMIT ? "scattergl" : "scatter", mode: "lines",
              name: status + " (" + g.n + ")", x: g.x, y: g.y, text: g.text,
              connectgaps: false,
              hovertemplate: "%{text}<br>step %{x}: " + esc(metric) + " = %{y}<extra></extra>",
              line: {width: 1.3, color: STATUS_COLORS[status] || "#7f7f7f",
                     dash: status === "pruned" ? "dash" : "solid"}};
    });
    if (ends.x.length) {
      traces.push({type: "scatter", mode: "markers", name: "pruned here (" + ends.x.length + ")",
                   x: ends.x, y: ends.y, text: ends.text,
                   hovertemplate: "%{text}<br>pruned at step %{x}<extra></extra>",
                   marker: {symbol: "x", size: 9, color: STATUS_COLORS.pruned}});
    }
    return {traces: traces, drawn: drawn, pruned: ends.x.length};
  }

  function curves() {
    var el = byId("plot-curves");
    var select = byId("curve-metric");
    select.parentNode.hidden = !D.curves.length;
    if (!D.curves.length) {
      note(el, "No run reported intermediate results (from hpsearch import report, or a " +
           "summary file rewritten during training).");
      return;
    }
    var names = [];
    D.curves.forEach(function (c) {
      Object.keys(c.m).forEach(function (k) { if (names.indexOf(k) < 0) { names.push(k); } });
    });
    names.sort(function (a, b) {
      return (D.objectives.indexOf(b) >= 0) - (D.objectives.indexOf(a) >= 0) || (a < b ? -1 : 1);
    });
    var metric = setOptions(select, names.map(function (k) { return [k, k]; }), OBJ);
    var got = curveTraces(metric);
    el.dataset.pruned = String(got.pruned);
    draw(el, got.traces, curveLayout(metric), got.drawn);
  }

  function curveLayout(metric) {
    return {height: 420, xaxis: axisTitle("step"), yaxis: axisTitle(metric),
            legend: {orientation: "h", y: 1.08}};
  }

  byId("curve-metric").addEventListener("change", function () {
    var el = byId("plot-curves");
    var metric = byId("curve-metric").value;
    var again = curveTraces(metric);
    el.dataset.points = String(again.drawn);
    el.dataset.pruned = String(again.pruned);
    Plotly.react(el, again.traces, Object.assign(el.layout, curveLayout(metric)), CONFIG);
  });

  /* -- timeline ------------------------------------------------------------------------ */
  function timeline() {
    var el = byId("plot-timeline");
    var B = D.bars;
    if (!B.run.length) { note(el, "No run has started yet."); return; }
    var kinds = {};
    var queued = {base: [], x: [], y: [], text: []};
    B.run.forEach(function (run, k) {
      var kind = B.last[k] ? R.status[run] : "retried";
      var g = kinds[kind] || (kinds[kind] = {base: [], x: [], y: [], text: []});
      var lane = D.lanes[B.lane[k]];
      var seconds = B.end[k] - B.start[k];
      g.base.push(date(B.start[k]));
      g.x.push(seconds * 1000);
      g.y.push(lane);
      g.text.push(hover(run) + "<br>" + esc(kind) + " on " + esc(lane) +
                  (B.job[k] ? ", job " + esc(B.job[k]) : "") + ", " + fmt(seconds) + " s");
      if (B.queued[k] !== null) {
        queued.base.push(date(B.queued[k]));
        queued.x.push((B.start[k] - B.queued[k]) * 1000);
        queued.y.push(lane);
        queued.text.push(hover(run) + "<br>queued " + fmt(B.start[k] - B.queued[k]) + " s");
      }
    });
    var traces = [];
    if (queued.x.length) { kinds = Object.assign({queued: queued}, kinds); }
    Object.keys(kinds).forEach(function (kind) {
      var g = kinds[kind];
      traces.push({type: "bar", orientation: "h", name: kind + " (" + g.x.length + ")",
                   base: g.base, x: g.x, y: g.y, text: g.text, textposition: "none",
                   hovertemplate: "%{text}<extra></extra>",
                   marker: {color: kind === "queued" ? "#cfd8dc" : BAR_COLORS[kind] || "#9e9e9e",
                            line: {width: 0.5, color: "#fff"}}});
    });
    var xaxis = axisTitle("time");
    xaxis.type = "date";
    draw(el, traces, {height: Math.min(1600, 140 + 24 * D.lanes.length), barmode: "overlay",
                      bargap: 0.15, xaxis: xaxis,
                      yaxis: {type: "category", categoryorder: "array", automargin: true,
                              categoryarray: D.lanes.slice().reverse()},
                      legend: {orientation: "h", y: 1.1}}, B.run.length);
  }

  /* -- Pareto front -------------------------------------------------------------------- */
  function pareto() {
    var box = byId("plot-pareto");
    byId("pareto").hidden = D.pareto === null;
    document.querySelector('nav a[href="#pareto"]').hidden = D.pareto === null;
    if (D.pareto === null) { clear(box); return; }
    dropNotes(box);
    if (!D.scored.length) { note(box, "No run has finished yet."); return; }
    var shown = D.objectives.slice(0, 3);
    var pairs = shown.length === 2 ? [[0, 1]] : [[0, 1], [0, 2], [1, 2]];
    var keyOf = function (pair) { return shown[pair[0]] + "\n" + shown[pair[1]]; };
    dropOthers(box, pairs.map(keyOf));
    var onFront = {};
    D.pareto.forEach(function (i) { onFront[i] = true; });
    var rest = D.scored.filter(function (i) { return !onFront[i]; });
    pairs.forEach(function (pair) {
      var a = shown[pair[0]], b = shown[pair[1]];
      var el = keyed(box, keyOf(pair), "pareto-plot");
      var front = D.pareto.slice().sort(function (i, j) { return R.m[a][i] - R.m[a][j]; });
      var mk = function (idx, name, color, mode) {
        return {type: markers(idx.length), mode: mode, name: name,
                x: idx.map(function (i) { return R.m[a][i]; }),
                y: idx.map(function (i) { return R.m[b][i]; }),
                text: idx.map(hover), hovertemplate: "%{text}<extra></extra>",
                marker: {size: 7, color: color}, line: {color: color}};
      };
      el.dataset.front = String(front.length);
      markInfeasible(el, D.scored);
      var traces = [mk(rest, "dominated (" + rest.length + ")", "#90a4ae", "markers"),
                    mk(front, "Pareto front (" + front.length + ")", "#d62728",
                       shown.length === 2 ? "lines+markers" : "markers")];
      var broken = D.scored.filter(infeasible);
      if (broken.length) {  /* crossed over their own markers */
        traces.push(Object.assign(mk(broken, "infeasible (" + broken.length + ")",
                                     INFEASIBLE_MARKER.color, "markers"),
                                  {marker: INFEASIBLE_MARKER}));
      }
      draw(el, traces,
           {height: 380, xaxis: axisTitle(a + " (" + D.directions[pair[0]] + ")"),
            yaxis: axisTitle(b + " (" + D.directions[pair[1]] + ")"),
            legend: {orientation: "h", y: 1.12}}, D.scored.length);
    });
  }

  /* -- a multi-fidelity search: the brackets, or the best member's schedule ------------- */
  function lineage() {
    var L = D.lineage;
    var box = byId("plot-lineage");
    byId("lineage").hidden = L === null;
    document.querySelector('nav a[href="#lineage"]').hidden = L === null;
    if (L === null) { clear(box); return; }
    dropNotes(box);
    var scored = {};
    D.scored.forEach(function (i) { scored[i] = true; });
    var text = function (i) {
      return hover(i) + "<br>" + esc(L.parameter) + " = " + esc(fmt(L.at[i]));
    };
    if (L.kind === "budget") {
      brackets(box, L, scored, text);
    } else {
      population(box, L, scored, text);
    }
  }

  /* each bracket's runs at their budgets; a line from a run to the one that continued it */
  function brackets(box, L, scored, text) {
    byId("lineage-title").textContent = "Brackets";
    byId("lineage-note").textContent = "Each bracket's finished runs by budget (" +
      L.parameter + ", log axis) and " + OBJ + "; a line joins a configuration's run to " +
      "the run that continued it at the next budget (a promotion).";
    dropOthers(box, ["brackets"]);
    var el = keyed(box, "brackets", "plot");
    var groups = [];
    D.scored.forEach(function (i) {
      if (groups.indexOf(L.group[i]) < 0) { groups.push(L.group[i]); }
    });
    groups.sort(function (a, b) { return a - b; });
    var traces = [];
    var links = 0;
    groups.forEach(function (g) {
      var idx = D.scored.filter(function (i) { return L.group[i] === g; });
      var x = [], y = [];
      idx.forEach(function (i) {
        var from = L.from[i];
        if (from !== null && scored[from]) {
          x.push(L.at[from], L.at[i], null);
          y.push(R.m[OBJ][from], R.m[OBJ][i], null);
          links += 1;
        }
      });
      traces.push({type: "scatter", mode: "markers", name: "bracket " + g + " (" +
                   idx.length + ")", legendgroup: "b" + g,
                   x: idx.map(function (i) { return L.at[i]; }),
                   y: idx.map(function (i) { return R.m[OBJ][i]; }),
                   text: idx.map(text), hovertemplate: "%{text}<extra></extra>",
                   marker: {size: 7}});
      if (x.length) {
        traces.push({type: "scatter", mode: "lines", legendgroup: "b" + g,
                     showlegend: false, x: x, y: y, hoverinfo: "skip",
                     line: {width: 1, color: "#90a4ae"}});
      }
    });
    el.dataset.links = String(links);
    var xaxis = axisTitle(L.parameter + " (budget)");
    xaxis.type = "log";
    draw(el, traces, {height: 420, xaxis: xaxis, yaxis: axisTitle(OBJ),
                      legend: {orientation: "h", y: 1.12}}, D.scored.length);
  }

  /* the hyperparameters of the best member of the last segment, segment by segment */
  function population(box, L, scored, text) {
    byId("lineage-title").textContent = "Population";
    var last = D.scored.reduce(function (m, i) { return Math.max(m, L.level[i]); }, -1);
    var final = D.scored.filter(function (i) { return L.level[i] === last; });
    if (!final.length) {
      dropOthers(box, []);
      byId("lineage-note").textContent = "";
      note(box, "No run has finished yet.");
      return;
    }
    var best = final.reduce(function (a, b) {
      return (MINIMIZE ? R.m[OBJ][b] < R.m[OBJ][a] : R.m[OBJ][b] > R.m[OBJ][a]) ? b : a;
    });
    var chain = [];
    for (var i = best; i !== null && i !== undefined; i = L.from[i]) { chain.unshift(i); }
    var exploits = chain.filter(function (j, k) {
      return k > 0 && L.group[j] !== L.group[chain[k - 1]];
    }).length;
    byId("lineage-note").textContent = "The hyperparameters of the best member (member " +
      L.group[best] + ", " + OBJ + " " + fmt(R.m[OBJ][best]) + ") segment by segment, by " +
      L.parameter + " at each segment's end: the runs it continued, back to its first; " +
      exploits + " of them took a better member's checkpoint and explored its values.";
    var params = D.params.filter(function (p) { return p.name !== L.parameter; });
    dropOthers(box, params.map(function (p) { return p.name; }));
    params.forEach(function (p) {
      var el = keyed(box, p.name, "plot");
      el.dataset.param = p.name;
      var yaxis = axisTitle(p.name);
      if (p.axis === "log") { yaxis.type = "log"; }
      if (p.axis === "category") {
        yaxis.type = "category";
        yaxis.categoryorder = "array";
        yaxis.categoryarray = p.categories;
      }
      draw(el, [{type: "scatter", mode: "lines+markers", name: p.name,
                 line: {shape: "vh"},  // a value holds over the segment up to its end
                 x: chain.map(function (j) { return L.at[j]; }),
                 y: chain.map(function (j) {
                   var v = R.p[p.name][j];
                   return p.axis === "category" ? paramText(p, v) : v;
                 }),
                 text: chain.map(text), hovertemplate: "%{text}<extra></extra>"}],
           {height: 300, xaxis: axisTitle(L.parameter), yaxis: yaxis}, chain.length);
    });
  }

  /* -- copy buttons, errors, start ----------------------------------------------------- */
  function fail(section, error) {
    var text = section + ": " + (error && error.message ? error.message : String(error));
    state.errors.push(text);
    var where = byId(section);
    if (where) {
      var p = document.createElement("p");
      p.className = "error";
      p.textContent = "This section could not be drawn: " + text;
      where.appendChild(p);
    }
    if (window.console) { console.error("hpsearch report: " + text); }
  }

  window.addEventListener("error", function (event) { state.errors.push(String(event.message)); });

  /* on the document: the summary's buttons are made again with each live update */
  document.addEventListener("click", function (event) {
    var btn = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (btn) {
      var target = byId(btn.dataset.copy);
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var done = function () { btn.textContent = "copied"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(target.textContent).then(done, function () {
          if (document.execCommand("copy")) { done(); }
        });
      } else if (document.execCommand("copy")) { done(); }
    }
  });

  var SECTIONS = {history: history, parcoords: parcoords, slices: slices,
                  importance: importance, curves: curves, timeline: timeline, pareto: pareto,
                  lineage: lineage};

  /* every section drawn from ``data``; resolves when every plot is drawn */
  function render(data) {
    use(data);
    pending = [];
    Array.prototype.forEach.call(document.querySelectorAll("section > p.error"), function (p) {
      p.parentNode.removeChild(p);
    });
    Object.keys(SECTIONS).forEach(function (name) {
      var before = pending.length;
      try {
        SECTIONS[name]();
      } catch (error) {
        fail(name, error);
      }
      for (var k = before; k < pending.length; k++) {
        pending[k] = pending[k].catch(function (error) { fail(name, error); });
      }
    });
    return Promise.all(pending).then(function () {
      document.body.dataset.rendered = state.errors.length ? "errors" : "ok";
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    });
  }

  /* -- a served page: newer data every few seconds ------------------------------------- */
  function live(config) {
    var token = new URLSearchParams(window.location.search).get("token");
    var headers = token ? {Authorization: "Bearer " + token} : {};
    var version = config.version;
    var status = byId("live-status");
    var say = function (text, lost) {
      status.hidden = false;
      status.textContent = text;
      status.className = lost ? "lost" : "";
    };
    var poll = function () {
      fetch(config.data + "?since=" + encodeURIComponent(version),
            {headers: headers, cache: "no-store"}).then(function (answer) {
        if (answer.status === 204) { return null; }
        if (!answer.ok) { throw new Error("the server answered " + answer.status); }
        return answer.json();
      }).then(function (got) {
        if (got === null) { return null; }
        version = got.version;
        byId("summary-body").innerHTML = got.summary;
        byId("failures-body").innerHTML = got.failures;
        return render(got.data);
      }).then(function () {
        say("live: up to date at " + new Date().toLocaleTimeString(), false);
      }, function (error) {
        say("live: " + (error && error.message ? error.message : String(error)) +
            "; trying again", true);
      }).then(function () { window.setTimeout(poll, config.every_ms); });
    };
    say("live: updates every " + config.every_ms / 1000 + " s", false);
    window.setTimeout(poll, config.every_ms);
  }

  render(JSON.parse(byId("hpsearch-data").textContent)).then(function () {
    var config = byId("hpsearch-live");
    if (config) { live(JSON.parse(config.textContent)); }
  });
}());
