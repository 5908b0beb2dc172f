// views.js: UI pieces several pages share: loading, error, not-found and
// empty states, times, badges, digests, copy buttons, breadcrumbs,
// definition lists, scrolling table containers and the pager.

import { announce, h, replace } from './dom.js';
import { absolute, count, plural, relative, shortDigest } from './format.js';
import { pages, withQuery } from './routes.js';

export function loading(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status', 'data-test': 'loading' },
    h('span', { class: 'visually-hidden' }, label),
    h('div', { class: 'skeleton', 'aria-hidden': 'true' },
      [1, 2, 3, 4].map(() => h('div', { class: 'skeleton-line' }))));
}

// The error state: the server's message and a "Try again" button.
export function errorState(error, retry) {
  return h('section', { class: 'state state-error', role: 'alert', 'data-test': 'error-state' },
    h('h2', {}, error.status === 0 ? 'Berth is not reachable' : 'Something went wrong'),
    h('p', {}, error.message),
    retry && h('button', { type: 'button', class: 'button', 'data-test': 'retry', onclick: retry }, 'Try again'));
}

// level 1 when the not-found state is the whole page.
export function notFound(message, back = { href: pages.catalog, label: 'Back to the catalog' }, level = 2) {
  return h('section', { class: 'state', 'data-test': 'not-found' },
    h(`h${level}`, {}, 'Not found'),
    h('p', {}, message),
    h('p', {}, h('a', { href: back.href }, back.label)));
}

// A 404 gets the not-found state, anything else the error state.
export function failure(error, retry, back) {
  return error.status === 404 ? notFound(error.message, back) : errorState(error, retry);
}

export function emptyState(title, ...body) {
  return h('section', { class: 'state', 'data-test': 'empty-state' }, h('h2', {}, title), ...body);
}

// Replaces region with a loading state, then with render(data) or a
// failure. Nothing happens once signal is aborted (the page went away).
export async function load(region, { signal, fetch, render, back }) {
  const attempt = async () => {
    region.setAttribute('aria-busy', 'true');
    replace(region, loading());
    try {
      const data = await fetch();
      if (signal.aborted) return;
      replace(region);
      render(data);
    } catch (error) {
      if (!signal.aborted) replace(region, failure(error, attempt, back));
    } finally {
      region.removeAttribute('aria-busy');
    }
  };
  await attempt();
}

// <time> with the relative time as text and the absolute one as title.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: absolute(date) }, relative(date));
}

export function badge(text, variant = 'neutral') {
  return h('span', { class: `badge badge-${variant}` }, text);
}

// A digest as its first 12 hex digits, the full digest in the title.
export function digest(value) {
  return h('code', { class: 'digest', title: value }, shortDigest(value));
}

// A command in monospace, scrolling sideways when long, with its copy button.
export function commandLine(command, label) {
  return h('span', { class: 'command-line' }, h('code', { class: 'command' }, command), copyButton(command, label, 'copy-pull'));
}

// A button copying text to the clipboard and saying "Copied". Where the
// clipboard is not available, it shows the text selected beside it instead.
export function copyButton(text, label, hook = 'copy') {
  const button = h('button', {
    type: 'button', class: 'button button-small copy', 'data-test': hook, 'aria-label': label, title: text,
  }, 'Copy');
  const wrapper = h('span', { class: 'copy-wrapper' }, button);
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      confirmCopied(button);
    } catch {
      showForManualCopy(wrapper, text);
    }
  });
  return wrapper;
}

function confirmCopied(button) {
  button.textContent = 'Copied';
  button.classList.add('copied');
  announce('Copied to the clipboard');
  clearTimeout(button.copiedTimer);
  button.copiedTimer = setTimeout(() => {
    button.textContent = 'Copy';
    button.classList.remove('copied');
  }, 2000);
}

function showForManualCopy(wrapper, text) {
  let field = wrapper.querySelector('input');
  if (!field) {
    field = h('input', { type: 'text', readonly: true, class: 'copy-fallback', value: text, 'aria-label': 'Press Ctrl+C to copy' });
    wrapper.append(field);
  }
  field.focus();
  field.select();
  announce('Press Control C to copy the selected text');
}

// items: [{ label, href }], the last one is the current page.
export function breadcrumb(items) {
  return h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
    h('ol', {}, items.map((item, index) => h('li', {},
      index === items.length - 1
        ? h('span', { 'aria-current': 'page' }, item.label)
        : h('a', { href: item.href }, item.label)))));
}

// rows: [[term, value], ...]; rows whose value is null, false or empty are
// left out.
export function definitions(rows, className = 'details') {
  const present = rows.filter(([, value]) => value != null && value !== false && value !== ''
    && !(Array.isArray(value) && value.length === 0));
  return h('dl', { class: className }, present.map(([term, value]) => h('div', { class: 'details-row' }, h('dt', {}, term), h('dd', {}, value))));
}

// A horizontally scrolling, keyboard-scrollable container for a table.
export function tableWrap(table, label) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' }, table);
}

// Previous/next links, "Page X of Y" and the total; noun is [one, many]
// ("tag", "tags") and href(page) builds the link to another page.
export function pager({ page, perPage, total, noun, href }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  const link = (target, label, hook) => h('a', {
    class: 'button', 'data-test': hook, href: target ? href(target) : null, 'aria-disabled': target ? null : 'true',
    rel: hook === 'page-next' ? 'next' : 'prev',
  }, label);
  return h('nav', { class: 'pager', 'aria-label': 'Pagination' },
    link(page > 1 ? Math.min(page - 1, pages) : null, '← Previous', 'page-prev'),
    h('span', { class: 'pager-status', 'data-test': 'page-status' }, `Page ${count(page)} of ${count(pages)}`),
    link(page < pages ? page + 1 : null, 'Next →', 'page-next'),
    h('span', { class: 'pager-total', 'data-test': 'total' }, plural(total, ...noun)));
}

// A positive integer page number from the query, 1 when absent or invalid.
export function pageNumber(query) {
  const page = Number.parseInt(query.get('page') ?? '1', 10);
  return Number.isFinite(page) && page > 0 ? page : 1;
}

// The path with the current query changed: queryHref('/', query, { page: 2 }).
export function queryHref(path, query, changes) {
  return withQuery(path, { ...Object.fromEntries(query), ...changes });
}
