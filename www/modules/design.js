// The Design tab: promoscope's search for sequences toward an objective under
// cloning constraints (shared/src/design/, the same as `promoscope design`). workers[0]
// holds the search and hands out batches; every worker scores parts of them.
import { $, download } from './dom.js';
import { members } from './model.js';
import { EXAMPLE, openInMutagenesis } from './mutagenesis.js';
import { chunks, spread, withProgress, workers } from './pool.js';

const TYPE_IIS = 'GGTCTC CGTCTC'; // BsaI, BsmBI (design::TYPE_IIS)
let found = null; // designResult of the last run
let strategy = 'greedy'; // of the last run: greedy draws a line per start

export function init() {
  $('#design-start').value = EXAMPLE;
  $('#design-type-iis').addEventListener('click', () => {
    const list = $('#design-forbidden').value.split(/[\s,;]+/).filter(Boolean);
    for (const site of TYPE_IIS.split(' ')) if (!list.includes(site)) list.push(site);
    $('#design-forbidden').value = list.join(' ');
  });
  $('#run-design').addEventListener('click', runDesign);
  $('#download-design-csv').addEventListener('click', () => save('promoscope-designs.csv', found.csv, 'text/csv'));
  $('#download-design-fasta').addEventListener('click', () => save('promoscope-designs.fasta', found.fasta, 'text/plain'));
  $('#download-design-trajectory').addEventListener('click', () => save('promoscope-design-trajectory.csv', found.trajectory_csv, 'text/csv'));
}

function save(name, text, type) {
  download(name, new Blob([text], { type }));
}

async function runDesign() {
  const problem = $('#design-problem');
  problem.hidden = true;
  $('#design-results').hidden = true;
  try {
    const spec = await readForm();
    found = await withProgress($('#design'), (job) => design(spec, job));
    strategy = spec.strategy.name;
    render();
  } catch (err) {
    problem.textContent = err.cancelled ? 'Design cancelled.' : err.message;
    problem.hidden = false;
  }
}

// A blank number field is "no constraint".
function optionalNumber(selector) {
  const text = $(selector).value.trim();
  return text === '' ? null : Number(text);
}

// The form as a DesignSpec (design/spec.rs); the start sequences through
// promoscope's one parser (flanks are added by the design itself).
async function readForm() {
  let starts;
  if ($('#design-random').checked) {
    starts = { random: { count: Number($('#design-random-count').value), length: 80 } };
  } else {
    const parsed = await workers[0].call('parse', { text: $('#design-start').value, addFlanks: false });
    if (parsed.problems.length) {
      throw new Error(parsed.problems.map((p) => `line ${p.line}: ${p.problem}`).join('; '));
    }
    if (!parsed.records.length) throw new Error('no start sequence: paste one, or start from random regions');
    starts = { given: parsed.records.map((r) => r.sequence) };
  }
  const objective = $('#design-objective').value === 'target'
    ? String(Number($('#design-target').value)) : $('#design-objective').value;
  const strategy = $('#design-strategy').value === 'greedy'
    ? { name: 'greedy', rounds: Number($('#design-rounds').value) }
    : { name: 'evolve', population: Number($('#design-population').value), generations: Number($('#design-generations').value) };
  const [gcMin, gcMax] = [optionalNumber('#design-gc-min'), optionalNumber('#design-gc-max')];
  if ((gcMin === null) !== (gcMax === null)) throw new Error('give both ends of the GC window, or neither');
  return {
    starts,
    objective,
    strategy,
    constraints: {
      max_mutations: optionalNumber('#design-max-mutations'),
      gc: gcMin === null ? null : [gcMin / 100, gcMax / 100],
      forbidden: $('#design-forbidden').value.split(/[\s,;]+/).filter(Boolean),
      max_homopolymer: optionalNumber('#design-homopolymer'),
    },
    seed: Number($('#design-seed').value),
    keep: Number($('#design-keep').value),
    caution: members() > 1 ? Number($('#design-caution').value) : 0,
  };
}

