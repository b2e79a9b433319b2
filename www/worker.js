// A model thread: loads weights and scores, so that the page never freezes.
// The page runs one per CPU core on the CPU backend (one on WebGPU), each with
// its own copy of the model, and hands each a chunk of rows at a time
// (`spread` in app.js): wasm has one thread per instance, so cores are workers.
// Messages in:  {type: 'init', module} (the compiled wasm module, or its URL), then
//               {id, type: 'load', bytes, backend} | {id, type: 'parse', text}
//               {id, type: 'score', sequences, rcAverage}
//               {id, type: 'ismRows', sequence} | {id, type: 'ismScore', sequence, start, end}
//               {id, type: 'ismTable', sequence, predictions}
// Messages out: {id, type: 'done', result} | {id, type: 'error', message}
importScripts('promoscope-wasm.js');
const { Promoscope, sequenceProblem, reverseComplement } = wasm_bindgen;
let init;
const wasmReady = new Promise((resolve) => { init = resolve; })
  .then((module) => wasm_bindgen({ module_or_path: module }));

let model = null;
let seqLen = 111;
let queue = Promise.resolve(); // one job at a time

onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'init') { init(msg.module); return; }
  queue = queue.then(() => run(msg));
};

async function run(msg) {
  try {
    await wasmReady;
    const result = await JOBS[msg.type](msg);
    postMessage({ id: msg.id, type: 'done', result });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    postMessage({ id: msg.id, type: 'error', message });
  }
}

const JOBS = {
  async load({ bytes, backend }) {
    const loaded = await Promoscope.load(new Uint8Array(bytes), backend);
    if (model) model.free();
    model = loaded;
    const description = model.describe();
    seqLen = description.seq_len;
    return description;
  },

  // The records of pasted text that the model can score, and why the others can't.
  parse({ text }) {
    requireModel();
    const { records, problems } = parseSequences(text);
    const good = records.filter((record) => {
      const problem = sequenceProblem(record.sequence, seqLen);
      if (problem) problems.push({ line: record.line, id: record.id, problem });
      return !problem;
    });
    problems.sort((a, b) => a.line - b.line);
    return { records: good, problems };
  },

  // Predictions for checked sequences, and for their reverse complements.
  async score({ sequences, rcAverage }) {
    requireModel();
    const forward = await model.score(sequences);
    const reverse = rcAverage ? await model.score(sequences.map(reverseComplement)) : null;
    return { forward, reverse };
  },

  ismRows({ sequence }) {
    requireModel();
    const problem = sequenceProblem(sequence, seqLen);
    if (problem) throw new Error(problem);
    return model.ismRows(sequence);
  },

  async ismScore({ sequence, start, end }) {
    requireModel();
    return model.ismScore(sequence, start, end);
  },

  ismTable({ sequence, predictions }) {
    requireModel();
    return { sequence, ...model.ismTable(sequence, predictions) };
  },
};

function requireModel() {
  if (!model) throw new Error('no model is loaded');
}

// Records with their 1-based line numbers: FASTA, or one sequence per line
// (`sequence`, `sequence<TAB>label`, or `id<TAB>sequence`); `#` lines are comments.
function parseSequences(text) {
  const lines = text.split(/\r?\n/);
  const records = [];
  const problems = [];
  if (lines.some((l) => l.startsWith('>'))) {
    let current = null;
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line.startsWith('>')) {
        current = { id: line.slice(1).split(/\s/)[0] || `line ${i + 1}`, sequence: '', line: i + 1 };
        records.push(current);
      } else if (line && !line.startsWith('#')) {
        if (current) current.sequence += line;
        else problems.push({ line: i + 1, id: '', problem: 'sequence before the first > header' });
      }
    });
    return { records, problems };
  }
  const looksLikeSequence = (field) => /^[A-Za-z]+$/.test(field) && field.length >= 4;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/[\t,]/).map((f) => f.trim());
    if (fields.length >= 2 && !looksLikeSequence(fields[0]) && looksLikeSequence(fields[1])) {
      records.push({ id: fields[0], sequence: fields[1], line: i + 1 });
    } else {
      // Anything else is checked as a sequence: its problem names the bad base.
      records.push({ id: `line ${i + 1}`, sequence: fields[0], line: i + 1 });
    }
  });
  return { records, problems };
}
