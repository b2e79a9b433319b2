// The model's thread: loads weights and scores, so that the page never freezes.
// Messages in:  {id, type: 'load', bytes, backend} | {id, type: 'score', text, rcAverage}
//               {id, type: 'ism', sequence} | {id, type: 'cancel'}
// Messages out: {id, type: 'progress', done, total} | {id, type: 'done', result}
//               {id, type: 'error', message}
importScripts('promoscope-wasm.js');
const { Promoscope, sequenceProblem, reverseComplement } = wasm_bindgen;
const wasmReady = wasm_bindgen({ module_or_path: 'promoscope-wasm_bg.wasm' });

const CHUNK = 32;              // sequences per forward pass
let model = null;
let seqLen = 111;
const cancelled = new Set();
let queue = Promise.resolve(); // one job at a time; cancel messages jump the queue

onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'cancel') { cancelled.add(msg.id); return; }
  queue = queue.then(() => run(msg));
};

async function run(msg) {
  try {
    await wasmReady;
    const result = await JOBS[msg.type](msg);
    postMessage({ id: msg.id, type: 'done', result });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    postMessage({ id: msg.id, type: cancelled.has(msg.id) ? 'cancelled' : 'error', message });
  } finally {
    cancelled.delete(msg.id);
  }
}

// Lets queued 'cancel' messages in, then stops the job if one came.
async function checkpoint(id, done, total) {
  postMessage({ id, type: 'progress', done, total });
  await new Promise((resolve) => setTimeout(resolve, 0));
  if (cancelled.has(id)) throw new Error('cancelled');
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

  async score({ id, text, rcAverage }) {
    requireModel();
    const { records, problems } = parseSequences(text);
    const good = records.filter((record) => {
      const problem = sequenceProblem(record.sequence, seqLen);
      if (problem) problems.push({ line: record.line, id: record.id, problem });
      return !problem;
    });
    const rows = [];
    for (let start = 0; start < good.length; start += CHUNK) {
      await checkpoint(id, start, good.length);
      const chunk = good.slice(start, start + CHUNK);
      const forward = await model.score(chunk.map((r) => r.sequence));
      const reverse = rcAverage
        ? await model.score(chunk.map((r) => reverseComplement(r.sequence)))
        : null;
      chunk.forEach((r, i) => rows.push({
        index: rows.length + 1, id: r.id, line: r.line, length: r.sequence.length,
        sequence: r.sequence, prediction: forward[i],
        rc: reverse ? (forward[i] + reverse[i]) / 2 : null,
      }));
    }
    problems.sort((a, b) => a.line - b.line);
    return { rows, problems };
  },

  async ism({ id, sequence }) {
    requireModel();
    const problem = sequenceProblem(sequence, seqLen);
    if (problem) throw new Error(problem);
    const total = model.ismRows(sequence);
    const predictions = new Float32Array(total);
    for (let start = 0; start < total; start += CHUNK) {
      await checkpoint(id, start, total);
      predictions.set(await model.ismScore(sequence, start, start + CHUNK), start);
    }
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
