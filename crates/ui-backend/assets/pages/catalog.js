// pages/catalog.js: the catalog at "/": server-side search as you type
// (?q=, debounced, stale requests aborted), the repository table and its
// pager (?page=).

import { latestOnly, request } from '../api.js';
import { announce, h, keepFocus, replace } from '../dom.js';
import { count, plural } from '../format.js';
import { knownPublicName } from '../pull.js';
import { api, pages, withQuery } from '../routes.js';
import { emptyState, failure, loading, pageNumber, pager, queryHref, tableWrap, time } from '../views.js';

const PER_PAGE = 50;
const DEBOUNCE_MS = 200;

export const catalogPage = {
  key: () => 'catalog',
  mount(context) {
    context.setTitle('Repositories');
    const results = h('div', { class: 'results', tabindex: '-1' });
    const search = h('input', {
      type: 'search', id: 'catalog-search', class: 'input', 'data-test': 'catalog-search',
      placeholder: 'Search repositories', autocomplete: 'off', spellcheck: 'false', value: context.query.get('q') ?? '',
    });
    const nextSignal = latestOnly(context.signal);
    let query = context.query;
    let timer = null;

    // Loads the page of results query asks for; answers the total, or null.
    const show = async () => {
      const signal = nextSignal();
      const q = query.get('q') ?? '';
      startLoading(results);
      try {
        const answer = await request(withQuery(api.repositories, { q, page: pageNumber(query), per_page: PER_PAGE }), { signal });
        keepFocus(results, () => replace(results, catalogResults(answer, q, query)));
        return answer.total;
      } catch (error) {
        if (!signal.aborted) replace(results, failure(error, show));
        return null;
      } finally {
        if (!signal.aborted) results.removeAttribute('aria-busy');
      }
    };

    const searchNow = async () => {
      clearTimeout(timer);
      query = context.replaceQuery({ q: search.value.trim(), page: null });
      const total = await show();
      if (total !== null) announce(plural(total, 'repository', 'repositories'));
    };

    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(searchNow, DEBOUNCE_MS);
    });

    replace(context.main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Repositories')),
      h('form', { class: 'search', role: 'search', onsubmit: (event) => { event.preventDefault(); searchNow(); } },
        h('label', { for: 'catalog-search', class: 'visually-hidden' }, 'Search repositories'),
        search),
      results);
    show();

    return {
      update(next) {
        query = next;
        if (search.value.trim() !== (query.get('q') ?? '')) search.value = query.get('q') ?? '';
        show();
      },
    };
  },
};

// Keeps the old results on screen, dimmed, while new ones load.
function startLoading(results) {
  results.setAttribute('aria-busy', 'true');
  if (!results.querySelector('table')) replace(results, loading());
}

function catalogResults(answer, q, query) {
  const { repositories, total, page, per_page: perPage } = answer;
  if (total === 0) return q ? noMatch(q) : noRepositories();
  if (repositories.length === 0) {
    return emptyState('This page is empty', h('p', {}, h('a', { href: queryHref(pages.catalog, query, { page: null }) }, 'Go to the first page')));
  }
  return [
    tableWrap(h('table', { class: 'table', 'data-test': 'catalog-table' },
      h('caption', { class: 'visually-hidden' }, 'Repositories'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col', class: 'numeric' }, 'Tags'),
        h('th', { scope: 'col' }, 'Newest push'))),
      h('tbody', {}, repositories.map((repository) => h('tr', { 'data-test': 'catalog-row' },
        h('td', {}, h('a', { href: pages.repo(repository.name), class: 'repo-link' }, highlight(repository.name, q))),
        h('td', { class: 'numeric' }, count(repository.tag_count)),
        h('td', {}, time(repository.last_pushed)))))), 'Repositories'),
    pager({ page, perPage, total, noun: ['repository', 'repositories'], href: (target) => queryHref(pages.catalog, query, { page: target }) }),
  ];
}

// The name with the first case-insensitive match of q in <mark>.
function highlight(name, q) {
  const at = q ? name.toLowerCase().indexOf(q.toLowerCase()) : -1;
  if (at < 0) return name;
  return [name.slice(0, at), h('mark', {}, name.slice(at, at + q.length)), name.slice(at + q.length)];
}

function noMatch(q) {
  return emptyState(`No repository matches “${q}”`,
    h('p', {}, 'Search looks for the text anywhere in a repository’s name, ignoring case.'));
}

function noRepositories() {
  const registry = knownPublicName() ?? 'REGISTRY';
  return emptyState('No repositories yet',
    h('p', {}, 'Push an image and it shows up here:'),
    h('pre', { class: 'command' }, `docker tag my-image ${registry}/NAME:TAG\ndocker push ${registry}/NAME:TAG`),
    registry === 'REGISTRY' && h('p', { class: 'muted' }, 'REGISTRY is the address you push to, NAME the repository and TAG the version.'));
}
