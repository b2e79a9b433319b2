// The browser's storage of an unfinished full fine-tuning (IndexedDB, on this
// machine only), so that a reloaded tab can continue it: the run's record
// (model, rows, settings, losses) and each network's last checkpoint, each a
// value of its own (Chromium refuses values over ~128 MB; a network's
// checkpoint is its weights, Adam's two moments and the weight average).
const DB = 'promoscope';
const STORE = 'runs';
const KEY = 'full';
const member = (k) => `${KEY}/${k}`;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// `work(store)` in one transaction; the last request's result.
async function act(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// The saved run with its `checkpoints` (null where a network has none), or undefined.
export async function loadRun() {
  const record = await act('readonly', (store) => store.get(KEY));
  if (!record) return undefined;
  const checkpoints = [];
  for (let k = 0; k < record.members; k += 1) {
    checkpoints.push((await act('readonly', (store) => store.get(member(k)))) ?? null);
  }
  return { ...record, checkpoints };
}

// Saves the run's record (without its checkpoints).
export function saveRun(record) {
  const { checkpoints, ...rest } = record;
  return act('readwrite', (store) => store.put({ ...rest, members: checkpoints.length }, KEY));
}

// Saves network `k`'s checkpoint.
export function saveCheckpoint(k, checkpoint) {
  return act('readwrite', (store) => store.put(checkpoint, member(k)));
}

// Forgets the run and its checkpoints.
export function dropRun() {
  return act('readwrite', (store) => store.delete(IDBKeyRange.bound(KEY, `${KEY}\uffff`)));
}
