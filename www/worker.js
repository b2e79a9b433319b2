// A model thread: loads weights and scores, so that the page never freezes.
// The page runs one per CPU core on the CPU backend (one on WebGPU), each with
// its own copy of the model, and hands each a chunk of rows at a time
// (`spread` in app.js): wasm has one thread per instance, so cores are workers.
// Messages in:  {type: 'init', module} (the compiled wasm module, or its URL), then
//               {id, type: 'load', bytes, backend} | {id, type: 'parse', text}
//               {id, type: 'score', sequences, rcAverage}
//               {id, type: 'ismRows', sequence} | {id, type: 'ismScore', sequence, start, end}
//               {id, type: 'ismTable', sequence, predictions}
//               {id, type: 'designStart', spec} | {id, type: 'designAsk'}
//               {id, type: 'designScore', batch, start, end}
//               {id, type: 'designTell', predictions} | {id, type: 'designResult'}
//               {id, type: 'parseMeasurements', text, value} | {id, type: 'hidden', sequences}
//               {id, type: 'tuneSplit', sequences, values, holdout}
//               {id, type: 'tuneQuick', sequences, values, hidden, holdout, source, date}
//               {id, type: 'fullStart', bytes, member, sequences, values, holdout, seed, checkpoint}
//               {id, type: 'fullSteps', count} | {id, type: 'fullCheckpoint'} | {id, type: 'fullFinish'}
//               {id, type: 'tuneFull', sequences, values, members, holdout, source, date}
// Messages out: {id, type: 'done', result} | {id, type: 'error', message}
importScripts('promoscope-wasm.js');
const { FineTune, Promoscope, parseMeasurements, parseSequences, reverseComplement } = wasm_bindgen;
let init;
const wasmReady = new Promise((resolve) => { init = resolve; })
  .then((module) => wasm_bindgen({ module_or_path: module }));

let model = null;
let fineTune = null; // a network's full fine-tuning in progress (FineTune), on the CPU
let seqLen = 111;
let flanks = ['', '']; // the model's 5' and 3' flanks
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
    flanks = [description.flank_5, description.flank_3];
    return description;
  },

  // The records of pasted text that the model can score, and why the others
  // can't: promoscope's one parser (the CLI's), compiled into the wasm module.
  // With addFlanks, sequences without the model's flanks get them when they fit.
  parse({ text, addFlanks }) {
    requireModel();
    return parseSequences(text, seqLen, ...flanks, addFlanks);
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

  // A design (promoscope's one search, shared/src/design/) lives in workers[0]: it
  // hands out batches, any worker scores a part of one, workers[0] is told.
  // designStart answers with the spec as read (serde's JSON of it).
  designStart({ spec }) {
    requireModel();
    return model.designStart(spec);
  },

  designAsk() {
    requireModel();
    return model.designAsk();
  },

  async designScore({ batch, start, end }) {
    requireModel();
    return model.designScore(batch, start, end);
  },

  designTell({ predictions }) {
    requireModel();
    return model.designTell(predictions);
  },

  designResult() {
    requireModel();
    return model.designResult();
  },

  // Fine-tuning (the Train tab): a table of measurements read by promoscope's
  // reader (the CLI's), every row's hidden layer (any worker, a part each),
  // then the quick fit in workers[0], which answers with the new model's file.
  parseMeasurements({ text, value }) {
    requireModel();
    return parseMeasurements(text, seqLen, value || '');
  },

  async hidden({ sequences }) {
    requireModel();
    return model.hidden(sequences);
  },

  tuneSplit({ sequences, values, holdout }) {
    return Promoscope.tuneSplit(sequences, values, holdout);
  },

  tuneQuick({ sequences, values, hidden, holdout, source, date }) {
    requireModel();
    return model.tuneQuick(sequences, values, hidden, holdout, source, date);
  },

  // Full fine-tuning: one network (member `member` of the model file `bytes`)
  // a worker, trained a few steps a call, from a checkpoint when given;
  // every call answers with where the run stands.
  fullStart({ bytes, member, sequences, values, holdout, seed, checkpoint }) {
    if (fineTune) fineTune.free();
    fineTune = null;
    const run = new FineTune(new Uint8Array(bytes), member, sequences, values, holdout, seed);
    if (checkpoint) run.resume(checkpoint.progress, checkpoint.weights, checkpoint.optimizer, checkpoint.swa ?? undefined);
    fineTune = run;
    return fineTune.state();
  },

  fullSteps({ count }) {
    requireRun();
    const losses = fineTune.steps(count);
    return { losses, state: fineTune.state() };
  },

  fullCheckpoint() {
    requireRun();
    return fineTune.checkpoint();
  },

  fullFinish() {
    requireRun();
    const member = fineTune.finish();
    fineTune.free();
    fineTune = null;
    return member;
  },

  tuneFull({ sequences, values, members, holdout, source, date }) {
    requireModel();
    return model.tuneFull(sequences, values, members.map((m) => m.bytes), members.map((m) => m.before),
      members.map((m) => m.after), holdout, source, date);
  },
};

function requireRun() {
  if (!fineTune) throw new Error('no fine-tuning is in progress in this worker');
}

function requireModel() {
  if (!model) throw new Error('no model is loaded');
}
