// pages/image.js: one image or index at /image/{name}:{tag} or
// /image/{name}@{digest}: the summary, pull commands, referrers, platform
// tabs for an index (?platform=<child digest>), layers, config and history
// for an image, and deleting the tag or the whole manifest.

import { latestOnly, request } from '../api.js';
import { deleteManifest, deleteTags } from '../delete.js';
import { h, replace } from '../dom.js';
import {
  KIND_LABELS, bytes, kindLabel, platform, plural, shortDigest, shortMediaType, shortTag,
} from '../format.js';
import { api, isDigest, pages } from '../routes.js';
import {
  badge, breadcrumb, commandLine, copyButton, definitions, digest, emptyState, failure, load, loading, tableWrap, time,
} from '../views.js';

const KIND_NAMES = { image: 'Image', index: 'Index (multi-platform)', artifact: 'Artifact' };

export const imagePage = {
  key: ({ name, reference }) => `image:${name}@${reference}`,
  mount(context) {
    const { name, reference } = context.params;
    const title = isDigest(reference) ? `${name}@${shortDigest(reference)}` : `${name}:${reference}`;
    context.setTitle(title);
    const region = h('div', { class: 'image' });
    let tabs = null;
    replace(context.main,
      breadcrumb([
        { label: 'Repositories', href: pages.catalog },
        { label: name, href: pages.repo(name) },
        { label: isDigest(reference) ? shortDigest(reference) : reference },
      ]),
      h('div', { class: 'page-head' }, h('h1', { class: 'name', title: `${name}${isDigest(reference) ? '@' : ':'}${reference}` }, title)),
      region);
    load(region, {
      signal: context.signal,
      fetch: () => request(api.image(name, reference), { signal: context.signal }),
      back: { href: pages.repo(name), label: `Back to ${name}` },
      render: (image) => {
        tabs = renderImage(region, image, context);
      },
    });
    return {
      update(query) {
        tabs?.select(query.get('platform'));
      },
    };
  },
};

// Fills region; answers the platform tabs of an index (or null).
function renderImage(region, image, context) {
  const tabs = image.kind === 'index' ? platformTabs(image, context) : null;
  replace(region,
    summary(image, context),
    pullCommands(image.pull),
    referrersSection(image, 2),
    tabs?.element,
    !tabs && imageDetails(image, 2));
  tabs?.select(context.query.get('platform'));
  return tabs;
}

function summary(image, context) {
  const { repository, reference } = image;
  const onTag = !isDigest(reference);
  const otherTags = (image.tags ?? []).filter((tag) => tag !== reference);
  return h('section', { class: 'card', 'aria-label': 'Summary' },
    definitions([
      ['Repository', h('a', { href: pages.repo(repository) }, repository)],
      // By digest, the reference is the digest shown below.
      ['Tag', onTag && h('span', { class: 'mono' }, reference)],
      ['Digest', h('span', { class: 'with-copy' },
        h('code', { class: 'digest-full', 'data-test': 'image-digest' }, image.digest),
        copyButton(image.digest, 'Copy digest', 'copy-digest'))],
      ['Media type', h('code', {}, image.media_type)],
      ['Kind', KIND_NAMES[image.kind] ?? image.kind],
      ['Size', image.kind === 'index' ? `${bytes(image.size)} (the platforms present)` : bytes(image.size)],
      ['Pushed', image.pushed && time(image.pushed)],
      [onTag ? 'Other tags on this digest' : 'Tags', tagLinks(repository, onTag ? otherTags : image.tags ?? [])],
    ]),
    h('div', { class: 'actions' },
      onTag && h('button', {
        type: 'button', class: 'button button-danger', 'data-test': 'delete-tag',
        onclick: () => deleteTags(repository, [reference], afterDelete(context, repository, `Deleted tag ${reference}.`)),
      }, `Delete tag ${reference}…`),
      h('button', {
        type: 'button', class: 'button button-danger', 'data-test': 'delete-manifest',
        onclick: () => deleteManifest(repository, image.digest,
          afterDelete(context, repository, `Deleted manifest ${shortDigest(image.digest)}.`), manifestLabels(image)),
      }, 'Delete manifest…')));
}

