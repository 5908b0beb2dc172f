// pages/repo.js: a repository's tags at /repo/{name}: the filter (?q=),
// sorting (?sort=, ?order=), the pager (?page=), pull commands per tag,
// cosign attachment badges, and deleting the selected tags.

import { latestOnly, request } from '../api.js';
import { deleteTags } from '../delete.js';
import { h, keepFocus, replace } from '../dom.js';
import { bytes, isAttestationPlatform, kindLabel, platform, plural, shortDigest, shortTag } from '../format.js';
import { pullCommand } from '../pull.js';
import { api, pages, withQuery } from '../routes.js';
import {
  badge, breadcrumb, copyButton, digest, emptyState, failure, loading, notFound, pageNumber, pager, queryHref, tableWrap, time,
} from '../views.js';

const PER_PAGE = 50;
const DEBOUNCE_MS = 200;
const SORT_COLUMNS = { name: 'Tag', pushed: 'Pushed', created: 'Created', size: 'Size' };

const defaultOrder = (sort) => (sort === 'name' ? 'asc' : 'desc');

// The sort and order the query asks for, defaults filled in.
function sorting(query) {
  const sort = Object.hasOwn(SORT_COLUMNS, query.get('sort')) ? query.get('sort') : 'name';
  const order = ['asc', 'desc'].includes(query.get('order')) ? query.get('order') : defaultOrder(sort);
  return { sort, order };
}

export const repoPage = {
  key: ({ name }) => `repo:${name}`,
  mount(context) {
    const { name } = context.params;
    context.setTitle(name);
    const view = {
      name,
      query: context.query,
      selected: new Set(),
      answer: null,
    };
    const nextSignal = latestOnly(context.signal);
    const results = h('div', { class: 'results', tabindex: '-1' });
    const filter = h('input', {
      type: 'search', id: 'tag-filter', class: 'input', 'data-test': 'tag-filter', placeholder: 'Filter tags',
      autocomplete: 'off', spellcheck: 'false', value: view.query.get('q') ?? '',
    });
    const deleteButton = h('button', { type: 'button', class: 'button button-danger', 'data-test': 'delete-selected', disabled: true }, 'Delete selected…');

    const render = () => keepFocus(results, () => {
      replace(results, tagResults(view, { onSelect: updateSelection, onSort: sortBy }));
      updateSelection();
    });

    const updateSelection = () => {
      const count = view.selected.size;
      deleteButton.disabled = count === 0;
      deleteButton.textContent = count === 0 ? 'Delete selected…' : `Delete ${plural(count, 'tag')}…`;
      const all = results.querySelector('[data-test="select-all"]');
      const boxes = [...results.querySelectorAll('[data-test="tag-checkbox"]')];
      if (!all) return;
      const checked = boxes.filter((box) => box.checked).length;
      all.checked = checked > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    };

    const show = async () => {
      const signal = nextSignal();
      const { sort, order } = sorting(view.query);
      results.setAttribute('aria-busy', 'true');
      if (!view.answer) replace(results, loading());
      try {
        const params = { q: view.query.get('q'), sort, order, page: pageNumber(view.query), per_page: PER_PAGE };
        view.answer = await request(withQuery(api.tags(name), params), { signal });
        pruneSelection(view);
        render();
      } catch (error) {
        if (signal.aborted) return;
        if (error.status === 404) replace(context.main, notFound(error.message, undefined, 1));
        else replace(results, failure(error, show));
      } finally {
        if (!signal.aborted) results.removeAttribute('aria-busy');
      }
    };

    const sortBy = (column) => {
      const current = sorting(view.query);
      const order = column === current.sort ? (current.order === 'asc' ? 'desc' : 'asc') : defaultOrder(column);
      context.navigate(queryHref(pages.repo(name), view.query, {
        sort: column === 'name' ? null : column,
        order: order === defaultOrder(column) ? null : order,
        page: null,
      }));
    };

    let timer = null;
    filter.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        view.query = context.replaceQuery({ q: filter.value.trim(), page: null });
        show();
      }, DEBOUNCE_MS);
    });

    deleteButton.addEventListener('click', () => {
      deleteTags(name, [...view.selected], (deleted) => {
        deleted.forEach((tag) => view.selected.delete(tag));
        show();
      });
    });

    replace(context.main,
      breadcrumb([{ label: 'Repositories', href: pages.catalog }, { label: name }]),
      h('div', { class: 'page-head' }, h('h1', { class: 'name' }, name)),
      h('div', { class: 'toolbar' },
        h('form', { class: 'search', role: 'search', onsubmit: (event) => event.preventDefault() },
          h('label', { for: 'tag-filter', class: 'visually-hidden' }, 'Filter tags'),
          filter),
        deleteButton),
      results);
    show();

    return {
      update(next) {
        view.query = next;
        if (filter.value.trim() !== (next.get('q') ?? '')) filter.value = next.get('q') ?? '';
        show();
      },
    };
  },
};

// Forgets selected tags that are not on the page any more.
function pruneSelection(view) {
  const shown = new Set(view.answer.tags.map((tag) => tag.name));
  for (const tag of view.selected) if (!shown.has(tag)) view.selected.delete(tag);
}

