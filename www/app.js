// The page: spreads the model's work over web workers, draws tables and figures.
const $ = (selector) => document.querySelector(selector);
const BASES = ['A', 'C', 'G', 'T'];
const FLANK5 = 17;  // TGCATTTTTTTCACATC
const FLANK3 = 13;  // GGTTACGGCTGTT
const EXAMPLE = 'TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT';

// ---- the workers -----------------------------------------------------------
// Model threads (www/worker.js), each with its own copy of the model. On the
// CPU backend there is one per core and the rows of a job are spread over
// them; on WebGPU one (the GPU is one device). workers[0] parses and tabulates.
const MAX_WORKERS = 8;
const CHUNK = 32; // rows per call: progress and Cancel act between chunks
// The model's code, downloaded and compiled once for every worker (failing
// that, its URL: each worker then fetches it and reports what goes wrong).
const WASM = 'promoscope-wasm_bg.wasm';
const code = fetch(WASM)
  .then((response) => {
    if (!response.ok) throw new Error(`${WASM}: HTTP ${response.status}`);
    return response.arrayBuffer();
  })
  .then((bytes) => WebAssembly.compile(bytes))
  .catch(() => WASM);
const workers = [startWorker()];
let running = null; // the job in progress: {stopped, cancelled, finished}

function startWorker() {
  const worker = new Worker('worker.js');
  code.then((module) => worker.postMessage({ type: 'init', module }));
  const pending = new Map();
  let nextId = 1;
  worker.onmessage = ({ data }) => {
    const job = pending.get(data.id);
    if (!job) return;
    pending.delete(data.id);
    if (data.type === 'done') job.resolve(data.result);
    else job.reject(new Error(data.message));
  };
  return {
    call(type, payload = {}, transfer = []) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, type, ...payload }, transfer);
      });
    },
    // Ends the thread; calls still waiting on it fail rather than hang.
    stop() {
      worker.terminate();
      for (const job of pending.values()) job.reject(new Error('the model worker was stopped'));
      pending.clear();
    },
  };
}

// After workers[0] has loaded a model: as many workers as the backend uses
// (`?workers=N` caps them), each with the same model. A worker that cannot
// load it is let go.
async function staff(description, bytes) {
  const cap = Number(params.get('workers')) || MAX_WORKERS;
  const wanted = description.backend === 'cpu'
    ? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, cap, MAX_WORKERS)) : 1;
  for (const extra of workers.splice(wanted)) extra.stop();
  while (workers.length < wanted) workers.push(startWorker());
  const helpers = workers.slice(1);
  const loaded = await Promise.all(helpers.map((w) => {
    const copy = bytes.slice(0);
    return w.call('load', { bytes: copy, backend: 'cpu' }, [copy]).then(() => true, () => false);
  }));
  helpers.forEach((w, i) => {
    if (loaded[i]) return;
    w.stop();
    workers.splice(workers.indexOf(w), 1);
  });
}

// `[start, end)` ranges over `total` rows: at most CHUNK each, and enough of
// them to give every worker one.
function chunks(total) {
  const size = Math.max(1, Math.min(CHUNK, Math.ceil(total / workers.length)));
  const ranges = [];
  for (let start = 0; start < total; start += size) ranges.push([start, Math.min(total, start + size)]);
  return ranges;
}

// `task(worker, range)` for every range, each on the next free worker; the
// results in the ranges' order.
async function spread(ranges, task, job) {
  const results = new Array(ranges.length);
  let next = 0;
  let done = 0;
  await Promise.all(workers.map(async (w) => {
    while (next < ranges.length && !job.stopped) {
      const i = next++;
      try {
        results[i] = await task(w, ranges[i]);
      } catch (err) {
        job.stopped = true;
        throw err;
      }
      job.progress(++done, ranges.length);
    }
  }));
  if (job.cancelled) throw Object.assign(new Error('cancelled'), { cancelled: true });
  return results;
}

// Runs `work(job)` with the section's progress bar and Cancel button.
async function withProgress(section, work) {
  const bar = section.querySelector('progress');
  const cancel = section.querySelector('.cancel');
  const job = {
    stopped: false,
    cancelled: false,
    progress: (done, total) => { bar.max = total; bar.value = done; },
  };
  bar.hidden = false; bar.removeAttribute('value');
  cancel.hidden = false;
  cancel.onclick = () => { job.cancelled = true; job.stopped = true; };
  job.finished = work(job);
  running = job;
  try {
    return await job.finished;
  } finally {
    if (running === job) running = null;
    bar.hidden = true; cancel.hidden = true;
  }
}

