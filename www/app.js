// The page: wires the model card and one module per tab (www/modules/).
// A new tab is one module exporting `init`, and its panel in index.html.
import { $ } from './modules/dom.js';
import * as design from './modules/design.js';
import * as model from './modules/model.js';
import * as mutagenesis from './modules/mutagenesis.js';
import * as score from './modules/score.js';
import * as train from './modules/train.js';

for (const tab of document.querySelectorAll('[role=tab]')) {
  tab.addEventListener('click', () => {
    for (const other of document.querySelectorAll('[role=tab]')) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      $(`#${other.getAttribute('aria-controls')}`).hidden = !selected;
    }
  });
}

model.init();
score.init();
mutagenesis.init();
design.init();
train.init();
offlineCache()
  .then(() => model.loadDemo())
  .catch((err) => { model.showModelError(err); model.setStatus('No model loaded', 'error'); });

// After one visit the page works offline (www/sw.js). On a first visit (or a
// new build) the service worker downloads the page's files once, then the
// model loads from its cache: nothing is downloaded twice.
async function offlineCache() {
  if (!('serviceWorker' in navigator)) return;
  try {
    const registration = await navigator.serviceWorker.register('sw.js');
    const worker = registration.installing || registration.waiting;
    if (worker) {
      await new Promise((resolve) => {
        worker.addEventListener('statechange', () => { if (['activated', 'redundant'].includes(worker.state)) resolve(); });
      });
    }
  } catch (err) {
    console.warn(`no offline cache: ${err.message}`);
  }
}
