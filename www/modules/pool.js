// The model workers (www/worker.js), each with its own copy of the model, and
// jobs spread over them. On the CPU backend there is one per core (a wasm
// instance has one thread); on WebGPU one (the GPU is one device).
// workers[0] parses and tabulates.
const MAX_WORKERS = 8;
const CHUNK = 96; // rows per call at most: progress and Cancel act between calls
const WASM = 'promoscope-wasm_bg.wasm';
// The page's `?workers=N`: at most N workers on the CPU.
const CAP = Number(new URLSearchParams(location.search).get('workers')) || MAX_WORKERS;
let code = null; // the compiled module (a promise), from init()
export const workers = [];

// Downloads and compiles the model's code once for every worker (failing
// that, its URL: each worker then fetches it and reports what goes wrong),
// and starts the first worker; once. The page loads its first model after the
// offline cache is in place, so that the download goes through it.
export function init() {
  if (code) return;
  code = fetch(WASM)
    .then((response) => {
      if (!response.ok) throw new Error(`${WASM}: HTTP ${response.status}`);
      return response.arrayBuffer();
    })
    .then((bytes) => WebAssembly.compile(bytes))
    .catch(() => WASM);
  workers.push(startWorker());
}
let running = null; // the job in progress: {stopped, cancelled, finished}

export function startWorker() {
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

// How many workers work on the CPU: one per core, within the caps.
export function cpuWorkers() {
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, CAP, MAX_WORKERS));
}

// After workers[0] has loaded a model: as many workers as the backend uses,
// each with the same model. A worker that cannot load it is let go.
export async function staff(description, bytes) {
  const wanted = description.backend === 'cpu' ? cpuWorkers() : 1;
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

// `[start, end)` ranges over `total` rows: at most CHUNK each, as many as a
// multiple of the workers and of one size (to a row), so that the workers
// finish together.
export function chunks(total) {
  const count = Math.min(total, workers.length * Math.ceil(total / (workers.length * CHUNK)));
  return Array.from({ length: count }, (_, i) => [Math.floor((i * total) / count), Math.floor(((i + 1) * total) / count)]);
}

// `task(worker, range)` for every range, each on the next free worker; the
// results in the ranges' order.
export async function spread(ranges, task, job) {
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
export async function withProgress(section, work) {
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
export async function stopRunning() {
  const job = running;
  if (!job) return;
  job.cancelled = true; job.stopped = true;
  await job.finished.catch(() => {});
}