// Stops the job in progress (each worker finishes its chunk) before the
// workers change.
async function stopRunning() {
  const job = running;
  if (!job) return;
  job.cancelled = true; job.stopped = true;
  await job.finished.catch(() => {});
}

// ---- model -------------------------------------------------------------------
const params = new URLSearchParams(location.search);
let model = null;  // describe() of the active model
let modelName = '';

function setStatus(text, state) {
  const status = $('#status');
  status.textContent = text;
  status.dataset.state = state;
}

async function loadModel(bytes, name) {
  setStatus(`Loading ${name}…`, 'loading');
  $('#model-error').hidden = true;
  try {
    await stopRunning();
    const copy = bytes.slice(0); // workers[0] takes `bytes` itself
    const description = await workers[0].call('load', { bytes, backend: $('#backend').value }, [bytes]);
    await staff(description, copy);
    model = description; modelName = name;
    showCard();
    const where = description.backend === 'cpu'
      ? `the CPU (wasm, ${workers.length} worker${workers.length > 1 ? 's' : ''})` : 'WebGPU';
    setStatus(`Ready: ${name} on ${where} — ${description.adapter}`, 'ready');
  } catch (err) {
    $('#model-error').textContent = `${name}: ${err.message}`;
    $('#model-error').hidden = false;
    setStatus(model ? `Ready: ${modelName} (unchanged)` : 'No model loaded', model ? 'ready' : 'error');
  }
}

async function loadDemo() {
  const response = await fetch('demo.safetensors');
  if (!response.ok) throw new Error(`demo.safetensors: HTTP ${response.status}`);
  await loadModel(await response.arrayBuffer(), 'demo model');
}

function showCard() {
  const m = model.metadata;
  const entries = [
    ['active model', modelName],
    ['backend', `${model.backend} · ${model.adapter}${model.software ? ' (software adapter)' : ''}`],
    ['input length', `${model.seq_len} bases`],
    ['parameters', model.parameters.toLocaleString('en')],
  ];
  for (const [key, value] of Object.entries(m)) {
    if (key !== 'config' && key !== 'format') entries.push([key.replaceAll('_', ' '), value]);
  }
  const card = $('#card');
  card.replaceChildren();
  for (const [key, value] of entries) {
    const dt = document.createElement('dt'); dt.textContent = key;
    const dd = document.createElement('dd'); dd.textContent = value;
    card.append(dt, dd);
  }
  document.querySelectorAll('.seq-len').forEach((e) => { e.textContent = model.seq_len; });
}

$('#model-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (file) await loadModel(await file.arrayBuffer(), file.name);
  event.target.value = '';
});
$('#demo-model').addEventListener('click', () => loadDemo().catch(showModelError));
$('#backend').addEventListener('change', () => loadDemo().catch(showModelError));
function showModelError(err) {
  $('#model-error').textContent = err.message;
  $('#model-error').hidden = false;
}

// ---- tabs ----------------------------------------------------------------------
for (const tab of document.querySelectorAll('[role=tab]')) {
  tab.addEventListener('click', () => {
    for (const other of document.querySelectorAll('[role=tab]')) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      $(`#${other.getAttribute('aria-controls')}`).hidden = !selected;
    }
  });
}

// ---- scoring -------------------------------------------------------------------
let scored = [];
let sortKey = 'index';
let sortAscending = true;

$('#sequence-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (file) $('#sequences').value = await file.text();
  event.target.value = '';
});
$('#sequences').addEventListener('dragover', (e) => e.preventDefault());
$('#sequences').addEventListener('drop', async (e) => {
  e.preventDefault();
  const file = e.dataTransfer.files[0];
  if (file) $('#sequences').value = await file.text();
});

