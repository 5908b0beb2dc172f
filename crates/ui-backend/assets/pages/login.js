// pages/login.js: /login: checks the user name and password with
// GET /api/v1/session, keeps the Authorization value for the tab and goes
// on to ?next= (a path on this site) or the catalog.

import { ApiError, basicAuthorization, request, storeAuthorization } from '../api.js';
import { h, replace } from '../dom.js';
import { rememberPublicName } from '../pull.js';
import { api, pages } from '../routes.js';

// Only a path on this origin, and never back to the log-in page.
function nextPath(query) {
  const next = query.get('next') ?? '';
  const local = next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\');
  return local && !next.startsWith(pages.login) ? next : pages.catalog;
}

export const loginPage = {
  key: () => 'login',
  mount(context) {
    context.setTitle('Log in');
    if (context.session.known && !context.session.required) {
      context.navigate(nextPath(context.query), { replace: true });
      return null;
    }
    const user = h('input', {
      id: 'login-user', name: 'username', class: 'input', autocomplete: 'username', required: true,
      autocapitalize: 'none', spellcheck: 'false', 'data-test': 'login-user',
    });
    const password = h('input', {
      id: 'login-password', name: 'password', type: 'password', class: 'input', autocomplete: 'current-password',
      required: true, 'data-test': 'login-password',
    });
    const error = h('p', { class: 'form-error', role: 'alert', 'data-test': 'login-error', hidden: true });
    const submit = h('button', { type: 'submit', class: 'button button-primary', 'data-test': 'login-submit' }, 'Log in');
    const form = h('form', { class: 'login-form', 'data-test': 'login-form', 'aria-labelledby': 'login-title' },
      h('h1', { id: 'login-title' }, 'Log in to Berth'),
      h('p', { class: 'muted' }, 'Use your registry user name and password.'),
      h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'User name'), user),
      h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
      error,
      submit);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      submit.disabled = true;
      submit.textContent = 'Logging in…';
      const authorization = basicAuthorization(user.value, password.value);
      try {
        const session = await request(api.session, { authorization, redirectOn401: false, signal: context.signal });
        storeAuthorization(authorization);
        rememberPublicName(session);
        context.loggedIn(session.user);
        context.navigate(nextPath(context.query), { replace: true });
      } catch (failure) {
        if (context.signal.aborted) return;
        error.textContent = loginError(failure);
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = 'Log in';
        password.select();
      }
    });

    replace(context.main, h('div', { class: 'login' }, h('div', { class: 'card login-card' }, form)));
    user.focus();
    return null;
  },
};

function loginError(failure) {
  if (!(failure instanceof ApiError)) return 'Logging in failed.';
  if (failure.status === 429 && failure.retryAfter != null) {
    return `${failure.message} Try again in ${failure.retryAfter} seconds.`;
  }
  return failure.message;
}
