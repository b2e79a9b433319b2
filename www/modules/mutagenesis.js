// The Mutagenesis tab: every single-base substitution of one sequence
// (ISM rows spread over the workers), heat map and logo, click to mutate, Undo,
// the sequence's robustness and evolvability vector, the mutation path.
import { $, download } from './dom.js';
import { flanks, members } from './model.js';
import { chunks, spread, withProgress, workers } from './pool.js';

const BASES = ['A', 'C', 'G', 'T'];
export const EXAMPLE = 'TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT';

let ism = null;       // {sequence, reference, rows}
const undoStack = []; // sequences before each applied mutation
// The mutation path: the sequence scored first, then each mutation applied by
// clicking, with the prediction after it ({mutation, sequence, prediction}).
let path = [];

export function init() {
  bindDownloads();
  $('#ism-sequence').value = EXAMPLE;
  $('#run-ism').addEventListener('click', () => startPath($('#ism-sequence').value.trim()));
  $('#undo').addEventListener('click', () => {
    const previous = undoStack.pop();
    $('#undo').disabled = undoStack.length === 0;
    if (previous) { path.pop(); $('#ism-sequence').value = previous; runIsm(previous); }
  });
  $('#robust-threshold').addEventListener('input', () => { if (ism) renderEvolvability(); });
  $('#ism-mark-uncertain').addEventListener('change', () => { if (ism) renderIsm(); });
}

// Mutagenesis of a new sequence: a new path (from the Design tab too).
export function openInMutagenesis(sequence) {
  $('#tab-ism').click();
  $('#ism-sequence').value = sequence;
  startPath(sequence);
}

function startPath(sequence) {
  path = [];
  undoStack.length = 0;
  $('#undo').disabled = true;
  runIsm(sequence);
}

async function runIsm(sequence) {
  const problem = $('#ism-problem');
  problem.hidden = true;
  $('#ism-results').hidden = true;
  try {
    ism = await withProgress($('#ism'), (job) => mutagenesis(sequence, job));
    if (path.length === 0) path.push({ mutation: '', sequence: ism.sequence, prediction: ism.reference });
    renderIsm();
    renderEvolvability();
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
  // Each row's members' values side by side (ismScore), in row order.
  const predictions = new Float32Array(total * members());
  parts.forEach((part, i) => predictions.set(part, ranges[i][0] * members()));
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
  const { flank5, flank3 } = flanks();
  const [FLANK5, FLANK3] = [flank5.length, flank3.length];
  const flank3Start = Math.max(FLANK5, n - FLANK3);
  for (const [from, to] of [[0, Math.min(FLANK5, n)], [flank3Start, n]]) {
    if (to > from) parts.push(`<rect x="${left + from * cell}" y="${top}" width="${(to - from) * cell}" height="${height - top - 16}" fill="#f2f2f2"/>`);
  }
  parts.push(`<text x="${left}" y="${top - 3}">5′ flank</text><text x="${left + FLANK5 * cell}" y="${top - 3}">variable region</text><text x="${left + flank3Start * cell}" y="${top - 3}">3′ flank</text>`);
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
    parts.push(`<rect class="cell" tabindex="0" x="${left + s.position * cell}" y="${gridTop + i * cellHeight}" width="${cell}" height="${cellHeight}" fill="${diverging(r.delta / scale)}" data-position="${s.position + 1}" data-ref="${s.reference}" data-alt="${s.alternative}" data-prediction="${r.prediction}" data-delta="${r.delta}" data-sd="${r.sd}" data-delta-sd="${r.delta_sd}"${uncertain(r) ? ' data-uncertain=""' : ''}/>`);
    if (uncertain(r) && $('#ism-mark-uncertain').checked) {
      parts.push(`<circle class="uncertain" cx="${left + (s.position + 0.5) * cell}" cy="${gridTop + (i + 0.5) * cellHeight}" r="1.3" fill="#555" pointer-events="none"/>`);
    }
  }
  for (let p = 0; p < n; p += 10) parts.push(`<text x="${left + p * cell}" y="${height - 6}">${p + 1}</text>`);
  parts.push('</svg>');
  $('#ism-figure').innerHTML = parts.join('');
  const spreadNote = members() > 1
    ? ` ± ${ism.reference_sd.toFixed(4)} (spread of ${members()} networks); ${rows.filter(uncertain).length} effects within the members' disagreement`
    : '';
  $('#ism-summary').textContent = `Reference prediction ${reference.toFixed(4)}${spreadNote}; ${rows.length} substitutions; colour scale ±${scale.toFixed(3)} (blue lowers, red raises expression).`;
  document.querySelectorAll('#ism-results .spread').forEach((e) => { e.hidden = members() === 1; });
  $('#ism-results').hidden = false;
  for (const rect of document.querySelectorAll('#ism-svg .cell')) {
    const describe = () => {
      const d = rect.dataset;
      const spread = (value) => (members() > 1 ? ` ± ${Number(value).toFixed(4)}` : '');
      $('#ism-hover').textContent = `${d.ref}${d.position}${d.alt}: prediction ${Number(d.prediction).toFixed(4)}${spread(d.sd)} (Δ ${Number(d.delta) >= 0 ? '+' : ''}${Number(d.delta).toFixed(4)}${spread(d.deltaSd)}${d.uncertain === undefined ? '' : ', within the members\' disagreement'}). Click or press Enter to apply.`;
    };
    const apply = () => {
      const d = rect.dataset;
      const p = Number(d.position) - 1;
      undoStack.push(ism.sequence);
      $('#undo').disabled = false;
      const mutated = ism.sequence.slice(0, p) + d.alt + ism.sequence.slice(p + 1);
      path.push({ mutation: `${d.ref}${d.position}${d.alt}`, sequence: mutated, prediction: Number(d.prediction) });
      $('#ism-sequence').value = mutated;
      runIsm(mutated);
    };
    rect.addEventListener('mouseenter', describe);
    rect.addEventListener('focus', describe);
    rect.addEventListener('click', apply);
    rect.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); apply(); } });
  }
}

