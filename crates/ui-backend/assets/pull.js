// pull.js: pull commands. The API only spells them out on an image
// ("docker pull registry.example.com/team/app:v1"); the part before the
// repository name is remembered for the tab so tag lists and the empty
// catalog can show commands too.

import { request } from './api.js';
import { api, isDigest } from './routes.js';

const STORAGE_KEY = 'berth.pull-prefix';

// "docker pull registry.example.com", or null before any image was seen.
export function knownPullPrefix() {
  return sessionStorage.getItem(STORAGE_KEY);
}

// The registry's public name from the remembered prefix ("registry.example.com").
export function knownPublicName() {
  const prefix = knownPullPrefix();
  return prefix ? prefix.slice(prefix.lastIndexOf(' ') + 1) : null;
}

// Learns the prefix from an image answer of the API.
export function learnFromImage(image) {
  const command = image.pull?.by_digest;
  const suffix = `/${image.repository}@${image.digest}`;
  if (command?.endsWith(suffix)) {
    sessionStorage.setItem(STORAGE_KEY, command.slice(0, -suffix.length));
  }
}

export function pullCommand(prefix, name, reference) {
  return `${prefix}/${name}${isDigest(reference) ? '@' : ':'}${reference}`;
}

// The prefix, asking the API for the image behind tag when it is not known
// yet. Answers null when that fails: the caller then has no commands.
export async function pullPrefixFor(name, tag, signal) {
  const known = knownPullPrefix();
  if (known) return known;
  try {
    learnFromImage(await request(api.image(name, tag), { signal }));
  } catch {
    return null;
  }
  return knownPullPrefix();
}
