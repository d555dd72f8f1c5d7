// The admin's review: three lists from GET /api/review, a decision per photo to POST /api/review/decisions.
const DECISIONS = { relabel: "Relabel to", exclude: "Exclude", keep: "Keep as it is", add: "Add to the data set as" };
let classes = [], decisions = {};

function say(message, isError) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "busy";
}

function decidedText(sha) {
  const d = decisions[sha];
  if (!d) return "not decided yet";
  return d.label ? `decided: ${d.decision} → ${d.label}` : `decided: ${d.decision}`;
}

function decisionForm(sha, choices, suggested) {
  // a select of decisions, a class select (for relabel and add) and a Save button; all text set as text
  const form = document.createElement("form");
  form.className = "decide";
  const decision = document.createElement("select");
  decision.setAttribute("aria-label", "decision");
  for (const key of choices) decision.add(new Option(DECISIONS[key], key));
  const label = document.createElement("select");
  label.setAttribute("aria-label", "class");
  for (const name of classes) label.add(new Option(name, name));
  if (suggested && classes.includes(suggested)) label.value = suggested;
  const toggle = () => { label.hidden = !["relabel", "add"].includes(decision.value); };
  decision.addEventListener("change", toggle); toggle();
  const save = document.createElement("button");
  save.type = "submit"; save.textContent = "Save";
  const state = document.createElement("span");
  state.className = "hint"; state.textContent = decidedText(sha);
  form.append(decision, label, save, state);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { sha256: sha, decision: decision.value };
    if (!label.hidden) body.class = label.value;
    const [ok, answer] = await stjJson("/api/review/decisions", "POST", body);
    if (!ok) { say(answer.error ? answer.error.message : "not saved", true); return; }
    decisions[sha] = answer;
    state.textContent = decidedText(sha);
    say("Saved. The next pipeline run applies it.");
  });
  return form;
}

function item(entry, lines, choices, suggested) {
  const li = document.createElement("li");
  if (entry.has_photo && entry.sha256) {
    const img = document.createElement("img");
    img.src = `/api/review/photo/${entry.sha256}`; img.alt = "the photo"; img.loading = "lazy";
    li.append(img);
  } else {
    const none = document.createElement("span");
    none.className = "no-photo"; none.textContent = "no photo kept";
    li.append(none);
  }
  const text = document.createElement("div");
  for (const line of lines) {
    const p = document.createElement("p");
    p.textContent = line;
    text.append(p);
  }
  if (entry.sha256) text.append(decisionForm(entry.sha256, choices, suggested));
  else {
    const p = document.createElement("p");
    p.className = "hint"; p.textContent = "nothing to decide: no photo was kept";
    text.append(p);
  }
  li.append(text);
  return li;
}

function fill(list, entries, render, empty) {
  list.replaceChildren(...entries.map(render));
  if (!entries.length) {
    const li = document.createElement("li");
    li.className = "hint"; li.textContent = empty;
    list.append(li);
  }
}

async function load() {
  const response = await fetch("/api/review");
  if (response.status === 401) { location.href = "/login?next=/review"; return; }
  const body = await response.json();
  if (!response.ok) { say(body.error ? body.error.message : "cannot load the review", true); return; }
  classes = body.classes; decisions = body.decisions;
  $("model").textContent = body.model.version ? `${body.model.name} v${body.model.version}` : body.model.name;
  fill($("flags"), body.flags, (f) => item(f, [
    `answered ${f.label || "?"}, the user says ${f.corrected}`, `${stjWhen(f.created_at)} · ${f.prediction_id}`,
  ], f.has_photo ? ["add", "relabel", "exclude", "keep"] : [], f.corrected), "No flags yet.");
  fill($("issues"), body.label_issues, (i) => item(i, [
    `listed as ${i.given_class}, looks like ${i.suggested_class}`, `label quality ${i.score.toFixed(2)} · ${i.path}`,
  ], ["relabel", "exclude", "keep"], i.suggested_class), "No label issues in this model's run.");
  fill($("ood"), body.none_of_these, (o) => item(o, [
    `"none of these" (score ${Number(o.ood_score).toFixed(3)}); nearest ${o.label}`,
    `${stjWhen(o.created_at)} · ${o.model_name} v${o.model_version}`,
  ], ["add", "exclude", "keep"], o.label), "No photo was called \"none of these\".");
  say("");
}

load();
