// The Train tab: fine-tunes the active model on the user's measurements, in
// this page (the file is read here and never leaves the machine). Quick mode
// (shared/src/tune.rs, as `promoscope tune`): every row's hidden layer over
// the workers, then the output layers re-fitted in workers[0], whose answer is
// the new model's file. Full mode (shared/src/tune/full.rs, the trainer's
// training loop): each network trained on the CPU in a worker (the pool's on
// the CPU backend, else workers of its own), a few steps a call, its
// checkpoints kept in the browser's storage (store.js); workers[0] joins them.
// Either result becomes the active model of every tab.
import { $, download } from './dom.js';
import { active, backend, loadModel, members } from './model.js';
import { chunks, cpuWorkers, spread, startWorker, withProgress, workers } from './pool.js';
import { dropRun, loadRun, saveCheckpoint, saveRun } from './store.js';

let file = null; // {name, text}
let table = null; // parseMeasurements' answer: {columns, value, sequences, values, lines, problems}
let split = null; // [training, held out] rows, or null while the table cannot be split
let splitting = Promise.resolve(); // the split being checked
let tuned = null; // {name, bytes, report}
let before = null; // the model before the last fine-tuning: {name, bytes}

const NOT_VALUES = ['sequence', 'id', 'subset'];
const STEPS_A_CALL = 2; // full mode: optimizer steps a worker call (progress and Cancel act between calls)
const SAVE_EVERY_MS = 60_000; // full mode: a checkpoint at least this often, and after every pass
const SEED = 1; // full mode: shuffling and dropout
const SMOOTH = 8; // loss curve: steps averaged
const MAX_LISTED = 200; // refused lines listed (all are counted)

export function init() {
  $('#train-file').addEventListener('change', async (event) => {
    const chosen = event.target.files[0];
    event.target.value = '';
    if (chosen) await readFile(chosen);
  });
  $('#train-value').addEventListener('change', () => readTable($('#train-value').value));
  $('#train-holdout').addEventListener('input', checkSplit);
  $('#run-train').addEventListener('click', run);
  $('#train-continue').addEventListener('click', continueSaved);
  $('#train-discard').addEventListener('click', async () => { await dropRun().catch(() => {}); offerSaved(); });
  offerSaved();
  $('#download-tuned').addEventListener('click', () => {
    download(`${tuned.name}.safetensors`, new Blob([tuned.bytes], { type: 'application/octet-stream' }));
  });
  $('#restore-model').addEventListener('click', async () => {
    if (before && await loadModel(before.bytes.slice(0), before.name)) $('#restore-model').disabled = true;
  });
}

function showProblem(message) {
  $('#train-problem').textContent = message || '';
  $('#train-problem').hidden = !message;
}

// Reads a file (gzip by its first bytes), then its table.
async function readFile(chosen) {
  showProblem(null);
  try {
    const magic = new Uint8Array(await chosen.slice(0, 2).arrayBuffer());
    const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
    const text = gzip
      ? await new Response(chosen.stream().pipeThrough(new DecompressionStream('gzip'))).text()
      : await chosen.text();
    file = { name: chosen.name, text };
  } catch (err) {
    file = null;
    showTable(null);
    showProblem(`${chosen.name}: cannot read it (${err.message})`);
    return;
  }
  await readTable('');
}

// The table with values from column `value` (blank: the one it offers).
async function readTable(value) {
  showProblem(null);
  try {
    showTable(await workers[0].call('parseMeasurements', { text: file.text, value }));
  } catch (err) {
    showTable(null);
    showProblem(`${file.name}: ${err.message}`);
    return;
  }
  await checkSplit();
}

function showTable(read) {
  table = read;
  split = null;
  $('#run-train').disabled = true;
  $('#train-split').textContent = '';
  const refused = $('#train-refused');
  refused.hidden = !table || table.problems.length === 0;
  $('#train-value-label').hidden = !table || table.columns.length === 0;
  $('#train-read').textContent = table
    ? `${file.name}: ${table.values.length.toLocaleString('en')} sequences with values from ${table.columns.length ? `column "${table.value}"` : 'the second field'}; ${table.problems.length.toLocaleString('en')} line(s) refused.`
    : '';
  if (!table) return;
  const select = $('#train-value');
  select.replaceChildren(...table.columns.filter((c) => !NOT_VALUES.includes(c.toLowerCase())).map((c) => {
    const option = Object.assign(document.createElement('option'), { value: c, textContent: c });
    option.selected = c.toLowerCase() === table.value.toLowerCase();
    return option;
  }));
  refused.querySelector('summary').textContent = `${table.problems.length} line(s) refused (line and reason)`;
  refused.querySelector('ul').replaceChildren(...table.problems.slice(0, MAX_LISTED).map((p) => Object.assign(
    document.createElement('li'), { textContent: `line ${p.line}: ${p.problem}` })));
}

