// The active model: loading (the demo, a file, another backend) and its card.
import { $ } from './dom.js';
import { init as startWorkers, staff, stopRunning, workers } from './pool.js';

const params = new URLSearchParams(location.search);
let model = null; // describe() of the active model
let modelName = '';
let modelBytes = null; // its file, for going back to it

// The constant flanks the active model reads around its variable region:
// its metadata's `flank_5` and `flank_3`, else the DREAM plasmid's (decided
// in the wasm module, `Flanks::of`).
export function flanks() {
  return { flank5: model.flank_5, flank3: model.flank_3 };
}

// How many networks the active model holds: an ensemble's members, whose
// predictions have a spread (their standard deviation), or 1.
export function members() {
  return model.members;
}

// The backend the active model runs on: `cpu` or `webgpu`.
export function backend() {
  return model.backend;
}

// The active model's name and file (a copy of it).
export function active() {
  return { name: modelName, bytes: modelBytes.slice(0) };
}

export function init() {
  if (params.get('backend')) $('#backend').value = params.get('backend');
  $('#model-file').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (file) await loadModel(await file.arrayBuffer(), file.name);
    event.target.value = '';
  });
  $('#demo-model').addEventListener('click', () => loadDemo().catch(showModelError));
  $('#backend').addEventListener('change', () => loadDemo().catch(showModelError));
}

export function setStatus(text, state) {
  const status = $('#status');
  status.textContent = text;
  status.dataset.state = state;
}

// Loads a model into every worker; on failure the previous one stays active
// and the error shows (`true` when it loaded).
export async function loadModel(bytes, name) {
  setStatus(`Loading ${name}…`, 'loading');
  $('#model-error').hidden = true;
  try {
    startWorkers();
    await stopRunning();
    const copy = bytes.slice(0); // workers[0] takes `bytes` itself
    const kept = bytes.slice(0);
    const description = await workers[0].call('load', { bytes, backend: $('#backend').value }, [bytes]);
    await staff(description, copy);
    model = description; modelName = name; modelBytes = kept;
    showCard();
    const where = description.backend === 'cpu'
      ? `the CPU (wasm, ${workers.length} worker${workers.length > 1 ? 's' : ''})` : 'WebGPU';
    setStatus(`Ready: ${name} on ${where} — ${description.adapter}`, 'ready');
    return true;
  } catch (err) {
    $('#model-error').textContent = `${name}: ${err.message}`;
    $('#model-error').hidden = false;
    setStatus(model ? `Ready: ${modelName} (unchanged)` : 'No model loaded', model ? 'ready' : 'error');
    return false;
  }
}

export async function loadDemo() {
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
  if (model.members > 1) {
    entries.push(['ensemble', `${model.members} networks: each prediction is their mean, ± their standard deviation (the spread: how much they disagree)`]);
  }
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
  // Controls that only mean something for an ensemble (the design's caution).
  document.querySelectorAll('.ensemble-only').forEach((e) => { e.hidden = model.members === 1; });
}

export function showModelError(err) {
  $('#model-error').textContent = err.message;
  $('#model-error').hidden = false;
}
