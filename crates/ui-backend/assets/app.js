// app.js: the entry point. Owns the shell (header with navigation and the
// session, the read-only banner, the flash message after a delete), the
// session check at start, and the History API router that mounts one page
// at a time and hands query changes to the page that is already there.
//
// Test hooks: data-test="..." on
//   shell:    user-name (logged-in user), logout (Log out button),
//             read-only-banner (banner, hidden while writable), flash (message after a delete)
//   states:   loading, error-state (with the server's message), retry ("Try again"),
//             not-found, empty-state
//   login:    login-form, login-user, login-password, login-submit, login-error
//   catalog:  catalog-search (search box), catalog-table, catalog-row (one per repository)
//   pager:    page-prev, page-next (links, aria-disabled at the ends), page-status ("Page X of Y"),
//             total (count of entries)
//   repo:     tag-filter, tag-table, tag-row (one per tag, data-tag=<tag>), tag-checkbox,
//             select-all, sort-name, sort-size, sort-created, sort-pushed (sort buttons),
//             delete-selected, copy-pull (copy a pull command)
//   dialog:   delete-dialog (<dialog>), delete-preview (its body), delete-item (one per digest),
//             tags-stay (other tags that stay), tags-go (tags deleted with a manifest),
//             freeable (what GC could free), delete-confirm, delete-cancel,
//             delete-results, delete-result (one per deleted reference)
//   image:    image-digest, copy-digest, other-tags, delete-tag, delete-manifest, referrers,
//             platform-tab (data-digest=<child digest>), platform-panel, platform-missing,
//             layers-table, config, labels-table, history-table
//   status:   status-refresh, status-state, gc-latest, gc-history-table, gc-history-row

import {
  clearAuthorization, onReadOnly, onUnauthorized, request, storedAuthorization,
} from './api.js';
import { h, replace } from './dom.js';
import { absolute, clock } from './format.js';
import { catalogPage } from './pages/catalog.js';
import { imagePage } from './pages/image.js';
import { loginPage } from './pages/login.js';
import { repoPage } from './pages/repo.js';
import { statusPage } from './pages/status.js';
import {
  api, imageFromPath, pages, repoNameFromPath, withQuery,
} from './routes.js';
import { rememberPublicName } from './pull.js';
import { notFound } from './views.js';

const BANNER_POLL_MS = 15_000;

const main = document.getElementById('main');
const header = document.getElementById('site-header');
const banner = document.getElementById('read-only-banner');
const flashSlot = document.getElementById('flash');

// known: the session check answered; required: the registry wants a log-in.
const session = { known: false, required: false, user: null };
let current = null;
let pendingFlash = null;

const exact = (path) => (pathname) => (pathname === path ? {} : null);
const under = (prefix, read) => (pathname) =>
  (pathname.length > prefix.length && pathname.startsWith(prefix) ? read(pathname.slice(prefix.length)) : null);

const notFoundPage = {
  key: () => 'not-found',
  mount(context) {
    context.setTitle('Not found');
    replace(context.main, notFound('There is no page at this address.', undefined, 1));
    return null;
  },
};

const ROUTES = [
  { page: catalogPage, match: exact(pages.catalog) },
  { page: statusPage, match: exact(pages.status) },
  { page: loginPage, match: exact(pages.login) },
  { page: repoPage, match: under('/repo/', (rest) => ({ name: repoNameFromPath(rest) })) },
  { page: imagePage, match: under('/image/', imageFromPath) },
];

function resolve(pathname) {
  for (const route of ROUTES) {
    const params = route.match(pathname);
    if (params && Object.values(params).every((value) => value !== '')) return { page: route.page, params };
  }
  return { page: notFoundPage, params: {} };
}

// Goes to url (a path on this site). flash is a message for the next page.
function navigate(url, { replace: replacing = false, flash = null } = {}) {
  history[replacing ? 'replaceState' : 'pushState'](null, '', url);
  pendingFlash = flash;
  render({ focus: true, scroll: true });
}

// Changes query parameters of the current URL in place (no new history
// entry); null or '' removes one. Answers the new parameters.
function replaceQuery(changes) {
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(changes)) {
    if (value == null || value === '') url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  history.replaceState(history.state, '', url.pathname + url.search);
  return url.searchParams;
}

function loginHref() {
  return withQuery(pages.login, { next: location.pathname + location.search });
}