// How the held-out share splits the rows (the CLI's --holdout rule, in wasm).
// Checked as the share is typed; the run waits for the last check.
function checkSplit() {
  splitting = (async () => {
    split = null;
    if (!table) return;
    showProblem(null);
    try {
      split = await workers[0].call('tuneSplit', { sequences: table.sequences, values: table.values, holdout: holdout() });
      $('#train-split').textContent = `${split[0].toLocaleString('en')} rows to train on, ${split[1].toLocaleString('en')} held out`;
    } catch (err) {
      $('#train-split').textContent = '';
      showProblem(err.message);
    }
    $('#run-train').disabled = !split;
  })();
  return splitting;
}

function holdout() {
  return Math.round(Number($('#train-holdout').value));
}

async function run() {
  await splitting;
  if (!split) return; // the problem is shown
  if (document.querySelector('input[name="train-mode"]:checked').value === 'full') {
    const start = active();
    await dropRun().catch(() => {}); // a new run replaces a saved one
    await runFull({
      model: start,
      file: file.name,
      table: { sequences: table.sequences, values: table.values, value: table.value },
      holdout: holdout(),
      seed: SEED,
      checkpoints: new Array(members()).fill(null),
      losses: Array.from({ length: members() }, () => []),
      saved: new Date().toISOString(),
    });
    return;
  }
  showProblem(null);
  $('#train-results').hidden = true;
  const start = active();
  const source = file.name;
  const started = performance.now();
  let result;
  try {
    result = await withProgress($('#train'), async (job) => {
      const shown = job.progress;
      job.progress = (done, total) => { shown(done, total); eta(started, done, total); };
      const ranges = chunks(table.sequences.length);
      const parts = await spread(ranges, (w, [s, e]) => w.call('hidden', { sequences: table.sequences.slice(s, e) }), job);
      const hidden = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const part of parts) { hidden.set(part, offset); offset += part.length; }
      $('#train-eta').textContent = 'fitting…';
      const date = new Date().toISOString().slice(0, 10);
      return workers[0].call('tuneQuick', {
        sequences: table.sequences, values: table.values, hidden, holdout: holdout(), source, date,
      }, [hidden.buffer]);
    });
  } catch (err) {
    showProblem(err.cancelled ? `Fine-tuning cancelled: ${start.name} stays the active model.` : err.message);
    return;
  } finally {
    $('#train-eta').textContent = '';
  }
  await adopt(start, source, result, (performance.now() - started) / 1000);
}

// Makes a fine-tuned model (`result`: the report and its file) the active one.
async function adopt(start, source, result, seconds) {
  const name = `${start.name.replace(/\.safetensors$/, '')} tuned on ${source}`;
  tuned = { name, bytes: result.bytes, report: result };
  before = start;
  showReport(result, seconds);
  if (await loadModel(result.bytes.buffer.slice(0), name)) $('#restore-model').disabled = false;
}

// Offers to continue a full fine-tuning that a closed tab left in the
// browser's storage.
async function offerSaved() {
  const saved = await loadRun().catch(() => undefined);
  const banner = $('#train-resume');
  banner.hidden = !saved;
  if (!saved) return;
  const done = saved.steps ? `step ${saved.steps[0].toLocaleString('en')} of ${saved.steps[1].toLocaleString('en')}` : 'not started';
  banner.querySelector('span').textContent = `A full fine-tuning of ${saved.model.name} on ${saved.file} `
    + `(${saved.table.values.length.toLocaleString('en')} rows, ${saved.holdout}% held out) stopped at ${done}; `
    + `saved ${saved.saved.slice(0, 16).replace('T', ' ')} UTC.`;
}

// Continues the saved run: its model, rows and settings, from its checkpoints.
async function continueSaved() {
  const saved = await loadRun().catch(() => undefined);
  if (!saved) { offerSaved(); return; }
  if (active().name !== saved.model.name && !(await loadModel(saved.model.bytes.slice(0), saved.model.name))) return;
  file = { name: saved.file, text: '' };
  showTable({ columns: [], value: saved.table.value, problems: [], lines: [], ...saved.table });
  $('#train-holdout').value = saved.holdout;
  await checkSplit();
  await runFull(saved);
}

