// The demo page: drives a `Session` of the wasm crate (web/), which lives in a Web Worker
// (worker.js), one awaited call at a time; this thread only draws, so the page stays responsive
// while a step runs. State the tests read is on `window.hearth`.

const $ = (id) => document.getElementById(id);

// ---------- the session, in the worker: every method returns a promise ----------
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const pending = new Map();
let nextCall = 0;
worker.onmessage = ({ data }) => {
  const p = pending.get(data.id);
  pending.delete(data.id);
  if (data.ok) p.resolve(data.value); else p.reject(new Error(data.error));
};
worker.onerror = (e) => {
  for (const p of pending.values()) p.reject(new Error(`the worker failed: ${e.message}`));
  pending.clear();
};
function call(method, ...args) {
  return new Promise((resolve, reject) => {
    const id = nextCall++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, method, args });
  });
}
const SESSION_METHODS = ['info', 'train', 'evaluate', 'next_tokens', 'fill_mask', 'generate', 'export', 'save', 'attention', 'schedule', 'free'];
/** The worker's session as an object whose methods are its `Session`'s (each returns a promise). */
const remoteSession = () => Object.fromEntries(SESSION_METHODS.map((m) => [m, (...args) => call(m, ...args)]));

// The page's model choices (the `#model` select: a family, and for T5 which of its objectives): a
// preset of `hearth`, the objective core trains it with (core's spelling), and per size HF config
// overrides (the `[model]` table of a run file).
const MODELS = {
  gpt2: {
    preset: 'gpt-tiny',
    objective: 'causal',
    tiny: { n_embd: 64, n_layer: 2, n_head: 4, n_positions: 64 },
    small: { n_embd: 128, n_layer: 4, n_head: 4, n_positions: 128 },
  },
  llama: {
    preset: 'llama-tiny',
    objective: 'causal',
    tiny: { hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 },
    small: { hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 },
  },
  bert: {
    preset: 'bert-tiny',
    objective: 'masked',
    tiny: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 256, max_position_embeddings: 64 },
    small: { hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 512, max_position_embeddings: 128 },
  },
  't5-span': {
    preset: 't5-tiny',
    objective: 'span',
    tiny: { d_model: 64, d_kv: 16, d_ff: 256, num_layers: 2, num_heads: 4 },
    small: { d_model: 128, d_kv: 32, d_ff: 512, num_layers: 2, num_heads: 4 },
  },
};
MODELS['t5-denoise'] = { ...MODELS['t5-span'], objective: 'denoise' }; // T5 either way; only the target differs
const SHAPES = { tiny: { block_size: 64, batch_size: 8, vocab: 512 }, small: { block_size: 128, batch_size: 16, vocab: 1024 } };
// The page's choice for a model family and objective (an opened checkpoint, a starter).
const CHOICE = (modelType, objective) =>
  Object.keys(MODELS).find((k) => MODELS[k].preset.startsWith(modelType === 'gpt2' ? 'gpt' : modelType) && MODELS[k].objective === objective);
const SAVE_EVERY = 100;

const state = {
  ready: false, session: null, info: null, running: false, busy: false,
  losses: [], vals: [], tokensPerS: null, error: null, lastTrain: null,
};
window.hearth = state;

// ---------- settings ----------
function settings() {
  const choice = MODELS[$('model').value];
  const size = $('size').value;
  const lr = Number($('lr').value) || 3e-3;
  return {
    preset: choice.preset,
    objective: choice.objective,
    model: choice[size],
    block_size: SHAPES[size].block_size,
    batch_size: SHAPES[size].batch_size,
    tokenizer_vocab_size: SHAPES[size].vocab,
    lr, min_lr: lr / 10, warmup_steps: 20, max_steps: 3000,
    // eval_every: the run's validation cadence, kept by core as hearth train keeps it (0: at the
    // last step only).
    eval_every: Math.max(0, Math.round(Number($('eval-every').value) || 0)),
    dropout: 0.0, val_fraction: 0.1, eval_batches: 4, seed: 1337,
  };
}