// What the page knows about the digests a manifest preview may list.
function manifestLabels(image) {
  const labels = new Map((image.platforms ?? []).map((entry) => [entry.digest, platform(entry)]));
  for (const group of image.referrers ?? []) {
    for (const manifest of group.manifests) labels.set(manifest.digest, group.artifact_type);
  }
  return labels;
}

// After a delete from this page, the page is gone: go to the repository.
function afterDelete(context, repository, message) {
  return (deleted, dialog) => {
    if (deleted.length === 0) return;
    dialog.close();
    context.navigate(pages.repo(repository), { flash: message });
  };
}

function tagLinks(repository, tags) {
  if (tags.length === 0) return null;
  return h('ul', { class: 'inline-list', 'data-test': 'other-tags' },
    tags.map((tag) => h('li', {}, h('a', { href: pages.image(repository, tag), class: 'mono', title: tag }, shortTag(tag)))));
}

function pullCommands(pull) {
  const commands = [['By tag', pull?.by_tag], ['By digest', pull?.by_digest]].filter(([, command]) => command);
  if (commands.length === 0) return null;
  return h('section', { class: 'section', 'aria-labelledby': 'pull-title' },
    h('h2', { id: 'pull-title' }, 'Pull'),
    h('dl', { class: 'commands' }, commands.map(([label, command]) => h('div', { class: 'command-row' },
      h('dt', {}, label),
      h('dd', {}, commandLine(command, `Copy pull command ${label.toLowerCase()}`))))));
}

// Referrers (OCI 1.1) and cosign tags, grouped by kind.
function referrersSection(image, level) {
  const groups = Object.fromEntries(Object.keys(KIND_LABELS).map((kind) => [kind, []]));
  for (const group of image.referrers ?? []) {
    for (const manifest of group.manifests) {
      groups[kindKey(group.kind)].push(referrerItem(image.repository, group.artifact_type, manifest));
    }
  }
  for (const attachment of image.attachments ?? []) {
    groups[kindKey(attachment.kind)].push(attachmentItem(image.repository, attachment));
  }
  const present = Object.entries(groups).filter(([, items]) => items.length > 0);
  const heading = `h${level}`;
  return h('section', { class: 'section', 'data-test': 'referrers', 'aria-labelledby': `referrers-title-${level}` },
    h(heading, { id: `referrers-title-${level}` }, 'Signatures, SBOMs and attestations'),
    present.length === 0
      ? h('p', { class: 'muted' }, 'Nothing refers to this manifest.')
      : h('div', { class: 'referrer-groups' }, present.map(([kind, items]) => h('div', { class: 'referrer-group' },
        h(`h${level + 1}`, {}, `${KIND_LABELS[kind].group} (${items.length})`),
        h('ul', { class: 'compact-list' }, items)))));
}

function kindKey(kind) {
  return Object.hasOwn(KIND_LABELS, kind) ? kind : 'other';
}

function referrerItem(repository, artifactType, manifest) {
  const created = manifest.annotations?.['org.opencontainers.image.created'];
  return h('li', {},
    h('a', { href: pages.image(repository, manifest.digest), class: 'mono', title: manifest.digest }, shortDigest(manifest.digest)),
    ' · ', bytes(manifest.size),
    created && [' · ', time(created)],
    h('span', { class: 'artifact-type' }, artifactType));
}

function attachmentItem(repository, attachment) {
  return h('li', {},
    h('a', { href: pages.image(repository, attachment.tag), class: 'mono', title: attachment.tag }, shortTag(attachment.tag)),
    ' ', badge(`cosign ${kindLabel(attachment.kind).of} tag`, 'muted'));
}

