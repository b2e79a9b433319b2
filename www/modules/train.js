// The Train tab: fine-tunes the active model on the user's measurements, in
// this page (the file is read here and never leaves the machine). Quick mode
// (shared/src/tune.rs, as `promoscope tune`): every row's hidden layer over
// the workers, then the output layers re-fitted in workers[0], whose answer is
// the new model's file; it becomes the active model of every tab.
import { $, download } from './dom.js';
import { active, loadModel } from './model.js';
import { chunks, spread, withProgress, workers } from './pool.js';

let file = null; // {name, text}
let table = null; // parseMeasurements' answer: {columns, value, sequences, values, lines, problems}
let split = null; // [training, held out] rows, or null while the table cannot be split
let splitting = Promise.resolve(); // the split being checked
let tuned = null; // {name, bytes, report}
let before = null; // the model before the last fine-tuning: {name, bytes}

const NOT_VALUES = ['sequence', 'id', 'subset'];
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
  const seconds = (performance.now() - started) / 1000;
  const name = `${start.name.replace(/\.safetensors$/, '')} tuned on ${source}`;
  tuned = { name, bytes: result.bytes, report: result };
  before = start;
  showReport(result, seconds);
  if (await loadModel(result.bytes.buffer.slice(0), name)) $('#restore-model').disabled = false;
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
  summary.textContent = `Fine-tuned (quick) on ${report.training_rows.toLocaleString('en')} rows of ${report.source} in ${seconds.toFixed(1)} s; scored on the ${report.held_out_rows.toLocaleString('en')} rows held out (${report.holdout}%).`;
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