function tagResults(view, actions) {
  const { answer, query, name } = view;
  const q = query.get('q') ?? '';
  if (answer.total === 0) {
    return q
      ? emptyState(`No tag matches “${q}”`, h('p', {}, 'The filter looks for the text anywhere in a tag, ignoring case.'))
      : emptyState('No tags in this repository', h('p', {}, 'Push a tag to it and it shows up here.'));
  }
  if (answer.tags.length === 0) {
    return emptyState('This page is empty', h('p', {}, h('a', { href: queryHref(pages.repo(name), query, { page: null }) }, 'Go to the first page')));
  }
  return [
    tableWrap(h('table', { class: 'table tag-table', 'data-test': 'tag-table' },
      h('caption', { class: 'visually-hidden' }, `Tags of ${name}`),
      tagHead(view, actions),
      h('tbody', {}, answer.tags.map((tag) => tagRow(tag, view, actions)))), `Tags of ${name}`),
    pager({
      page: answer.page, perPage: answer.per_page, total: answer.total, noun: ['tag', 'tags'],
      href: (target) => queryHref(pages.repo(name), query, { page: target }),
    }),
  ];
}

function tagHead(view, { onSelect, onSort }) {
  const { sort, order } = sorting(view.query);
  const selectAll = h('input', { type: 'checkbox', 'data-test': 'select-all', 'aria-label': 'Select all tags on this page' });
  selectAll.addEventListener('change', () => {
    for (const tag of view.answer.tags) {
      if (selectAll.checked) view.selected.add(tag.name);
      else view.selected.delete(tag.name);
    }
    document.querySelectorAll('[data-test="tag-checkbox"]').forEach((box) => { box.checked = selectAll.checked; });
    onSelect();
  });
  const sortable = (column) => h('th', {
    scope: 'col',
    class: column === 'size' ? 'numeric' : null,
    'aria-sort': column === sort ? (order === 'asc' ? 'ascending' : 'descending') : null,
  }, h('button', { type: 'button', class: 'sort', 'data-test': `sort-${column}`, onclick: () => onSort(column) },
    SORT_COLUMNS[column],
    h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, column !== sort ? '↕' : order === 'asc' ? '↑' : '↓')));
  return h('thead', {}, h('tr', {},
    h('th', { scope: 'col', class: 'select' }, selectAll),
    sortable('name'),
    h('th', { scope: 'col' }, 'Digest'),
    h('th', { scope: 'col' }, 'Platforms'),
    sortable('size'),
    sortable('created'),
    sortable('pushed'),
    h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Pull command'))));
}

function tagRow(tag, view, { onSelect }) {
  const checkbox = h('input', {
    type: 'checkbox', 'data-test': 'tag-checkbox', 'aria-label': `Select ${tag.name}`, checked: view.selected.has(tag.name),
  });
  checkbox.addEventListener('change', () => {
    if (checkbox.checked) view.selected.add(tag.name);
    else view.selected.delete(tag.name);
    onSelect();
  });
  return h('tr', { 'data-test': 'tag-row', 'data-tag': tag.name, class: tag.attachment ? 'row-attachment' : null },
    h('td', { class: 'select' }, checkbox),
    h('td', {}, h('div', { class: 'tag-line' },
      h('a', { href: pages.image(view.name, tag.name), class: 'mono', title: tag.name }, shortTag(tag.name)),
      tagBadges(tag))),
    h('td', {}, digest(tag.digest)),
    h('td', { class: 'platforms' }, platformsCell(tag)),
    h('td', { class: 'numeric nowrap' }, bytes(tag.size)),
    h('td', { class: 'nowrap' }, time(tag.created)),
    h('td', { class: 'nowrap' }, time(tag.pushed)),
    h('td', {}, pullButton(view.name, tag.name)));
}

function pullButton(name, tag) {
  const command = pullCommand(name, tag);
  return command ? copyButton(command, `Copy pull command for ${tag}`, 'copy-pull') : null;
}

function tagBadges(tag) {
  if (tag.attachment) {
    const { kind, subject_tags: subjects, subject_digest: subject } = tag.attachment;
    const of = subjects?.length ? subjects.join(', ') : shortDigest(subject);
    return h('span', { class: 'badges' }, badge(`${kindLabel(kind).of} of ${of}`, 'muted'));
  }
  const kinds = [...new Set((tag.attachments ?? []).map((attachment) => attachment.kind))];
  if (kinds.length === 0) return null;
  return h('span', { class: 'badges' }, kinds.map((kind) => badge(kindLabel(kind).badge, 'info')));
}

function platformsCell(tag) {
  if (tag.kind === 'artifact') return badge('artifact', 'neutral');
  const entries = (tag.platforms ?? []).filter((entry) => !isAttestationPlatform(entry));
  if (entries.length === 0) return h('span', { class: 'muted' }, '—');
  return entries.map((entry, index) => [
    index > 0 && ', ',
    entry.missing
      ? h('span', { class: 'missing', title: 'This platform’s manifest is missing from the registry' }, `${platform(entry)} (missing)`)
      : platform(entry),
  ]);
}