// The platform tabs of an index; select(digest) opens one (the first when
// digest is not among them) and loads its image into the panel.
function platformTabs(index, context) {
  const entries = index.platforms ?? [];
  if (entries.length === 0) {
    return { element: emptyState('This index lists no platforms'), select: () => {} };
  }
  const nextSignal = latestOnly(context.signal);
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'platform-panel', tabindex: '0', 'data-test': 'platform-panel' });
  const buttons = entries.map((entry, position) => h('button', {
    type: 'button', role: 'tab', id: `platform-tab-${position}`, class: 'tab', 'aria-controls': 'platform-panel',
    'aria-selected': 'false', tabindex: '-1', 'data-test': 'platform-tab', 'data-digest': entry.digest,
  }, platform(entry), entry.missing && h('span', { class: 'tab-note' }, ' (missing)')));
  let selected = -1;

  const select = (wanted, { remember = false } = {}) => {
    const position = Math.max(0, entries.findIndex((entry) => entry.digest === wanted));
    if (position === selected) return;
    selected = position;
    buttons.forEach((button, other) => {
      button.setAttribute('aria-selected', String(other === position));
      button.tabIndex = other === position ? 0 : -1;
    });
    panel.setAttribute('aria-labelledby', buttons[position].id);
    if (remember) context.replaceQuery({ platform: entries[position].digest });
    showPlatform(index.repository, entries[position], panel, nextSignal());
  };

  buttons.forEach((button, position) => {
    button.addEventListener('click', () => select(entries[position].digest, { remember: true }));
  });
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Platforms' }, buttons);
  tablist.addEventListener('keydown', (event) => {
    const target = arrowTarget(event.key, selected, buttons.length);
    if (target === null) return;
    event.preventDefault();
    select(entries[target].digest, { remember: true });
    buttons[target].focus();
  });
  const element = h('section', { class: 'section', 'aria-labelledby': 'platforms-title' },
    h('h2', { id: 'platforms-title' }, `Platforms (${entries.length})`), tablist, panel);
  return { element, select };
}

// Where an arrow, Home or End key moves in a row of count tabs (wrapping).
function arrowTarget(key, current, count) {
  switch (key) {
    case 'ArrowRight': return (current + 1) % count;
    case 'ArrowLeft': return (current - 1 + count) % count;
    case 'Home': return 0;
    case 'End': return count - 1;
    default: return null;
  }
}

async function showPlatform(repository, entry, panel, signal) {
  if (entry.missing) {
    replace(panel, missingPlatform());
    return;
  }
  replace(panel, loading(`Loading ${platform(entry)}…`));
  const retry = () => showPlatform(repository, entry, panel, signal);
  try {
    const child = await request(api.image(repository, entry.digest), { signal });
    if (!signal.aborted) replace(panel, platformDetails(child));
  } catch (error) {
    if (signal.aborted) return;
    replace(panel, error.status === 404 ? missingPlatform() : failure(error, retry));
  }
}

function missingPlatform() {
  return h('div', { class: 'state state-warning', 'data-test': 'platform-missing' },
    h('p', {}, 'This platform’s manifest is missing from the registry.'));
}

function platformDetails(child) {
  return [
    definitions([
      ['Digest', h('span', { class: 'with-copy' },
        h('code', { class: 'digest-full' }, child.digest), copyButton(child.digest, 'Copy platform digest', 'copy-digest'))],
      ['Media type', h('code', {}, child.media_type)],
      ['Size', bytes(child.size)],
      ['Pull', child.pull?.by_digest && commandLine(child.pull.by_digest, 'Copy pull command for this platform')],
    ]),
    imageDetails(child, 3),
    (child.referrers?.length || child.attachments?.length) ? referrersSection(child, 3) : null,
  ];
}

// Layers, config and history of an image; level is the heading level.
function imageDetails(image, level) {
  return [
    layersSection(image, level),
    image.config && configSection(image.config, level),
    image.history?.length > 0 && historySection(image.history, level),
  ];
}

