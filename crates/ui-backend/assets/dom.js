// dom.js: the h() element builder and the few DOM helpers every module
// shares. Registry data only ever enters the page as text nodes or
// attribute values through here, never as HTML.

// Attributes that must be set as properties to take effect after creation.
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'indeterminate']);

// h('a', { href, class, onclick }, 'text', child, [more]) builds an element.
// Strings become text nodes; null, undefined and false children are skipped.
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    setAttribute(element, key, value);
  }
  return append(element, children);
}

function setAttribute(element, key, value) {
  if (value == null || value === false) return;
  if (key === 'style') throw new Error('h(): use a class, the CSP forbids style attributes');
  if (key.startsWith('on')) {
    if (typeof value !== 'function') throw new Error(`h(): ${key} must be a function`);
    element.addEventListener(key.slice(2), value);
  } else if (key === 'class') {
    element.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
  } else if (PROPERTIES.has(key)) {
    element[key] = value;
  } else {
    element.setAttribute(key, value === true ? '' : String(value));
  }
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// Replaces all children of element.
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

// Says message to screen readers through the page's polite live region.
export function announce(message) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  setTimeout(() => { region.textContent = message; }, 50);
}

// Runs render(), which rebuilds part of container, and then puts focus back
// on the element with the same data-test hook if focus was inside it (or on
// container, which should have tabindex -1, when that is gone or disabled),
// so keyboard users stay where they were when a table or pager is redrawn.
export function keepFocus(container, render) {
  const active = document.activeElement;
  const hook = container.contains(active) ? active.dataset.test : null;
  render();
  if (!hook || container.contains(document.activeElement)) return;
  const again = container.querySelector(`[data-test="${hook}"]:not([disabled]):not([aria-disabled="true"])`);
  (again ?? container).focus({ preventScroll: true });
}
