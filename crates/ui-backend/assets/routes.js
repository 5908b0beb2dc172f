// routes.js: the page URLs and /api/v1 paths, built from repository names,
// tags and digests (each path segment encoded, '/' kept between them), and
// read back out of a page URL.

// Encodes one path segment; ':' stays readable (it is legal in a segment)
// so digests look like digests in the address bar.
function encodeSegment(text) {
  return encodeURIComponent(text).replace(/%3A/gi, ':');
}

// "team/app" -> "team/app", each segment encoded on its own.
function encodeName(name) {
  return name.split('/').map(encodeSegment).join('/');
}

function decodeSegments(path) {
  return path.split('/').map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  }).join('/');
}

// Tags may not contain ':', digests always do.
export function isDigest(reference) {
  return reference.includes(':');
}

export const pages = {
  catalog: '/',
  status: '/status',
  login: '/login',
  repo: (name) => `/repo/${encodeName(name)}`,
  image: (name, reference) =>
    `/image/${encodeName(name)}${isDigest(reference) ? '@' : ':'}${encodeSegment(reference)}`,
};

// "/repo/team/app/" -> "team/app".
export function repoNameFromPath(rest) {
  return decodeSegments(rest).replace(/\/+$/, '');
}

// "team/app:v1" or "team/app@sha256:..." -> { name, reference }: a digest
// after the last '@', else a tag after the last ':' behind the last '/'.
// A name without either means its "latest" tag, as for docker pull.
export function imageFromPath(rest) {
  const path = decodeSegments(rest).replace(/\/+$/, '');
  const at = path.lastIndexOf('@');
  if (at > 0) return { name: path.slice(0, at), reference: path.slice(at + 1) };
  const colon = path.lastIndexOf(':');
  if (colon > path.lastIndexOf('/')) return { name: path.slice(0, colon), reference: path.slice(colon + 1) };
  return { name: path, reference: 'latest' };
}

// path + "?a=1&b=2", leaving out parameters that are null or empty.
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value != null && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

const API = '/api/v1';
const repository = (name) => `${API}/repositories/${encodeName(name)}`;

export const api = {
  session: `${API}/session`,
  status: `${API}/status`,
  repositories: `${API}/repositories`,
  tags: (name) => `${repository(name)}/tags`,
  tag: (name, tag) => `${repository(name)}/tags/${encodeSegment(tag)}`,
  tagPreview: (name, tag) => `${repository(name)}/tags/${encodeSegment(tag)}/delete-preview`,
  image: (name, reference) => `${repository(name)}/images/${encodeSegment(reference)}`,
  manifest: (name, digest) => `${repository(name)}/manifests/${encodeSegment(digest)}`,
  manifestPreview: (name, digest) => `${repository(name)}/manifests/${encodeSegment(digest)}/delete-preview`,
};