function layersSection(image, level) {
  const layers = image.layers ?? [];
  const title = image.kind === 'artifact' ? 'Blobs' : 'Layers';
  const total = layers.reduce((sum, layer) => sum + layer.size, 0);
  return h('section', { class: 'section' },
    h(`h${level}`, {}, `${title} (${layers.length})`),
    layers.length === 0 ? h('p', { class: 'muted' }, `No ${title.toLowerCase()}.`) : tableWrap(
      h('table', { class: 'table', 'data-test': 'layers-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', class: 'numeric' }, '#'),
          h('th', { scope: 'col' }, 'Digest'),
          h('th', { scope: 'col' }, 'Media type'),
          h('th', { scope: 'col', class: 'numeric' }, 'Size'))),
        h('tbody', {}, layers.map((layer, position) => h('tr', {},
          h('td', { class: 'numeric muted' }, position + 1),
          h('td', {}, digest(layer.digest)),
          h('td', { title: layer.media_type }, h('span', { class: 'mono small' }, shortMediaType(layer.media_type))),
          h('td', { class: 'numeric nowrap' }, bytes(layer.size))))),
        h('tfoot', {}, h('tr', {},
          h('th', { scope: 'row', colspan: '3' }, `Total of ${plural(layers.length, title.toLowerCase().slice(0, -1))}`),
          h('td', { class: 'numeric nowrap' }, bytes(total))))),
      title));
}

function configSection(config, level) {
  const code = (value) => h('code', { class: 'mono' }, value);
  const list = (values) => values?.length
    ? h('ul', { class: 'plain-list' }, values.map((value) => h('li', {}, code(value))))
    : null;
  const labels = Object.entries(config.labels ?? {});
  return h('section', { class: 'section', 'data-test': 'config' },
    h(`h${level}`, {}, 'Config'),
    definitions([
      ['Platform', config.os && platform(config)],
      ['Created', config.created && time(config.created)],
      ['Author', config.author],
      ['User', config.user && code(config.user)],
      ['Working directory', config.working_dir && code(config.working_dir)],
      ['Entrypoint', config.entrypoint?.length ? code(JSON.stringify(config.entrypoint)) : null],
      ['Cmd', config.cmd?.length ? code(JSON.stringify(config.cmd)) : null],
      ['Environment', config.env?.length ? h('pre', { class: 'env' }, config.env.join('\n')) : null],
      ['Exposed ports', list(config.exposed_ports)],
      ['Volumes', list(config.volumes)],
      ['Config blob', config.digest && [digest(config.digest), ' · ', bytes(config.size)]],
    ]),
    labels.length > 0 && [
      h(`h${level + 1}`, {}, `Labels (${labels.length})`),
      tableWrap(h('table', { class: 'table labels', 'data-test': 'labels-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'))),
        h('tbody', {}, labels.map(([key, value]) => h('tr', {},
          h('td', { class: 'mono small' }, key),
          h('td', { class: 'mono small wrap' }, value))))), 'Labels'),
    ]);
}

function historySection(history, level) {
  return h('section', { class: 'section' },
    h(`h${level}`, {}, `History (${history.length} steps, newest first)`),
    tableWrap(h('table', { class: 'table history', 'data-test': 'history-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Created'),
        h('th', { scope: 'col' }, 'Step'),
        h('th', { scope: 'col', class: 'numeric' }, 'Size'))),
      h('tbody', {}, history.map((step) => h('tr', { class: step.empty_layer ? 'row-empty' : null },
        h('td', { class: 'nowrap' }, time(step.created)),
        h('td', {},
          h('code', { class: 'created-by' }, step.created_by ?? ''),
          step.comment && h('div', { class: 'muted small' }, step.comment)),
        h('td', { class: 'numeric nowrap' }, step.empty_layer ? badge('empty', 'muted') : bytes(step.size)))))), 'History'));
}