async function corpusText() {
  const choice = $('corpus').value;
  if (choice === 'paste') return $('paste').value;
  const response = await fetch(choice);
  if (!response.ok) throw new Error(`cannot load ${choice} (${response.status})`);
  return response.text();
}

// ---------- browser storage (IndexedDB): the model survives a reload until Reset ----------
function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('hearth', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}
async function store(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction('kv', mode);
    const req = fn(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}
const idbGet = (k) => store('readonly', (s) => s.get(k));
const idbPut = (k, v) => store('readwrite', (s) => s.put(v, k));
const idbDelete = (k) => store('readwrite', (s) => s.delete(k));

// The model, and on the CPU its optimizer state and step too, so a reload continues the same curve.
async function save() {
  if (!state.session) return;
  const files = await state.session.save();
  await idbPut('model', {
    files, losses: state.losses, vals: state.vals,
    ui: { model: $('model').value, size: $('size').value, backend: $('backend').value, corpus: $('corpus').value, lr: $('lr').value,
      paste: $('corpus').value === 'paste' ? $('paste').value : '' },
    settings: settings(), step: state.info?.step ?? 0,
  });
  state.saved = true;
}

// ---------- rendering ----------
function showError(e) {
  state.error = String(e?.message ?? e);
  $('error').textContent = state.error;
  $('error').hidden = false;
  console.error(e);
}
function clearError() { state.error = null; $('error').hidden = true; }

// Session calls never overlap: each waits for the one before (a probe clicked during training runs
// between two training calls).
let chain = Promise.resolve();
function exclusive(fn) {
  const next = chain.then(fn);
  chain = next.catch(() => {});
  return next;
}

function setBusy(busy) {
  state.busy = busy;
  for (const id of ['predict', 'generate', 'fill', 't5-run', 'export', 'att-run']) $(id).disabled = !state.session;
}

function renderInfo() {
  const info = state.info;
  if (!info) {
    $('backend-line').textContent = 'No model yet.';
    $('params').textContent = '–';
    return;
  }
  const b = info.backend;
  $('backend-line').textContent =
    `${info.model_type} · ${info.objective} · ${info.params.toLocaleString()} parameters · vocabulary ${info.vocab_size} · ` +
    `${b.kind === 'webgpu' ? 'WebGPU' : 'CPU'}: ${b.name}${b.note ? ` — ${b.note}` : ''}`;
  $('backend-line').dataset.backend = b.kind;
  $('params').textContent = info.params.toLocaleString();
  $('step').textContent = info.step;
  document.body.dataset.step = info.step;
  $('probe-causal').hidden = info.objective !== 'causal';
  $('probe-masked').hidden = info.objective !== 'masked';
  $('probe-t5').hidden = !['span', 'denoise'].includes(info.objective);
}

function drawChart() {
  const c = $('chart');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const pts = state.losses;
  if (pts.length < 2) return;
  const pad = 34;
  const all = pts.map((p) => p[1]).concat(state.vals.map((p) => p[1]));
  const lo = Math.min(...all), hi = Math.max(...all);
  const maxStep = pts[pts.length - 1][0];
  const x = (s) => pad + ((c.width - pad - 8) * s) / Math.max(1, maxStep);
  const y = (v) => 8 + ((c.height - pad) * (hi - v)) / Math.max(1e-6, hi - lo);
  g.strokeStyle = '#ccc'; g.fillStyle = '#777'; g.font = '11px sans-serif';
  g.beginPath(); g.moveTo(pad, 8); g.lineTo(pad, c.height - pad + 8); g.lineTo(c.width - 8, c.height - pad + 8); g.stroke();
  g.fillText(hi.toFixed(2), 2, 14); g.fillText(lo.toFixed(2), 2, c.height - pad + 8);
  g.fillText(`step ${maxStep}`, c.width - 60, c.height - 8);
  g.strokeStyle = '#c0392b'; g.lineWidth = 1.5; g.beginPath();
  pts.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v)) : g.moveTo(x(s), y(v))));
  g.stroke();
  g.fillStyle = '#2c6fbb';
  for (const [s, v] of state.vals) { g.beginPath(); g.arc(x(s), y(v), 3.5, 0, 7); g.fill(); }
  g.fillText('— train loss   ● validation', pad + 8, c.height - 8);
}

