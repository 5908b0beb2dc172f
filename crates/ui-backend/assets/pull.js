// pull.js: pull commands ("docker pull registry.example.com/team/app:v1"),
// with the registry's public name that GET /api/v1/session answers,
// remembered for the tab.

import { isDigest } from './routes.js';

const STORAGE_KEY = 'berth.public-name';

// Keeps the public name from a session answer.
export function rememberPublicName(answer) {
  if (answer?.public_name) sessionStorage.setItem(STORAGE_KEY, answer.public_name);
}

// "registry.example.com", or null before the session was checked.
export function knownPublicName() {
  return sessionStorage.getItem(STORAGE_KEY);
}

// The pull command for name:tag or name@digest, or null when the public
// name is not known.
export function pullCommand(name, reference) {
  const host = knownPublicName();
  if (!host) return null;
  return `docker pull ${host}/${name}${isDigest(reference) ? '@' : ':'}${reference}`;
}