// An effect smaller than twice the spread of the members' own effects: they
// do not agree on its sign or size (never, for one network).
function uncertain(r) {
  return members() > 1 && Math.abs(r.delta) < 2 * r.delta_sd;
}

// The substitutions of the variable region (all of them if the sequence
// lacks the model's flanks): robustness, and the sorted Δ as a plot.
function renderEvolvability() {
  const { flank5, flank3 } = flanks();
  const n = ism.sequence.length;
  const flanked = n > flank5.length + flank3.length
    && ism.sequence.toUpperCase().startsWith(flank5) && ism.sequence.toUpperCase().endsWith(flank3);
  const [from, to] = flanked ? [flank5.length, n - flank3.length] : [0, n];
  const deltas = ism.rows.filter((r) => r.substitution.position >= from && r.substitution.position < to)
    .map((r) => r.delta).sort((a, b) => a - b);
  const threshold = Math.abs(Number($('#robust-threshold').value) || 0);
  const robust = deltas.filter((d) => Math.abs(d) < threshold).length;
  const share = deltas.length ? robust / deltas.length : 0;
  const region = flanked ? `the ${to - from}-bp variable region` : 'the whole sequence';
  $('#robustness').textContent = `Mutational robustness ${(100 * share).toFixed(1)}%: ${robust} of ${deltas.length} substitutions of ${region} change the prediction by less than ${threshold}.`;
  $('#robustness').dataset.robustness = share;
  $('#evolvability-figure').innerHTML = evolvabilityPlot(deltas, threshold);
}

function evolvabilityPlot(deltas, threshold) {
  const [width, height, left, bottom, top] = [640, 200, 48, 24, 10];
  const extent = Math.max(1e-6, ...deltas.map(Math.abs));
  const x = (i) => left + (i / Math.max(1, deltas.length - 1)) * (width - left - 10);
  const y = (d) => top + (0.5 - d / (2 * extent)) * (height - top - bottom);
  const points = deltas.map((d, i) => `${x(i).toFixed(1)},${y(d).toFixed(1)}`).join(' ');
  return [`<svg xmlns="http://www.w3.org/2000/svg" id="evolvability-svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="10" role="img" aria-label="Evolvability vector: every substitution's change, sorted">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<rect x="${left}" y="${y(threshold)}" width="${width - left - 10}" height="${Math.max(0, y(-threshold) - y(threshold))}" fill="#eee"/>`,
    `<line x1="${left}" x2="${width - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#999"/>`,
    `<text x="4" y="${top + 8}">+${extent.toFixed(2)}</text><text x="4" y="${y(0) + 3}">0</text><text x="4" y="${height - bottom}">−${extent.toFixed(2)}</text>`,
    `<text x="${left}" y="${height - 6}">substitutions, sorted by Δ (${deltas.length})</text>`,
    `<polyline points="${points}" fill="none" stroke="#2166ac" stroke-width="1.5"/>`,
    '</svg>'].join('');
}

function bindDownloads() {
  $('#download-path').addEventListener('click', () => {
    const lines = ['step,mutation,prediction,sequence'];
    path.forEach((s, i) => lines.push([i, s.mutation, s.prediction, s.sequence].join(',')));
    download('promoscope-mutation-path.csv', new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
  });
  $('#download-ism').addEventListener('click', () => {
    const sd = members() > 1;
    const lines = [`# reference prediction ${ism.reference}${sd ? ` sd ${ism.reference_sd}` : ''}`,
      `position,ref,alt,prediction,delta${sd ? ',sd,delta_sd' : ''}`];
    for (const r of ism.rows) {
      const s = r.substitution;
      lines.push([s.position + 1, s.reference, s.alternative, r.prediction, r.delta, ...(sd ? [r.sd, r.delta_sd] : [])].join(','));
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
}