// The run's learning-rate schedule (from core, as the trainer applies it), the current step marked.
function drawLr() {
  const c = $('lr-chart');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const pts = state.schedule;
  if (!pts || pts.length < 2) return;
  const pad = 34;
  const hi = Math.max(...pts.map((p) => p[1]));
  const maxStep = pts[pts.length - 1][0];
  const x = (s) => pad + ((c.width - pad - 8) * s) / Math.max(1, maxStep);
  const y = (v) => 8 + ((c.height - pad) * (hi - v)) / Math.max(1e-12, hi);
  g.strokeStyle = '#ccc'; g.fillStyle = '#777'; g.font = '11px sans-serif';
  g.beginPath(); g.moveTo(pad, 8); g.lineTo(pad, c.height - pad + 8); g.lineTo(c.width - 8, c.height - pad + 8); g.stroke();
  g.fillText(hi.toExponential(0), 2, 14); g.fillText('0', 2, c.height - pad + 8);
  g.fillText(`step ${maxStep}`, c.width - 64, c.height - 8);
  g.strokeStyle = '#2c6fbb'; g.lineWidth = 1.5; g.beginPath();
  pts.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v)) : g.moveTo(x(s), y(v))));
  g.stroke();
  const step = state.info?.step ?? 0;
  const at = pts.reduce((best, p) => (Math.abs(p[0] - step) < Math.abs(best[0] - step) ? p : best), pts[0]);
  g.fillStyle = '#c0392b'; g.beginPath(); g.arc(x(step), y(at[1]), 3.5, 0, 7); g.fill();
  g.fillStyle = '#777'; g.fillText('learning rate', pad + 8, c.height - 8);
}

// ---------- pictures: the tokens, and attention as a heat map ----------
const shown = (t) => t.replace(/^[Ġ▁]/, '␣');
function renderTokens(a) {
  const chips = (tokens, ids) => tokens.map((t, i) => `<span class="tok" title="id ${ids[i]}">${escape(shown(t))}<small>${ids[i]}</small></span>`).join('');
  $('tokens').innerHTML = `<div><span class="line">${a.tokens.length} tokens</span>${chips(a.tokens, a.ids)}</div>` +
    (a.decoder_tokens ? `<div><span class="line">decoder</span>${chips(a.decoder_tokens, a.decoder_ids)}</div>` : '');
}
function fillSelect(id, values, labels) {
  const el = $(id);
  const keep = el.value;
  el.innerHTML = values.map((v, i) => `<option value="${v}">${labels ? labels[i] : v}</option>`).join('');
  if (values.map(String).includes(keep)) el.value = keep;
}
const STACK_NAMES = { self_attention: 'self-attention', encoder: 'encoder', decoder: 'decoder (causal)', cross: 'cross (decoder → encoder)' };
function attentionControls(a) {
  const stacks = [...new Set(a.maps.map((m) => m.stack))];
  fillSelect('att-stack', stacks, stacks.map((s) => STACK_NAMES[s]));
  const layers = a.maps.filter((m) => m.stack === $('att-stack').value).map((m) => m.layer);
  fillSelect('att-layer', layers);
  fillSelect('att-head', [...Array(a.maps[0].heads).keys()]);
}
function drawHeatmap() {
  const a = state.lastAttention;
  if (!a) return;
  const stack = $('att-stack').value, layer = Number($('att-layer').value), head = Number($('att-head').value);
  const m = a.maps.find((x) => x.stack === stack && x.layer === layer);
  if (!m) return;
  const onDecoder = stack === 'decoder' || stack === 'cross';
  const rows = (onDecoder ? a.decoder_tokens : a.tokens).map(shown);
  const cols = (stack === 'decoder' ? a.decoder_tokens : a.tokens).map(shown);
  const n = m.queries * m.keys;
  const w = m.weights.slice(head * n, (head + 1) * n);
  const c = $('heatmap');
  c.hidden = false;
  const label = Math.min(110, 12 + 7 * Math.max(...rows.concat(cols).map((t) => t.length)));
  const cell = Math.max(6, Math.min(28, Math.floor((c.width - label - 10) / m.keys)));
  c.height = label + cell * m.queries + 10; // the canvas fits the map
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  g.font = '11px ui-monospace, monospace'; g.fillStyle = '#444';
  for (let q = 0; q < m.queries; q++) {
    g.textAlign = 'right'; g.fillStyle = '#444';
    g.fillText(rows[q].slice(0, 14), label - 4, label + q * cell + cell * 0.7);
    for (let k = 0; k < m.keys; k++) {
      const v = w[q * m.keys + k];
      const shade = Math.round(255 * (1 - Math.min(1, Math.max(0, v))));
      g.fillStyle = `rgb(${shade},${shade},255)`;
      g.fillRect(label + k * cell, label + q * cell, cell - 1, cell - 1);
    }
  }
  g.fillStyle = '#444'; g.textAlign = 'left';
  cols.forEach((t, k) => {
    g.save(); g.translate(label + k * cell + cell * 0.7, label - 4); g.rotate(-Math.PI / 3); g.fillText(t.slice(0, 14), 0, 0); g.restore();
  });
  const rowSums = [...Array(m.queries).keys()].map((q) => w.slice(q * m.keys, (q + 1) * m.keys).reduce((s, x) => s + x, 0));
  state.heatmap = { stack, layer, head, rows: m.queries, cols: m.keys, rowTokens: rows.length, colTokens: cols.length, rowSums };
}
async function showAttention() {
  const a = await state.session.attention($('att-text').value);
  state.lastAttention = a;
  renderTokens(a);
  attentionControls(a);
  drawHeatmap();
}

