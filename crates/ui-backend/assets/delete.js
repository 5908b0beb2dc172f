// delete.js: the delete dialog. It first loads the delete previews and
// says what stays (other tags on the same digest) and what the next garbage
// collection could free, deletes on confirm, and reports per reference.

import { request } from './api.js';
import { h, replace } from './dom.js';
import { bytes, platform, plural, shortDigest } from './format.js';
import { api } from './routes.js';
import { digest, errorState, loading } from './views.js';

let dialogs = 0;

// One modal <dialog>: showModal traps focus, Escape closes it (except while
// deleting). Its signal aborts the preview requests when it closes.
class DeleteDialog {
  constructor(title) {
    const titleId = `delete-title-${(dialogs += 1)}`;
    this.controller = new AbortController();
    this.busy = false;
    this.action = null;
    this.body = h('div', { class: 'dialog-body', 'data-test': 'delete-preview' }, loading('Loading what deleting would do…'));
    this.results = h('ul', { class: 'delete-results', 'data-test': 'delete-results', hidden: true });
    this.confirm = h('button', { type: 'button', class: 'button button-danger', 'data-test': 'delete-confirm', disabled: true }, 'Delete');
    this.cancel = h('button', { type: 'button', class: 'button', 'data-test': 'delete-cancel', autofocus: true }, 'Cancel');
    this.element = h('dialog', { class: 'dialog', 'data-test': 'delete-dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      this.body,
      this.results,
      h('div', { class: 'dialog-actions' }, this.cancel, this.confirm));
    this.cancel.addEventListener('click', () => this.close());
    this.confirm.addEventListener('click', () => this.run());
    this.element.addEventListener('cancel', (event) => {
      if (this.busy) event.preventDefault();
    });
    this.element.addEventListener('close', () => {
      this.controller.abort();
      this.element.remove();
    });
    document.body.append(this.element);
    this.element.showModal();
  }

  get signal() {
    return this.controller.signal;
  }

  show(...content) {
    replace(this.body, ...content);
  }

  fail(error, retry) {
    replace(this.body, errorState(error, retry));
  }

  // Enables the confirm button; action() runs the deletes.
  offer(label, action) {
    this.confirm.textContent = label;
    this.confirm.disabled = false;
    this.action = action;
  }

  async run() {
    this.busy = true;
    this.confirm.disabled = true;
    this.cancel.disabled = true;
    this.confirm.textContent = 'Deleting…';
    this.results.hidden = false;
    await this.action();
    this.busy = false;
    this.confirm.hidden = true;
    this.cancel.disabled = false;
    this.cancel.textContent = 'Close';
    if (this.element.open) this.cancel.focus();
  }

  report(reference, ok, message) {
    this.results.append(h('li', { class: ok ? 'result-ok' : 'result-error', 'data-test': 'delete-result' },
      h('span', { class: 'result-mark', 'aria-hidden': 'true' }, ok ? '✓' : '✗'),
      h('strong', { class: 'mono' }, reference), ': ', message));
  }

  close() {
    if (this.element.open) this.element.close();
  }
}

// Deletes the selected tags of repository after showing their previews.
// onDeleted(tags that went, dialog) runs once the deletes are done.
export function deleteTags(repository, tags, onDeleted) {
  const dialog = new DeleteDialog(tags.length === 1 ? `Delete tag ${tags[0]}?` : `Delete ${tags.length} tags?`);
  const preview = async () => {
    dialog.show(loading('Loading what deleting would do…'));
    try {
      const { groups, failed } = await previewTags(repository, tags, dialog.signal);
      dialog.show(tagPreview(groups, failed));
      const deletable = groups.flatMap((group) => group.tags);
      if (deletable.length === 0) return;
      dialog.offer(`Delete ${plural(deletable.length, 'tag')}`, async () => {
        const deleted = await deleteEach(dialog, deletable, (tag) => api.tag(repository, tag));
        onDeleted(deleted, dialog);
      });
    } catch (error) {
      if (!dialog.signal.aborted) dialog.fail(error, preview);
    }
  };
  preview();
}

// Deletes one manifest (with all its tags) after showing its preview.
// labels (digest -> text, such as a child's platform) describe the
// children and referrers the preview lists.
export function deleteManifest(repository, manifestDigest, onDeleted, labels = new Map()) {
  const dialog = new DeleteDialog(`Delete manifest ${shortDigest(manifestDigest)}?`);
  const preview = async () => {
    dialog.show(loading('Loading what deleting would do…'));
    try {
      const answer = await request(api.manifestPreview(repository, manifestDigest), { signal: dialog.signal });
      dialog.show(manifestPreview(answer, labels));
      dialog.offer('Delete manifest', async () => {
        const deleted = await deleteEach(dialog, [manifestDigest], (reference) => api.manifest(repository, reference));
        onDeleted(deleted, dialog);
      });
    } catch (error) {
      if (!dialog.signal.aborted) dialog.fail(error, preview);
    }
  };
  preview();
}

// The tag previews grouped by digest: { groups: [{ digest, tags, staying,
// freeable }], failed: [{ tag, error }] }. Tags selected together count as
// going together, so a digest whose every tag is selected is worked out
// with the manifest's preview.
async function previewTags(repository, tags, signal) {
  const settled = await Promise.allSettled(tags.map((tag) => request(api.tagPreview(repository, tag), { signal })));
  if (signal.aborted) throw new DOMException('closed', 'AbortError');
  const failed = [];
  const byDigest = new Map();
  settled.forEach((result, index) => {
    if (result.status === 'rejected') {
      failed.push({ tag: tags[index], error: result.reason });
      return;
    }
    const preview = result.value;
    const group = byDigest.get(preview.digest) ?? { digest: preview.digest, tags: [], previews: [] };
    group.tags.push(tags[index]);
    group.previews.push(preview);
    byDigest.set(preview.digest, group);
  });
  const groups = [...byDigest.values()];
  await Promise.all(groups.map((group) => settleGroup(repository, group, signal)));
  return { groups, failed };
}

async function settleGroup(repository, group, signal) {
  const onDigest = new Set(group.previews.flatMap((preview) => [preview.tag, ...preview.other_tags]));
  group.staying = [...onDigest].filter((tag) => tag && !group.tags.includes(tag));
  if (group.staying.length > 0) {
    group.freeable = null;
  } else if (group.previews.length === 1) {
    group.freeable = group.previews[0];
  } else {
    group.freeable = await request(api.manifestPreview(repository, group.digest), { signal }).catch(() => undefined);
  }
}

function tagPreview(groups, failed) {
  const freeing = groups.filter((group) => group.freeable);
  const total = freeing.reduce((sum, group) => sum + (group.freeable.freeable_bytes ?? 0), 0);
  return [
    h('ul', { class: 'delete-list' },
      groups.map(tagGroup),
      failed.map(({ tag, error }) => h('li', { class: 'delete-item delete-item-failed' },
        h('strong', { class: 'mono' }, tag), ': ',
        error.status === 404 ? 'this tag no longer exists; it is left out.' : `${error.message} It is left out.`))),
    freeing.length > 1 && h('p', { class: 'delete-total' }, `In all, up to ${bytes(total)} could be freed.`),
    freeing.length > 0 && freeableNote(),
  ];
}

function tagGroup(group) {
  return h('li', { class: 'delete-item', 'data-test': 'delete-item' },
    h('p', { class: 'delete-item-head' },
      h('strong', { class: 'mono' }, group.tags.join(', ')), ' ', h('span', { class: 'muted' }, 'on'), ' ', digest(group.digest)),
    group.staying.length > 0
      ? h('div', { class: 'callout callout-warning', 'data-test': 'tags-stay' },
        h('p', {}, h('strong', {}, 'These tags stay: '), h('span', { class: 'mono' }, group.staying.join(', '))),
        h('p', {}, 'They point at the same digest, so the image stays and nothing is freed.'))
      : h('p', {}, 'The image becomes untagged. ', freeable(group.freeable)));
}

function manifestPreview(preview, labels) {
  const children = preview.children ?? [];
  const referrers = preview.referrers ?? [];
  return h('div', { class: 'delete-item', 'data-test': 'delete-item' },
    h('p', { class: 'delete-item-head' }, 'Manifest ', digest(preview.digest)),
    preview.other_tags.length > 0
      ? h('div', { class: 'callout callout-warning', 'data-test': 'tags-go' },
        h('p', {}, h('strong', {}, 'These tags are deleted with it: '), h('span', { class: 'mono' }, preview.other_tags.join(', '))))
      : h('p', {}, 'No tag points at it.'),
    (preview.used_by ?? []).length > 0
      && h('div', { class: 'callout callout-warning', 'data-test': 'used-by' },
        h('p', {}, h('strong', {}, 'Part of: '), h('span', { class: 'mono' }, preview.used_by.join(', '))),
        h('p', {}, 'These tags name an index that lists this manifest: after deleting it, pulling them for this platform fails.')),
    h('p', {}, freeable(preview)),
    children.length > 0 && manifestList(`Its ${plural(children.length, 'platform manifest')}:`, children, labels),
    referrers.length > 0
      && manifestList(`${plural(referrers.length, 'artifact')} referring to it (signatures, SBOMs, attestations):`, referrers, labels),
    freeableNote());
}

// An entry of children or referrers is a digest or an object with one.
function manifestList(title, entries, labels) {
  return h('div', {},
    h('p', {}, title),
    h('ul', { class: 'compact-list' }, entries.map((entry) => {
      const value = typeof entry === 'string' ? entry : entry.digest;
      const detail = labels.get(value) ?? (entry.os ? platform(entry) : entry.artifact_type ?? entry.kind);
      return h('li', {}, digest(value), detail && h('span', { class: 'muted' }, ` ${detail}`));
    })));
}

// "Garbage collection could free up to 12.0 MiB (4 blobs)." from a preview;
// undefined when the preview could not be had.
function freeable(preview) {
  if (preview === undefined) return 'How much garbage collection could free could not be worked out.';
  const blobs = preview.freeable?.length ?? 0;
  const amount = `${preview.upper_bound === false ? '' : 'up to '}${bytes(preview.freeable_bytes ?? 0)}`;
  return h('span', { 'data-test': 'freeable' }, 'Garbage collection could free ', h('strong', {}, amount),
    blobs > 0 ? ` (${plural(blobs, 'blob')}).` : '.');
}

function freeableNote() {
  return h('p', { class: 'muted small freeable-note' },
    'Space comes back at the next garbage collection with --delete-untagged. It is an upper bound: ',
    'other repositories may share layers, and those layers stay.');
}

// Deletes the references one after the other and reports each. A 403 or a
// read-only registry stops the rest, which would fail the same way.
async function deleteEach(dialog, references, pathOf) {
  const deleted = [];
  for (const [index, reference] of references.entries()) {
    try {
      await request(pathOf(reference), { method: 'DELETE' });
      deleted.push(reference);
      dialog.report(reference, true, 'deleted.');
    } catch (error) {
      dialog.report(reference, false, deleteError(error));
      if (error.status === 403 || error.code === 'read_only') {
        references.slice(index + 1).forEach((rest) => dialog.report(rest, false, 'not deleted.'));
        break;
      }
    }
  }
  return deleted;
}

function deleteError(error) {
  if (error.status === 403) return 'you may not delete in this repository.';
  if (error.status === 404) return 'it no longer exists.';
  return error.message;
}
