// The about page: the pipeline's and the champion's numbers, from GET /api/about (read from MLflow).
const pct = (x) => (x == null ? "–" : `${(x * 100).toFixed(1)}%`);
const count = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en"));

function row(cells, header) {
  const tr = document.createElement("tr");
  cells.forEach((text, i) => {
    const cell = document.createElement(i === 0 && header ? "th" : "td");
    if (i === 0 && header) cell.scope = "row";
    cell.textContent = text;
    tr.append(cell);
  });
  return tr;
}

function headRow(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) { const th = document.createElement("th"); th.scope = "col"; th.textContent = text; tr.append(th); }
  return tr;
}

function fact(term, value) {
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = term; dd.textContent = value;
  $("model-facts").append(dt, dd);
}

function showHistory(moves) {
  if (!moves || !moves.length) { $("history-none").hidden = false; return; }
  const body = $("alias-history").querySelector("tbody");
  for (const m of moves) body.append(row([stjWhen(m.at), `@${m.alias}`, m.from_version ?? "–", m.to_version, m.kind, m.by, m.why]));
}

function showMonitor(report) {
  if (!report) return;
  const mix = (shares) => Object.entries(shares).map(([c, s]) => `${c} ${pct(s)}`).join(", ");
  const verdict = report.drifted == null ? "too few predictions to judge"
    : report.drifted ? "drift found" : "no drift";
  $("monitor-line").textContent = `Checked ${stjWhen(report.created_at)} over ${count(report.predictions)} predictions `
    + `of version ${report.model.version}: ${verdict}. "None of these": ${pct(report.ood_rate)} `
    + `(test photos: ${pct(report.baseline_ood_rate)}). Class mix: ${mix(report.class_mix)} `
    + `(test photos: ${mix(report.baseline_class_mix)}).`;
}

function show(facts) {
  showHistory(facts.alias_history);
  showMonitor(facts.monitor);
  const model = facts.model, run = facts.run;
  $("served-line").textContent = `Serving ${model.name} v${model.version} (${model.runtime}).`;
  fact("Served", `${model.name} version ${model.version}, on ${model.runtime}`);
  fact("Classes", model.classes.join(", "));
  fact("Input", `${model.image_size} × ${model.image_size} pixels`);
  if (!run) { $("no-run").hidden = false; return; }
  const sides = ["train", "val", "test"];
  const classes = Object.keys(run.photos || {});
  const total = classes.reduce((sum, c) => sum + sides.reduce((s, side) => s + (run.photos[c][side] || 0), 0), 0);
  $("photos-line").textContent = classes.length
    ? `${count(total)} photos: ${classes.map((c) => `${c} ${sides.reduce((s, side) => s + (run.photos[c][side] || 0), 0)}`).join(", ")}.` : "";
  $("split-line").textContent = `${count(run.split.train)} train, ${count(run.split.val)} validation, ${count(run.split.test)} test.`;
  $("train-line").textContent = `${run.backbone} (weights: ${run.weights}), trained ${stjWhen(run.trained)}.`;
  if (facts.last_run) {
    $("last-run").textContent = `The pipeline last ran ${stjWhen(facts.last_run.started)} (${facts.last_run.status.toLowerCase()}).`;
  }
  $("photos").querySelector("thead").append(headRow(["Class", "Train", "Validation", "Test"]));
  for (const c of classes) $("photos").querySelector("tbody").append(row([c, ...sides.map((s) => count(run.photos[c][s]))], true));
  fact("Backbone", `${run.backbone}, frozen, ImageNet weights: ${run.weights}`);
  fact("Head", `dense layers ${run.head.dense_units}, dropout ${run.head.dropout}`);
  fact("Parameters", `${count(run.parameters.backbone)} in the backbone (frozen), ${count(run.parameters.head)} in the head (trained)`);
  fact("Runs on", `${run.runtime}, ${run.precision}`);
  fact("Fine-tuning", run.finetune || "–");
  fact("Training run", run.run_name || run.run_id);
  $("headline").textContent = `Test accuracy ${pct(run.metrics.accuracy)}, macro F1 ${pct(run.metrics.macro_f1)}.`;
  for (const c of run.per_class) $("per-class").querySelector("tbody").append(row([c.class, pct(c.precision), pct(c.recall), pct(c.f1)], true));
  if (run.confusion_matrix) {
    const names = run.confusion_matrix.classes;
    $("confusion").querySelector("thead").append(headRow(["true \\ said", ...names]));
    run.confusion_matrix.confusion_matrix.forEach((counts, i) =>
      $("confusion").querySelector("tbody").append(row([names[i], ...counts.map(String)], true)));
  }
}

fetch("/api/about").then((r) => r.json()).then(show).catch(() => { $("no-run").hidden = false; });