function escape(s) { return s.replace(/[&<>]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[ch]); }

// ---------- sessions ----------
async function newSession() {
  const text = await corpusText();
  $('backend-line').textContent = 'Training a tokenizer on the corpus and building the model…';
  await new Promise((r) => setTimeout(r, 0));
  await call('create', JSON.stringify(settings()), text, $('backend').value);
  state.session = remoteSession();
  state.losses = []; state.vals = [];
  state.info = await state.session.info();
  state.schedule = await state.session.schedule(120);
  renderInfo(); drawChart(); drawLr();
}

async function trainLoop() {
  state.running = true;
  $('train').disabled = true; $('pause').disabled = false;
  try {
    if (!state.session) await newSession();
    setBusy(true);
    while (state.running) {
      const r = await exclusive(() => state.session.train(Math.max(1, Number($('chunk').value) || 1)));
      state.lastTrain = r;
      state.losses.push([r.step, r.loss]);
      state.tokensPerS = state.tokensPerS == null ? r.tokens_per_s : 0.8 * state.tokensPerS + 0.2 * r.tokens_per_s;
      $('loss').textContent = r.loss.toFixed(3);
      $('tps').textContent = Math.round(state.tokensPerS).toLocaleString();
      state.info = await state.session.info();
      renderInfo(); drawChart(); drawLr();
      if (r.val_loss != null) showValidation(r.val_step, r.val_loss); // evaluated by core's engine at eval_every, as hearth train
      if (r.step % SAVE_EVERY === 0) await exclusive(save);
      await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint and take clicks
    }
    await exclusive(evaluate);
    await exclusive(save);
  } catch (e) {
    showError(e);
  } finally {
    state.running = false;
    setBusy(false);
    $('train').disabled = false; $('pause').disabled = true;
  }
}

function showValidation(step, loss) {
  state.vals.push([step, loss]);
  $('val').textContent = `${loss.toFixed(3)} (ppl ${Math.exp(loss).toFixed(1)})`;
  drawChart();
}

async function evaluate() {
  try {
    const v = await state.session.evaluate();
    showValidation(state.info.step, v.loss);
  } catch (e) {
    $('val').textContent = 'n/a';
    console.warn(e);
  }
}

