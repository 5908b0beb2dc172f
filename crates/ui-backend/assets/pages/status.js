// pages/status.js: /status, read-only: the registry's read-only state, the
// latest garbage collection report and the recent ones.

import { request } from '../api.js';
import { h, replace } from '../dom.js';
import { absolute, bytes, count, duration } from '../format.js';
import { api } from '../routes.js';
import { badge, definitions, emptyState, load, tableWrap, time } from '../views.js';

export const statusPage = {
  key: () => 'status',
  mount(context) {
    context.setTitle('Status');
    const region = h('div', { class: 'status' });
    const show = () => load(region, {
      signal: context.signal,
      fetch: () => request(api.status, { signal: context.signal }),
      render: (status) => replace(region, stateSection(status), latestSection(status.latest_gc), historySection(status.gc_history ?? [])),
    });
    replace(context.main,
      h('div', { class: 'page-head' },
        h('h1', {}, 'Status'),
        h('button', { type: 'button', class: 'button', 'data-test': 'status-refresh', onclick: show }, 'Refresh')),
      region);
    show();
    return null;
  },
};

function stateSection(status) {
  const openWindow = status.window;
  return h('section', { class: 'card section', 'data-test': 'status-state', 'aria-labelledby': 'state-title' },
    h('h2', { id: 'state-title' }, 'State ',
      status.read_only ? badge('read-only', 'warning') : badge('writable', 'success')),
    h('p', {}, status.read_only
      ? 'Pulls work; pushes and deletes wait until the window closes.'
      : 'Pulls, pushes and deletes work.'),
    openWindow && definitions([
      ['Held by', h('span', { class: 'mono' }, openWindow.holder)],
      ['Reason', openWindow.reason],
      ['Until', openWindow.until && untilTime(openWindow.until)],
    ]),
    status.read_only_on_boot && h('p', { class: 'muted' }, 'The registry started read-only (read_only_on_boot).'));
}

function untilTime(iso) {
  const date = new Date(iso);
  return [h('time', { datetime: iso }, absolute(date)), ' (', time(iso), ')'];
}

function latestSection(report) {
  if (!report) {
    return h('section', { class: 'section', 'data-test': 'gc-latest' },
      emptyState('No garbage collection has run yet',
        h('p', {}, 'Reports show up here after gc-worker has run once.')));
  }
  return h('section', { class: 'card section', 'data-test': 'gc-latest', 'aria-labelledby': 'latest-title' },
    h('h2', { id: 'latest-title' }, 'Latest garbage collection ', report.dry_run && badge('dry run', 'info')),
    definitions([
      ['Started', time(report.started_at)],
      [report.dry_run ? 'Bytes it would free' : 'Bytes freed', bytes(report.bytes_freed)],
      ['Read-only window', duration(report.window_ms)],
      ['Total time', report.total_ms != null && duration(report.total_ms)],
      ['Blobs deleted', count(report.blobs_deleted)],
      ['Manifests deleted', count(report.manifests_deleted)],
      ['Repositories pruned', count(report.repositories_pruned)],
      ['Repositories scanned', report.repositories_scanned != null && count(report.repositories_scanned)],
      ['Layer links deleted', report.layer_links_deleted != null && count(report.layer_links_deleted)],
      ['Uploads deleted', report.uploads_deleted != null && count(report.uploads_deleted)],
      ['Untagged manifests', report.delete_untagged != null && (report.delete_untagged ? 'deleted' : 'kept')],
    ], 'details details-grid'));
}

function historySection(history) {
  if (history.length === 0) return null;
  const newestFirst = [...history].sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at));
  return h('section', { class: 'section', 'aria-labelledby': 'history-title' },
    h('h2', { id: 'history-title' }, 'Recent runs'),
    tableWrap(h('table', { class: 'table', 'data-test': 'gc-history-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Started'),
        h('th', { scope: 'col', class: 'numeric' }, 'Freed'),
        h('th', { scope: 'col', class: 'numeric' }, 'Window'),
        h('th', { scope: 'col', class: 'numeric' }, 'Blobs'),
        h('th', { scope: 'col', class: 'numeric' }, 'Manifests'),
        h('th', { scope: 'col', class: 'numeric' }, 'Repositories pruned'))),
      h('tbody', {}, newestFirst.map((report) => h('tr', { 'data-test': 'gc-history-row' },
        h('td', { class: 'nowrap' }, time(report.started_at), report.dry_run && [' ', badge('dry run', 'info')]),
        h('td', { class: 'numeric nowrap' }, bytes(report.bytes_freed)),
        h('td', { class: 'numeric nowrap' }, duration(report.window_ms)),
        h('td', { class: 'numeric' }, count(report.blobs_deleted)),
        h('td', { class: 'numeric' }, count(report.manifests_deleted)),
        h('td', { class: 'numeric' }, count(report.repositories_pruned)))))), 'Recent garbage collections'));
}