// Full fine-tuning of every network of `record.model` (each in the next free
// worker), saved to the browser's storage as it goes; then joined and made
// the active model. It trains on the CPU (flex): in the pool's workers on
// the CPU backend; beside a WebGPU model in workers of its own, one a core.
async function runFull(record) {
  showProblem(null);
  $('#train-results').hidden = true;
  $('#train-resume').hidden = true;
  const { sequences, values } = record.table;
  const count = record.checkpoints.length;
  const started = performance.now();
  const steps = new Array(count).fill(null); // [done, total] a network, once it started
  let trained = 0; // steps run since this page took the run up
  // Steps done and in all: a network not started yet counts as none done of
  // as many as the others (every network trains on the same rows).
  const counts = () => {
    const each = steps.find(Boolean)?.[1] ?? 0;
    return [steps.reduce((n, s) => n + (s?.[0] ?? 0), 0), each * count];
  };
  let saving = Promise.resolve();
  // Saves the record, after network `k`'s checkpoint when given.
  const save = (k) => {
    record.steps = steps.some(Boolean) ? counts() : null;
    record.saved = new Date().toISOString();
    const checkpoint = k === undefined ? null : record.checkpoints[k];
    saving = saving
      .then(() => checkpoint && saveCheckpoint(k, checkpoint))
      .then(() => saveRun(record))
      .catch((err) => console.warn('checkpoint not saved:', err));
    return saving;
  };
  await save();
  $('#train-curve').hidden = false;
  drawLosses(record.losses);
  const own = backend() !== 'cpu';
  const trainers = own ? Array.from({ length: Math.min(count, cpuWorkers()) }, startWorker) : workers;
  const where = `${trainers.length} CPU worker${trainers.length > 1 ? 's' : ''}`;
  let result;
  try {
    result = await withProgress($('#train'), async (job) => {
      const shown = job.progress;
      const progress = () => {
        const [done, total] = counts();
        shown(done, total);
        const rate = trained / ((performance.now() - started) / 1000); // steps a second, all workers
        const left = rate > 0 ? Math.ceil((total - done) / rate) : null;
        $('#train-eta').textContent = `training on ${where}: step ${done}/${total}` + (left === null ? '' : `, about ${formatSeconds(left)} left`);
      };
      const queue = Array.from({ length: count }, (_, k) => k);
      const finished = new Array(count);
      const train = async (worker, k) => {
        const bytes = record.model.bytes.slice(0);
        let state = await worker.call('fullStart', {
          bytes, member: k, sequences, values, holdout: record.holdout, seed: record.seed, checkpoint: record.checkpoints[k],
        }, [bytes]);
        steps[k] = [state.step, state.steps];
        record.losses[k].length = state.step; // the steps after its checkpoint run again
        progress();
        let savedAt = performance.now();
        while (state.step < state.steps) {
          if (job.stopped) return;
          const epoch = state.epoch;
          const answer = await worker.call('fullSteps', { count: STEPS_A_CALL });
          state = answer.state;
          record.losses[k].push(...answer.losses);
          trained += answer.losses.length;
          steps[k][0] = state.step;
          progress();
          drawLosses(record.losses);
          if (state.epoch !== epoch || state.step === state.steps || performance.now() - savedAt > SAVE_EVERY_MS) {
            record.checkpoints[k] = await worker.call('fullCheckpoint');
            savedAt = performance.now();
            await save(k);
            $('#train-resume').dataset.savedStep = record.steps?.[0] ?? 0;
          }
        }
        $('#train-eta').textContent = 'averaging the weights and scoring the held-out rows…';
        finished[k] = await worker.call('fullFinish');
      };
      await Promise.all(trainers.map(async (worker) => {
        while (queue.length && !job.stopped) await train(worker, queue.shift());
      }));
      if (job.cancelled) throw Object.assign(new Error('cancelled'), { cancelled: true });
      const date = new Date().toISOString().slice(0, 10);
      return workers[0].call('tuneFull', {
        sequences, values, members: finished, holdout: record.holdout, source: record.file, date,
      });
    });
  } catch (err) {
    await saving;
    if (err.cancelled) await dropRun().catch(() => {});
    showProblem(err.cancelled ? `Fine-tuning cancelled: ${active().name} stays the active model.` : err.message);
    return;
  } finally {
    $('#train-eta').textContent = '';
    if (own) trainers.forEach((w) => w.stop());
  }
  await saving;
  await dropRun().catch(() => {});
  await adopt(record.model, record.file, result, (performance.now() - started) / 1000);
}