async function reset() {
  state.running = false;
  while (state.busy) await new Promise((r) => setTimeout(r, 20));
  await chain;
  await call('free');
  Object.assign(state, { session: null, info: null, losses: [], vals: [], tokensPerS: null, lastTrain: null, saved: false,
    lastTop: null, lastFill: null, lastGenerated: null, lastT5: null, lastAttention: null, heatmap: null, schedule: null, starter: null });
  await idbDelete('model');
  for (const id of ['loss', 'val', 'tps']) $(id).textContent = '–';
  $('step').textContent = '0';
  delete document.body.dataset.step;
  $('bars').innerHTML = ''; $('fills').innerHTML = ''; $('continuation').textContent = ''; $('t5-out').textContent = '';
  $('tokens').innerHTML = ''; $('heatmap').hidden = true;
  clearError(); renderInfo(); drawChart(); drawLr(); setBusy(false);
}

async function openFiles(files, ui, history, resume) {
  const byName = Object.fromEntries([...files].map((f) => [f.name, f]));
  for (const need of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    if (!byName[need]) throw new Error(`pick ${need} too: a checkpoint folder holds config.json, model.safetensors and tokenizer.json`);
  }
  const config = await byName['config.json'].text();
  const modelType = JSON.parse(config).model_type;
  if (ui) Object.entries(ui).forEach(([k, v]) => { if ($(k) && k !== 'paste') $(k).value = v; });
  if (ui?.paste) $('paste').value = ui.paste;
  // The choice stays where it fits the model (a starter's, a saved run's objective); else the
  // family's own objective, as core's registry lists them.
  const family = (await call('families')).find((f) => f.model_type === modelType);
  const current = MODELS[$('model').value];
  if (family && !(CHOICE(modelType, current.objective) === $('model').value)) {
    $('model').value = CHOICE(modelType, family.objectives[0]) ?? $('model').value;
  }
  $('paste').hidden = $('corpus').value !== 'paste';
  const weights = new Uint8Array(await byName['model.safetensors'].arrayBuffer());
  // The page's block size, at most the model's position table (core refuses a longer one, as
  // `hearth train` does).
  const run = settings();
  const parsed = JSON.parse(config);
  const positions = parsed.n_positions ?? parsed.max_position_embeddings;
  if (positions) run.block_size = Math.min(run.block_size, positions);
  // The worker keeps the session it had if this one cannot be opened.
  await call('open', config, weights, await byName['tokenizer.json'].text(), JSON.stringify(run),
    await corpusText(), $('backend').value, resume?.trainer_state_json ?? null, resume?.optimizer ?? null);
  state.session = remoteSession();
  state.losses = history?.losses ?? []; state.vals = history?.vals ?? [];
  state.info = await state.session.info();
  state.schedule = await state.session.schedule(120);
  state.restoredStep = history?.step ?? 0;
  renderInfo(); drawChart(); drawLr(); setBusy(false);
}

// ---------- starter models: pretrained by `hearth train` (web/make_starters.sh), fetched on a click ----------
const STARTERS = { gpt: 'gpt2', bert: 'bert', t5: 't5-denoise' };
async function loadStarter(name) {
  await reset();
  $('model').value = STARTERS[name];
  $('size').value = 'small';
  $('corpus').value = 'corpus/persuasion_sample.txt'; // training continues on held-out Austen (quick to tokenize)
  $('paste').hidden = true;
  $('backend-line').textContent = `Fetching the ${name.toUpperCase()} starter…`;
  const files = await Promise.all(['config.json', 'model.safetensors', 'tokenizer.json'].map(async (f) => {
    const r = await fetch(`starters/${name}/${f}`);
    if (!r.ok) throw new Error(`cannot load starters/${name}/${f} (${r.status}); web/make_starters.sh makes them`);
    return new File([await r.arrayBuffer()], f);
  }));
  await openFiles(files);
  await save();
  state.starter = name;
  $('backend-line').textContent += ` · ${name.toUpperCase()} starter, pretrained on Pride and Prejudice`;
}

