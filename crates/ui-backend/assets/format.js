// format.js: how sizes, counts, durations, times, digests and platforms
// read in the UI. Pure functions returning strings.

const SIZE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// 1536 -> "1.5 KiB"; below 1 KiB in bytes.
export function bytes(value) {
  if (value == null) return '—';
  if (value < 1024) return `${value} B`;
  let scaled = value / 1024;
  let unit = 0;
  while (Number(scaled.toFixed(1)) >= 1024 && unit < SIZE_UNITS.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(1)} ${SIZE_UNITS[unit]}`;
}

const COUNT = new Intl.NumberFormat('en');

export function count(value) {
  return COUNT.format(value ?? 0);
}

// "1 tag", "3 tags".
export function plural(value, one, many = `${one}s`) {
  return `${count(value)} ${value === 1 ? one : many}`;
}

// Milliseconds as "120 ms", "4.2 s" or "3 min 5 s".
export function duration(ms) {
  if (ms == null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const RELATIVE_STEPS = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['week', 7 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
];

// "3 hours ago", "in 5 minutes", "just now".
export function relative(date, now = Date.now()) {
  const seconds = (date.getTime() - now) / 1000;
  for (const [unit, size] of RELATIVE_STEPS) {
    if (Math.abs(seconds) >= size) return RELATIVE.format(Math.trunc(seconds / size), unit);
  }
  return 'just now';
}

const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const DAY = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

export function absolute(date) {
  return ABSOLUTE.format(date);
}

// "03:01" today, "Dec 2, 03:01" on another day.
export function clock(date, now = new Date()) {
  const time = CLOCK.format(date);
  return date.toDateString() === now.toDateString() ? time : `${DAY.format(date)}, ${time}`;
}

// The first 12 hex digits of "sha256:<hex>".
export function shortDigest(digest) {
  const hex = digest.slice(digest.indexOf(':') + 1);
  return hex.slice(0, 12);
}

// "linux/arm64/v8".
export function platform({ os, architecture, variant }) {
  return [os, architecture, variant].filter(Boolean).join('/');
}

// The OCI index entries buildx adds for provenance are "unknown/unknown".
export function isAttestationPlatform(entry) {
  return entry.os === 'unknown' && entry.architecture === 'unknown';
}

export const KIND_LABELS = {
  signature: { group: 'Signatures', of: 'signature', badge: 'signed' },
  sbom: { group: 'SBOMs', of: 'SBOM', badge: 'SBOM' },
  attestation: { group: 'Attestations', of: 'attestation', badge: 'attested' },
  other: { group: 'Other artifacts', of: 'artifact', badge: 'artifact' },
};

export function kindLabel(kind) {
  return KIND_LABELS[kind] ?? KIND_LABELS.other;
}

// Cosign tags ("sha256-<64 hex>.sig") shortened to "sha256-<12 hex>….sig".
export function shortTag(name) {
  return name.replace(/^(sha256-[0-9a-f]{12})[0-9a-f]{52}(\.\w+)$/, '$1…$2');
}

// "application/vnd.oci.image.layer.v1.tar+gzip" -> "tar+gzip".
export function shortMediaType(mediaType) {
  if (!mediaType) return '—';
  return mediaType
    .replace(/^application\/vnd\.oci\.image\.layer\.v1\./, '')
    .replace(/^application\/vnd\.docker\.image\.rootfs\./, '');
}