function formatSeconds(s) {
  return s >= 90 ? `${Math.round(s / 60)} min` : `${s} s`;
}

// The loss curve: each network's batch losses, averaged over SMOOTH steps.
function drawLosses(losses) {
  const svg = $('#train-loss');
  const [width, height, pad] = [480, 200, 30];
  const smooth = losses.map((l) => l.map((_, i) => {
    const part = l.slice(Math.max(0, i - SMOOTH + 1), i + 1);
    return part.reduce((a, b) => a + b, 0) / part.length;
  }));
  const all = smooth.flat();
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width);
  svg.dataset.steps = losses.map((l) => l.length).join(',');
  svg.dataset.first = smooth.map((l) => l[Math.min(SMOOTH, l.length) - 1] ?? '').join(',');
  svg.dataset.last = smooth.map((l) => l[l.length - 1] ?? '').join(',');
  if (all.length === 0) { svg.innerHTML = ''; return; }
  const steps = Math.max(...smooth.map((l) => l.length), 2);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const x = (i) => pad + (i / (steps - 1)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - lo) / (hi - lo || 1)) * (height - 2 * pad);
  const colors = ['#2563a8', '#c2410c', '#15803d', '#7e22ce'];
  svg.innerHTML = smooth.map((l, k) => `<polyline fill="none" stroke="${colors[k % colors.length]}" stroke-width="1.5" points="${l.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`).join('')
    + `<text x="${pad}" y="${pad - 8}" font-size="11">${hi.toFixed(3)}</text>`
    + `<text x="${pad}" y="${height - 8}" font-size="11">${lo.toFixed(3)} · step ${steps}</text>`;
}

// The remaining time, from the pace so far.
function eta(started, done, total) {
  const elapsed = (performance.now() - started) / 1000;
  const left = (elapsed / done) * (total - done);
  $('#train-eta').textContent = `reading the sequences: ${done}/${total} parts, about ${Math.ceil(left)} s left`;
}

function showReport(report, seconds) {
  $('#train-results').hidden = false;
  const summary = $('#train-summary');
  summary.textContent = `Fine-tuned (${report.mode}) on ${report.training_rows.toLocaleString('en')} rows of ${report.source} in ${seconds.toFixed(1)} s; scored on the ${report.held_out_rows.toLocaleString('en')} rows held out (${report.holdout}%).`;
  summary.dataset.seconds = seconds;
  const rows = [
    ['before (the model as loaded)', report.start, 'start'],
    ['fine-tuned', report.tuned, 'tuned'],
    [`k-mer ridge (1- to ${report.ridge_k}-mers) on the same training rows`, report.ridge, 'ridge'],
  ];
  $('#train-report tbody').replaceChildren(...rows.map(([label, s, key]) => {
    const tr = document.createElement('tr');
    tr.dataset.key = key;
    tr.dataset.pearson = s.pearson;
    tr.dataset.spearman = s.spearman;
    for (const text of [label, s.pearson.toFixed(3), s.spearman.toFixed(3)]) {
      tr.append(Object.assign(document.createElement('td'), { textContent: text }));
    }
    return tr;
  }));
  drawScatter($('#train-scatter'), report);
}

function drawScatter(svg, report) {
  const size = 320;
  const pad = 30;
  const all = [...report.measured, ...report.start_predictions, ...report.tuned_predictions];
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const span = hi - lo || 1;
  const at = (v) => pad + ((v - lo) / span) * (size - 2 * pad);
  const flip = (v) => size - at(v);
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('width', size);
  const dots = (predictions, color) => predictions.map((p, i) => `<circle cx="${at(report.measured[i]).toFixed(1)}" cy="${flip(p).toFixed(1)}" r="2" fill="${color}" fill-opacity="0.6"/>`).join('');
  svg.innerHTML = `<line x1="${at(lo)}" y1="${flip(lo)}" x2="${at(hi)}" y2="${flip(hi)}" stroke="#d5dae0"/>`
    + dots(report.start_predictions, '#9aa3ad') + dots(report.tuned_predictions, '#2563a8')
    + `<text x="${size / 2}" y="${size - 4}" text-anchor="middle" font-size="11">measured</text>`
    + `<text x="10" y="${size / 2}" font-size="11" transform="rotate(-90 10 ${size / 2})" text-anchor="middle">predicted</text>`;
}