$('#run-score').addEventListener('click', async () => {
  const problemsBox = $('#score-problems');
  problemsBox.hidden = true;
  $('#score-results').hidden = true;
  try {
    const text = $('#sequences').value;
    const rcAverage = $('#rc-average').checked;
    const { rows, problems } = await withProgress($('#score'), (job) => score(text, rcAverage, job));
    scored = rows;
    if (problems.length) {
      problemsBox.replaceChildren(...[
        `${problems.length} line(s) not scored:`,
        ...problems.map((p) => `line ${p.line}${p.id && !p.id.startsWith('line ') ? ` (${p.id})` : ''}: ${p.problem}`),
      ].map((text) => Object.assign(document.createElement('div'), { textContent: text })));
      problemsBox.hidden = false;
    }
    renderScores();
  } catch (err) {
    problemsBox.textContent = err.cancelled ? 'Scoring cancelled.' : err.message;
    problemsBox.hidden = false;
  }
});

async function score(text, rcAverage, job) {
  const { records, problems } = await workers[0].call('parse', { text });
  const ranges = chunks(records.length);
  const parts = await spread(ranges, (w, [start, end]) => w.call('score', {
    sequences: records.slice(start, end).map((r) => r.sequence), rcAverage,
  }), job);
  const rows = [];
  parts.forEach(({ forward, reverse }, part) => forward.forEach((prediction, i) => {
    const r = records[ranges[part][0] + i];
    rows.push({
      index: rows.length + 1, id: r.id, line: r.line, length: r.sequence.length,
      sequence: r.sequence, prediction, rc: reverse ? (prediction + reverse[i]) / 2 : null,
    });
  }));
  return { rows, problems };
}

for (const button of document.querySelectorAll('#score-table [data-sort]')) {
  button.addEventListener('click', () => {
    const key = button.dataset.sort;
    sortAscending = key === sortKey ? !sortAscending : true;
    sortKey = key;
    renderScores();
  });
}

function renderScores() {
  $('#score-results').hidden = scored.length === 0;
  const rc = scored.some((r) => r.rc !== null);
  document.querySelectorAll('#score-table .rc').forEach((e) => { e.hidden = !rc; });
  const rows = [...scored].sort((a, b) => {
    const [x, y] = [a[sortKey], b[sortKey]];
    const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return sortAscending ? order : -order;
  });
  for (const th of document.querySelectorAll('#score-table th')) {
    const key = th.querySelector('button').dataset.sort;
    th.setAttribute('aria-sort', key === sortKey ? (sortAscending ? 'ascending' : 'descending') : 'none');
  }
  const body = $('#score-table tbody');
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement('tr');
    const cells = [r.index, r.id, r.length, r.prediction.toFixed(4)];
    if (rc) cells.push(r.rc.toFixed(4));
    for (const value of cells) tr.append(Object.assign(document.createElement('td'), { textContent: value }));
    tr.dataset.prediction = r.prediction;
    if (rc) tr.dataset.rc = r.rc;
    tr.dataset.id = r.id;
    return tr;
  }));
  const predictions = scored.map((r) => r.prediction);
  const mean = predictions.reduce((a, b) => a + b, 0) / predictions.length;
  $('#score-summary').textContent = `${scored.length} sequences scored; mean prediction ${mean.toFixed(3)}`;
  drawHistogram(predictions);
}

function drawHistogram(values) {
  const svg = $('#histogram');
  const [width, height, bins] = [600, 160, 30];
  svg.setAttribute('viewBox', `0 0 ${width} ${height + 20}`);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / span) * bins))] += 1;
  const top = Math.max(...counts);
  const parts = counts.map((c, i) => {
    const h = (c / top) * height;
    return `<rect x="${(i * width) / bins}" y="${height - h}" width="${width / bins - 1}" height="${h}"><title>${(lo + (i * span) / bins).toFixed(2)}–${(lo + ((i + 1) * span) / bins).toFixed(2)}: ${c}</title></rect>`;
  });
  parts.push(`<text x="0" y="${height + 16}">${lo.toFixed(2)}</text>`);
  parts.push(`<text x="${width}" y="${height + 16}" text-anchor="end">${hi.toFixed(2)}</text>`);
  svg.innerHTML = parts.join('');
}