async function restore() {
  const saved = await idbGet('model');
  if (!saved) return;
  const f = saved.files;
  const files = [
    new File([f.config_json], 'config.json'),
    new File([f.model_safetensors], 'model.safetensors'),
    new File([f.tokenizer_json], 'tokenizer.json'),
  ];
  await openFiles(files, saved.ui, saved, f.optimizer ? f : null);
  state.restored = true;
  state.resumedOptimizer = !!f.optimizer;
  $('backend-line').textContent += ` · restored from this browser at step ${saved.step}` +
    (f.optimizer ? ', optimizer and data position included' : ' (weights; a new optimizer on WebGPU)');
}

// ---------- probes ----------
async function guarded(fn) {
  if (!state.session) return;
  try { clearError(); await exclusive(fn); } catch (e) { showError(e); }
}

async function predict() {
  const top = await state.session.next_tokens($('prompt').value, 10);
  state.lastTop = top;
  $('bars').innerHTML = barRows(top);
}

async function generateText() {
  const prompt = $('prompt').value;
  const out = await state.session.generate(prompt, 60, 0.8, 40);
  state.lastGenerated = out;
  $('continuation').innerHTML = `${escape(prompt)}<b>${escape(out)}</b>`;
}

// Each [MASK]'s candidates as bars (relative to its most likely one), with their probabilities.
const barRows = (top) => {
  const most = Math.max(...top.map((t) => t.prob), 1e-9);
  return top
    .map((t) => `<div class="bar"><code>${escape(JSON.stringify(t.token))}</code><div class="fill" style="width:${(100 * t.prob / most).toFixed(1)}%"></div><span>${(100 * t.prob).toFixed(1)}%</span></div>`)
    .join('');
};

async function fill() {
  const fills = await state.session.fill_mask($('masked-text').value, 5);
  state.lastFill = fills;
  $('fills').innerHTML = fills.map((top, i) => `<li><h3>[MASK] ${i + 1}</h3>${barRows(top)}</li>`).join('');
}

async function t5Run() {
  const out = await state.session.generate($('t5-text').value, 30, 0, 0);
  state.lastT5 = out;
  $('t5-out').textContent = out || '(empty)';
}

// ---------- wiring ----------
$('train').onclick = () => { clearError(); trainLoop(); };
$('pause').onclick = () => { state.running = false; };
$('reset').onclick = () => reset().catch(showError);
$('corpus').onchange = () => { $('paste').hidden = $('corpus').value !== 'paste'; };
for (const id of ['model', 'size', 'backend', 'corpus']) {
  $(id).addEventListener('change', () => {
    if (state.session && !state.running) $('backend-line').textContent += ' · (Reset to apply the new choice)';
  });
}
for (const name of Object.keys(STARTERS)) {
  $(`starter-${name}`).onclick = () => { clearError(); loadStarter(name).catch(showError); };
}
$('predict').onclick = () => guarded(predict);
$('generate').onclick = () => guarded(generateText);
$('fill').onclick = () => guarded(fill);
$('t5-run').onclick = () => guarded(t5Run);
$('att-run').onclick = () => guarded(showAttention);
$('att-text').addEventListener('keydown', (e) => { if (e.key === 'Enter') guarded(showAttention); });
$('att-stack').onchange = () => { if (state.lastAttention) { attentionControls(state.lastAttention); drawHeatmap(); } };
for (const id of ['att-layer', 'att-head']) $(id).onchange = drawHeatmap;
$('prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter') guarded(predict); });
$('open').onchange = async (e) => {
  clearError();
  try { await reset(); await openFiles(e.target.files); await save(); } catch (err) { showError(err); }
  e.target.value = '';
};
$('export').onclick = () => guarded(async () => {
  const f = await state.session.export();
  for (const [name, data] of [['config.json', f.config_json], ['tokenizer.json', f.tokenizer_json], ['model.safetensors', f.model_safetensors]]) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([data]));
    a.download = name;
    a.click();
  }
});

(async () => {
  try {
    state.webgpu = !!navigator.gpu;
    await call('ready'); // the worker has fetched and compiled the module
    state.readyMs = performance.now();
    await restore();
  } catch (e) {
    showError(e);
  } finally {
    setBusy(false);
    state.ready = true;
    document.body.dataset.ready = '1';
  }
})();