// Ask workers[0] for a batch, score it over all workers, tell workers[0];
// until the search is done. The bar counts rounds, and chunks within one.
// The result carries `spec`: the DesignSpec as the search read it (serde's JSON).
export async function design(spec, job) {
  const read = await workers[0].call('designStart', { spec: JSON.stringify(spec) });
  for (;;) {
    const ask = await workers[0].call('designAsk');
    if (!ask) break;
    const [round, rounds] = ask.progress;
    const ranges = chunks(ask.size);
    const part = Object.create(job, {
      progress: { value: (done, total) => job.progress(round * total + done, rounds * total) },
    });
    const parts = await spread(ranges, (w, [start, end]) => w.call('designScore', { batch: ask.batch, start, end }), part);
    // Each item's members' values side by side (designScore), in batch order.
    const predictions = new Float32Array(ask.size * members());
    parts.forEach((values, i) => predictions.set(values, ranges[i][0] * members()));
    await workers[0].call('designTell', { predictions });
  }
  return { ...await workers[0].call('designResult'), spec: read };
}

function render() {
  const { designs, starts, trajectory, scored, objective } = found;
  const best = designs[0];
  $('#design-summary').textContent = best
    ? `Objective ${objective}; ${scored} sequences scored. Best: ${best.prediction.toFixed(4)} with ${best.mutations.length} mutation(s), from start ${best.start} at ${starts[best.start - 1].prediction.toFixed(4)}.`
    : 'No design: the constraints left no candidate.';
  $('#design-summary').dataset.scored = scored;
  $('#design-results').dataset.spec = found.spec;
  $('#design-trajectory').innerHTML = trajectoryPlot(trajectory);
  const body = $('#design-table tbody');
  body.replaceChildren();
  designs.forEach((d, i) => {
    const row = document.createElement('tr');
    const delta = d.prediction - starts[d.start - 1].prediction;
    const names = d.mutations.map((m) => `${m.reference}${m.position + 1}${m.alternative}`).join(' ');
    const sd = members() > 1 ? [`± ${d.sd.toFixed(4)}`] : [];
    for (const text of [i + 1, d.start, d.prediction.toFixed(4), ...sd, `${delta >= 0 ? '+' : ''}${delta.toFixed(4)}`, names || '—', d.sequence]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    row.lastChild.className = 'sequence';
    const open = document.createElement('button');
    open.type = 'button'; open.textContent = 'Mutagenesis'; open.className = 'open-ism';
    open.addEventListener('click', () => openInMutagenesis(d.sequence));
    const cell = document.createElement('td');
    cell.append(open);
    row.append(cell);
    row.dataset.sequence = d.sequence;
    row.dataset.prediction = d.prediction;
    row.dataset.sd = d.sd;
    body.append(row);
  });
  document.querySelectorAll('#design-results .spread').forEach((e) => { e.hidden = members() === 1; });
  $('#design-results').hidden = false;
}

// Best prediction per round or generation, one line per start (greedy) or
// one for the population (evolutionary).
function trajectoryPlot(steps) {
  const [width, height, left, bottom, top] = [640, 220, 48, 28, 10];
  const values = steps.map((s) => s.prediction);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const span = Math.max(1e-6, hi - lo);
  const rounds = Math.max(1, ...steps.map((s) => s.round));
  const x = (r) => left + (r / rounds) * (width - left - 10);
  const y = (v) => top + (1 - (v - lo) / span) * (height - top - bottom);
  const lines = new Map();
  for (const s of steps) {
    const key = strategy === 'evolve' ? 0 : s.start;
    if (!lines.has(key)) lines.set(key, []);
    lines.get(key).push(`${x(s.round).toFixed(1)},${y(s.prediction).toFixed(1)}`);
  }
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" id="design-svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="10" role="img" aria-label="Best prediction per round">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${height - bottom}" stroke="#999"/>`,
    `<line x1="${left}" x2="${width - 10}" y1="${height - bottom}" y2="${height - bottom}" stroke="#999"/>`,
    `<text x="4" y="${top + 8}">${hi.toFixed(2)}</text><text x="4" y="${height - bottom}">${lo.toFixed(2)}</text>`,
    `<text x="${left}" y="${height - 8}">round 0</text><text x="${width - 60}" y="${height - 8}">round ${rounds}</text>`];
  for (const points of lines.values()) {
    parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="#b2182b" stroke-width="1.5"/>`);
  }
  parts.push('</svg>');
  return parts.join('');
}