$('#download-scores').addEventListener('click', () => {
  const rc = scored.some((r) => r.rc !== null);
  const lines = [`id,sequence,length,prediction${rc ? ',prediction_rc_average' : ''}`];
  for (const r of scored) lines.push([csvField(r.id), r.sequence, r.length, r.prediction, ...(rc ? [r.rc] : [])].join(','));
  download('promoscope-predictions.csv', new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
});

// ---- mutagenesis -----------------------------------------------------------------
let ism = null;       // {sequence, reference, rows}
const history = [];   // sequences before each applied mutation

$('#ism-sequence').value = EXAMPLE;
$('#run-ism').addEventListener('click', () => runIsm($('#ism-sequence').value.trim()));
$('#undo').addEventListener('click', () => {
  const previous = history.pop();
  $('#undo').disabled = history.length === 0;
  if (previous) { $('#ism-sequence').value = previous; runIsm(previous); }
});

async function runIsm(sequence) {
  const problem = $('#ism-problem');
  problem.hidden = true;
  $('#ism-results').hidden = true;
  try {
    ism = await withProgress($('#ism'), (job) => mutagenesis(sequence, job));
    renderIsm();
  } catch (err) {
    problem.textContent = err.cancelled ? 'Mutagenesis cancelled.' : err.message;
    problem.hidden = false;
  }
}

// Every row of the ISM batch (the reference, then each substitution), spread
// over the workers, then the table.
async function mutagenesis(sequence, job) {
  const total = await workers[0].call('ismRows', { sequence });
  const ranges = chunks(total);
  const parts = await spread(ranges, (w, [start, end]) => w.call('ismScore', { sequence, start, end }), job);
  const predictions = new Float32Array(total);
  parts.forEach((part, i) => predictions.set(part, ranges[i][0]));
  return workers[0].call('ismTable', { sequence, predictions });
}

// Blue lowers, red raises; white is the reference's score.
function diverging(t) {
  const s = Math.max(-1, Math.min(1, t));
  const [r, g, b] = s < 0 ? [33, 102, 172] : [178, 24, 43];
  const fade = (full) => Math.round(255 - (255 - full) * Math.abs(s));
  return `rgb(${fade(r)},${fade(g)},${fade(b)})`;
}

function renderIsm() {
  const { sequence, reference, rows } = ism;
  const n = sequence.length;
  const scale = Math.max(1e-6, ...rows.map((r) => Math.abs(r.delta)));
  const [cell, left, logoHeight, top] = [9, 24, 60, 14];
  const width = left + n * cell + 10;
  const gridTop = top + logoHeight + 8;
  const height = gridTop + 4 * cell * 1.6 + 30;
  const cellHeight = cell * 1.6;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" id="ism-svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="9" role="img" aria-label="In-silico mutagenesis heat map and logo">`,
    `<rect width="${width}" height="${height}" fill="white"/>`];
  // Flanks: shaded behind the variable region's edges.
  const flank3Start = Math.max(FLANK5, n - FLANK3);
  for (const [from, to] of [[0, Math.min(FLANK5, n)], [flank3Start, n]]) {
    if (to > from) parts.push(`<rect x="${left + from * cell}" y="${top}" width="${(to - from) * cell}" height="${height - top - 16}" fill="#f2f2f2"/>`);
  }
  parts.push(`<text x="${left}" y="${top - 3}">5′ flank</text><text x="${left + FLANK5 * cell}" y="${top - 3}">80-bp variable region</text><text x="${left + flank3Start * cell}" y="${top - 3}">3′ flank</text>`);
  // Logo: the reference base, as tall as the mean loss its substitutions cause
  // (upward: the base helps expression; downward: it hurts).
  const effect = new Array(n).fill(0);
  const counts = new Array(n).fill(0);
  for (const r of rows) { effect[r.substitution.position] -= r.delta; counts[r.substitution.position] += 1; }
  const maxEffect = Math.max(1e-6, ...effect.map((e, i) => Math.abs(e / counts[i])));
  const mid = top + logoHeight / 2;
  for (let p = 0; p < n; p++) {
    const e = effect[p] / counts[p];
    const h = (Math.abs(e) / maxEffect) * (logoHeight / 2);
    const base = sequence[p].toUpperCase();
    const colour = { A: '#109648', C: '#255c99', G: '#f7b32b', T: '#d62839' }[base] || '#888';
    if (h > 0.5) {
      // A capital is ~6.5 units tall at font-size 9: scale it to h, flipped below the axis.
      const sy = (h / 6.5) * (e >= 0 ? 1 : -1);
      parts.push(`<text x="0" y="0" transform="translate(${left + p * cell} ${mid}) scale(${cell / 6} ${sy})" fill="${colour}" font-weight="bold">${base}</text>`);
    }
  }
  parts.push(`<line x1="${left}" x2="${left + n * cell}" y1="${mid}" y2="${mid}" stroke="#999" stroke-width="0.5"/>`);
  // Heat map: rows A, C, G, T; the reference base of each column outlined.
  BASES.forEach((b, i) => parts.push(`<text x="${left - 12}" y="${gridTop + i * cellHeight + cellHeight * 0.75}">${b}</text>`));
  for (let p = 0; p < n; p++) {
    const refIndex = BASES.indexOf(sequence[p].toUpperCase());
    if (refIndex >= 0) {
      parts.push(`<rect x="${left + p * cell}" y="${gridTop + refIndex * cellHeight}" width="${cell}" height="${cellHeight}" fill="white" stroke="#444" stroke-width="0.6" class="ref"/>`);
    }
  }
  for (const r of rows) {
    const s = r.substitution;
    const i = BASES.indexOf(s.alternative);
    parts.push(`<rect class="cell" tabindex="0" x="${left + s.position * cell}" y="${gridTop + i * cellHeight}" width="${cell}" height="${cellHeight}" fill="${diverging(r.delta / scale)}" data-position="${s.position + 1}" data-ref="${s.reference}" data-alt="${s.alternative}" data-prediction="${r.prediction}" data-delta="${r.delta}"/>`);
  }
  for (let p = 0; p < n; p += 10) parts.push(`<text x="${left + p * cell}" y="${height - 6}">${p + 1}</text>`);
  parts.push('</svg>');
  $('#ism-figure').innerHTML = parts.join('');
  $('#ism-summary').textContent = `Reference prediction ${reference.toFixed(4)}; ${rows.length} substitutions; colour scale ±${scale.toFixed(3)} (blue lowers, red raises expression).`;
  $('#ism-results').hidden = false;
  for (const rect of document.querySelectorAll('#ism-svg .cell')) {
    const describe = () => {
      const d = rect.dataset;
      $('#ism-hover').textContent = `${d.ref}${d.position}${d.alt}: prediction ${Number(d.prediction).toFixed(4)} (Δ ${Number(d.delta) >= 0 ? '+' : ''}${Number(d.delta).toFixed(4)}). Click or press Enter to apply.`;
    };
    const apply = () => {
      const d = rect.dataset;
      const p = Number(d.position) - 1;
      history.push(ism.sequence);
      $('#undo').disabled = false;
      const mutated = ism.sequence.slice(0, p) + d.alt + ism.sequence.slice(p + 1);
      $('#ism-sequence').value = mutated;
      runIsm(mutated);
    };
    rect.addEventListener('mouseenter', describe);
    rect.addEventListener('focus', describe);
    rect.addEventListener('click', apply);
    rect.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); apply(); } });
  }
}

$('#download-ism').addEventListener('click', () => {
  const lines = [`# reference prediction ${ism.reference}`, 'position,ref,alt,prediction,delta'];
  for (const r of ism.rows) {
    const s = r.substitution;
    lines.push([s.position + 1, s.reference, s.alternative, r.prediction, r.delta].join(','));
  }
  download('promoscope-ism.csv', new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
});
$('#download-svg').addEventListener('click', () => {
  download('promoscope-ism.svg', new Blob([$('#ism-svg').outerHTML], { type: 'image/svg+xml' }));
});
$('#download-png').addEventListener('click', async () => {
  const svg = $('#ism-svg');
  const image = new Image();
  image.src = URL.createObjectURL(new Blob([svg.outerHTML], { type: 'image/svg+xml' }));
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = svg.width.baseVal.value * 2; canvas.height = svg.height.baseVal.value * 2;
  const context = canvas.getContext('2d');
  context.scale(2, 2);
  context.drawImage(image, 0, 0);
  URL.revokeObjectURL(image.src);
  canvas.toBlob((blob) => download('promoscope-ism.png', blob), 'image/png');
});

// ---- helpers ---------------------------------------------------------------------
function download(name, blob) {
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
function csvField(text) {
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// ---- start -------------------------------------------------------------------------
if (params.get('backend')) $('#backend').value = params.get('backend');
loadDemo().catch((err) => { showModelError(err); setStatus('No model loaded', 'error'); });
