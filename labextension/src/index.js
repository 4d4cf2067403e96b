// SQL highlighting for hybridwb's %%mysql and %%platform cells (and jupysql's %%sql) in
// JupyterLab 4.
//
// A notebook gives every code cell its kernel's language (Python), so a cell whose first
// line is a hybridwb cell magic is switched to the matching SQL dialect of JupyterLab's own
// CodeMirror language registry (text/x-mysql, text/x-pgsql); when the magic is removed the
// cell goes back to the notebook's language. Only the editor's mime type changes: the cell's
// text, its execution and the saved notebook are untouched.
import { INotebookTracker } from '@jupyterlab/notebook';

export const MAGICS = [
  [/^%%mysql(\s|$)/, 'text/x-mysql'],
  // jupysql's %%sql runs on the same MySQL source (hybridwb registers it as `mysql`)
  [/^%%sql(\s|$)/, 'text/x-mysql'],
  [/^%%platform(\s|$)/, 'text/x-pgsql']
];

const SQL_MIMES = new Set(MAGICS.map(([, mime]) => mime));

export function mimeFor(source) {
  for (const [pattern, mime] of MAGICS) {
    if (pattern.test(source)) {
      return mime;
    }
  }
  return null;
}

function watchNotebook(notebook) {
  const seen = new WeakSet();

  const apply = model => {
    if (model.type !== 'code') {
      return;
    }
    const wanted = mimeFor(model.sharedModel.getSource());
    if (wanted !== null) {
      if (model.mimeType !== wanted) {
        model.mimeType = wanted;
      }
    } else if (SQL_MIMES.has(model.mimeType)) {
      model.mimeType = notebook.codeMimetype;
    }
  };

  const watch = model => {
    if (seen.has(model) || model.type !== 'code') {
      return;
    }
    seen.add(model);
    model.sharedModel.changed.connect(() => apply(model));
    // the notebook resets every cell to the kernel's language when it learns it
    model.mimeTypeChanged.connect(() => apply(model));
    apply(model);
  };

  const attach = () => {
    const cells = notebook.model?.cells;
    if (!cells) {
      return;
    }
    for (let i = 0; i < cells.length; i++) {
      watch(cells.get(i));
    }
    cells.changed.connect((_, change) => {
      for (const model of change.newValues ?? []) {
        watch(model);
      }
    });
  };

  notebook.modelChanged.connect(attach);
  attach();
}

const plugin = {
  id: 'hybridwb-sql-cells:plugin',
  description: 'SQL highlighting for %%mysql and %%platform cells',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app, tracker) => {
    tracker.widgetAdded.connect((_, panel) => watchNotebook(panel.content));
    tracker.forEach(panel => watchNotebook(panel.content));
  }
};

export default plugin;
