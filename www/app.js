// The page: wires the model card and one module per tab (www/modules/).
// A new tab is one module exporting `init`, and its panel in index.html.
import { $ } from './modules/dom.js';
import * as model from './modules/model.js';
import * as mutagenesis from './modules/mutagenesis.js';
import * as score from './modules/score.js';

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
model.loadDemo().catch((err) => { model.showModelError(err); model.setStatus('No model loaded', 'error'); });
