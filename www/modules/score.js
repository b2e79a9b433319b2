// The Score tab: parse pasted text (promoscope's parser, in the worker's
// wasm), score the records over the workers, table, histogram and CSV.
import { $, csvField, download } from './dom.js';
import { members } from './model.js';
import { chunks, spread, withProgress, workers } from './pool.js';

let scored = [];

// The flanks column: whether a row holds the model's constant flanks.
const FLANK_LABELS = { present: '', added: 'added', missing: 'missing ⚠' };
let sortKey = 'index';
let sortAscending = true;

export function init() {
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
      const options = { rcAverage: $('#rc-average').checked, addFlanks: $('#add-flanks').checked };
      const { rows, problems } = await withProgress($('#score'), (job) => score(text, options, job));
      scored = rows;
      if (problems.length) {
        problemsBox.replaceChildren(...[
          `${problems.length} line(s) not scored:`,
          ...problems.map((p) => `line ${p.line}${p.id && p.id !== `line${p.line}` ? ` (${p.id})` : ''}: ${p.problem}`),
        ].map((text) => Object.assign(document.createElement('div'), { textContent: text })));
        problemsBox.hidden = false;
      }
      renderScores();
    } catch (err) {
      problemsBox.textContent = err.cancelled ? 'Scoring cancelled.' : err.message;
      problemsBox.hidden = false;
    }
  });

  for (const button of document.querySelectorAll('#score-table [data-sort]')) {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      sortAscending = key === sortKey ? !sortAscending : true;
      sortKey = key;
      renderScores();
    });
  }

  $('#download-scores').addEventListener('click', () => {
    const rc = scored.some((r) => r.rc !== null);
    const sd = members() > 1;
    const lines = [`id,sequence,length,flanks,prediction${sd ? ',sd' : ''}${rc ? ',prediction_rc_average' : ''}`];
    for (const r of scored) {
      lines.push([csvField(r.id), r.sequence, r.length, r.flanks, r.prediction, ...(sd ? [r.sd] : []), ...(rc ? [r.rc] : [])].join(','));
    }
    download('promoscope-predictions.csv', new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
  });
}

async function score(text, { rcAverage, addFlanks }, job) {
  const { records, problems } = await workers[0].call('parse', { text, addFlanks });
  const ranges = chunks(records.length);
  const parts = await spread(ranges, (w, [start, end]) => w.call('score', {
    sequences: records.slice(start, end).map((r) => r.sequence), rcAverage,
  }), job);
  const rows = [];
  parts.forEach(({ forward, reverse }, part) => forward.mean.forEach((prediction, i) => {
    const r = records[ranges[part][0] + i];
    rows.push({
      index: rows.length + 1, id: r.id, line: r.line, length: r.sequence.length, flanks: r.flanks,
      sequence: r.sequence, prediction, sd: forward.sd[i], rc: reverse ? (prediction + reverse.mean[i]) / 2 : null,
    });
  }));
  return { rows, problems };
}

function renderScores() {
  $('#score-results').hidden = scored.length === 0;
  const rc = scored.some((r) => r.rc !== null);
  const sd = members() > 1;
  document.querySelectorAll('#score-table .rc').forEach((e) => { e.hidden = !rc; });
  document.querySelectorAll('#score-results .spread').forEach((e) => { e.hidden = !sd; });
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
    const cells = [r.index, r.id, r.length, FLANK_LABELS[r.flanks], r.prediction.toFixed(4)];
    if (sd) cells.push(`± ${r.sd.toFixed(4)}`);
    if (rc) cells.push(r.rc.toFixed(4));
    for (const value of cells) tr.append(Object.assign(document.createElement('td'), { textContent: value }));
    tr.dataset.prediction = r.prediction;
    tr.dataset.sd = r.sd;
    tr.dataset.flanks = r.flanks;
    if (rc) tr.dataset.rc = r.rc;
    tr.dataset.id = r.id;
    return tr;
  }));
  const predictions = scored.map((r) => r.prediction);
  const mean = predictions.reduce((a, b) => a + b, 0) / predictions.length;
  $('#score-summary').textContent = `${scored.length} sequences scored; mean prediction ${mean.toFixed(3)}`;
  const added = scored.filter((r) => r.flanks === 'added').length;
  const missing = scored.filter((r) => r.flanks === 'missing').length;
  const note = $('#flank-note');
  note.hidden = added + missing === 0;
  note.textContent = [
    added ? `${added} sequence(s) were given the model's flanks before scoring.` : '',
    missing ? `${missing} sequence(s) lack the model's flanks (marked "missing"): the model read them without the plasmid around the variable region, so their scores are not comparable with measured ones.` : '',
  ].filter(Boolean).join(' ');
  drawHistogram($('#histogram'), predictions);
  if (sd) drawHistogram($('#spread-histogram'), scored.map((r) => r.sd));
}

function drawHistogram(svg, values) {
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