function render({ focus = false, scroll = false } = {}) {
  const url = new URL(location.href);
  const { page, params } = resolve(url.pathname);
  if (session.required && !storedAuthorization() && page !== loginPage) {
    navigate(loginHref(), { replace: true });
    return;
  }
  const key = page.key(params);
  if (current?.key === key && current.instance?.update) {
    current.instance.update(url.searchParams);
    return;
  }
  current?.controller.abort();
  document.querySelectorAll('dialog[open]').forEach((dialog) => dialog.close());
  const entry = { key, controller: new AbortController(), instance: null };
  current = entry;
  showFlash(pendingFlash);
  pendingFlash = null;
  renderHeader(page);
  main.replaceChildren();
  entry.instance = page.mount(pageContext(params, url.searchParams, entry.controller.signal));
  if (scroll) window.scrollTo(0, 0);
  if (focus && current === entry) focusPage();
  refreshBanner();
}

function pageContext(params, query, signal) {
  return {
    main,
    params,
    query,
    signal,
    session,
    navigate,
    replaceQuery,
    setTitle: (title) => { document.title = `${title} · Berth`; },
    loggedIn: (user) => {
      Object.assign(session, { known: true, required: true, user });
      renderHeader(loginPage);
    },
  };
}

// Moves focus to the new page's heading, as a screen reader user expects
// after following a link, unless the page already focused something.
function focusPage() {
  if (main.contains(document.activeElement)) return;
  const heading = main.querySelector('h1');
  const target = heading ?? main;
  if (heading) heading.tabIndex = -1;
  target.focus({ preventScroll: true });
}

function renderHeader(page) {
  const loggedOut = session.required && !session.user;
  const navLink = (href, label, active) => h('a', { href, class: 'nav-link', 'aria-current': active ? 'page' : null }, label);
  replace(header, h('div', { class: 'header-inner' },
    h('a', { href: pages.catalog, class: 'brand' },
      h('img', { src: '/assets/favicon.svg', alt: '', width: '24', height: '24' }), 'Berth'),
    !loggedOut && h('nav', { class: 'nav', 'aria-label': 'Main' },
      navLink(pages.catalog, 'Catalog', [catalogPage, repoPage, imagePage].includes(page)),
      navLink(pages.status, 'Status', page === statusPage)),
    session.user && h('div', { class: 'session' },
      h('span', { class: 'user', 'data-test': 'user-name', title: 'Logged in as' },
        h('span', { class: 'visually-hidden' }, 'Logged in as '), session.user),
      h('button', { type: 'button', class: 'button button-small', 'data-test': 'logout', onclick: logOut }, 'Log out'))));
}

function logOut() {
  clearAuthorization();
  session.user = null;
  navigate(pages.login);
}

function showFlash(message) {
  replace(flashSlot, message && h('div', { class: 'flash', role: 'status', 'data-test': 'flash' },
    h('span', {}, message),
    h('button', {
      type: 'button', class: 'button button-small', 'aria-label': 'Dismiss', onclick: () => flashSlot.replaceChildren(),
    }, '×')));
}

let bannerRequest = null;

// Asks for the read-only state (at most one request at a time).
function refreshBanner() {
  if (bannerRequest || document.hidden) return;
  if (session.required && !storedAuthorization()) return;
  bannerRequest = request(api.status, { redirectOn401: false })
    .then(showBanner, () => {})
    .finally(() => { bannerRequest = null; });
}

function showBanner(status) {
  banner.hidden = !status.read_only;
  if (!status.read_only) {
    banner.replaceChildren();
    return;
  }
  const { until, reason } = status.window ?? {};
  const date = until ? new Date(until) : null;
  replace(banner, h('p', { class: 'banner-inner' },
    h('strong', {}, 'The registry is read-only',
      date && [' until ', h('time', { datetime: until, title: absolute(date) }, clock(date))],
      reason && ` (${reason})`, '.'),
    ' Pulls work; pushes and deletes wait.'));
}

// Plain left clicks on links to UI pages become History API navigations;
// anything else (new tab, download, other sites, /api, /assets) is left alone.
function interceptLinks(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download') || link.getAttribute('href').startsWith('#')) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
}

async function checkSession() {
  try {
    const answer = await request(api.session, { redirectOn401: false });
    rememberPublicName(answer);
    Object.assign(session, { known: true, required: answer.user !== null, user: answer.user });
  } catch (error) {
    if (error.status !== 401) return;
    clearAuthorization();
    Object.assign(session, { known: true, required: true, user: null });
  }
}

async function start() {
  onUnauthorized(() => {
    session.user = null;
    session.required = true;
    if (location.pathname !== pages.login) navigate(loginHref(), { replace: true });
  });
  onReadOnly(refreshBanner);
  document.addEventListener('click', interceptLinks);
  window.addEventListener('popstate', () => render({ focus: true }));
  document.addEventListener('visibilitychange', refreshBanner);
  setInterval(refreshBanner, BANNER_POLL_MS);
  await checkSession();
  render();
}

start();
