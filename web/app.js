// millions browser UI: plain JS over the JSON API (CONTRACT.md section 3), no build step.
// The session lives in the HttpOnly `sid` cookie; fetch sends Origin on writes, which passes the
// server's CSRF check. All user text goes through textContent, never innerHTML.
'use strict';

const $ = (id) => document.getElementById(id);
const LOGGED_IN = 'millions.loggedIn';
const PAGE = 24;
const VIEWS = ['auth', 'feed', 'mine', 'people', 'profile'];

const state = {
  me: null,
  editing: null, // the photo open in the editor
  ops: [],
  person: null, // the user shown in the People view
  users: new Map(), // id -> user, to name photo owners
  pollToken: 0,
};

// ---------------------------------------------------------------- messages

function show(text, ok) {
  $('message-text').textContent = text || '';
  $('message').className = ok ? 'ok' : 'error';
  $('message').hidden = !text;
}
function showError(e) {
  if (e && e.code === 'unauthenticated') return; // handled by sessionEnded()
  show(e && e.code && !e.code.startsWith('http_') ? `${e.message} (${e.code})` : String(e && e.message || e));
}
$('message-close').addEventListener('click', () => show(''));

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, contentType) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = contentType || 'application/json';
    opts.body = contentType ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    let message = err.message || `HTTP ${res.status}`;
    if (res.status === 429 || res.status === 503) {
      const after = res.headers.get('Retry-After');
      if (after) message += ` (retry in ${after} s)`;
    }
    const e = new ApiError(res.status, err.code || `http_${res.status}`, message);
    if (res.status === 401 && state.me) sessionEnded();
    throw e;
  }
  return data;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- session

function rememberLogin() { localStorage.setItem(LOGGED_IN, '1'); }
function forgetLogin() {
  localStorage.removeItem(LOGGED_IN);
  state.me = null;
  state.person = null;
  state.users.clear();
  $('whoami').textContent = '';
}

function sessionEnded() {
  forgetLogin();
  show('Your session has ended. Please log in again.');
  go('auth');
}

function setMe(user) {
  state.me = user;
  state.users.set(user.id, user);
  $('whoami').textContent = '@' + user.handle;
}

async function refreshMe() {
  setMe(await api('GET', '/api/me'));
}

async function logIn(handle, password) {
  await api('POST', '/api/sessions', { handle, password });
  rememberLogin();
  await refreshMe();
  show(`Welcome, ${state.me.display_name || state.me.handle}.`, true);
  go('mine');
}

$('signup-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const handle = $('signup-handle').value.trim();
  const password = $('signup-password').value;
  const body = { handle, password };
  const display = $('signup-display').value.trim();
  if (display) body.display_name = display;
  const button = $('signup-submit');
  button.disabled = true;
  try {
    await api('POST', '/api/users', body);
    await logIn(handle, password);
    $('signup-form').reset();
  } catch (e) { showError(e); } finally { button.disabled = false; }
});

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const button = $('login-submit');
  button.disabled = true;
  try {
    await logIn($('login-handle').value.trim(), $('login-password').value);
    $('login-form').reset();
  } catch (e) { showError(e); } finally { button.disabled = false; }
});

$('logout').addEventListener('click', async () => {
  try { await api('DELETE', '/api/sessions/current'); } catch (e) { /* already gone */ }
  forgetLogin();
  show('Logged out.', true);
  go('auth');
});

// ---------------------------------------------------------------- views and routing

// Routes: #feed, #mine, #people, #user/HANDLE, #profile; #auth when logged out.
function go(hash) {
  if (location.hash === '#' + hash) route();
  else location.hash = hash;
}

function setView(name) {
  for (const v of VIEWS) $('view-' + v).hidden = v !== name;
  $('nav').hidden = !state.me;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.id === 'nav-' + name);
  }
}

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  if (!state.me) {
    setView('auth');
    return;
  }
  if (hash.startsWith('user/')) {
    setView('people');
    const handle = hash.slice(5);
    $('lookup-handle').value = handle;
    showPerson(handle).catch((e) => { $('person').hidden = true; showError(e); });
    return;
  }
  const name = VIEWS.includes(hash) && hash !== 'auth' ? hash : 'mine';
  setView(name);
  if (name === 'feed') loadFeed();
  else if (name === 'mine') loadMine();
  else if (name === 'profile') loadProfile();
  else if (name === 'people' && !state.person) $('lookup-handle').focus();
}

window.addEventListener('hashchange', route);
for (const a of document.querySelectorAll('#nav a, #brand')) {
  a.addEventListener('click', (ev) => {
    ev.preventDefault();
    show('');
    go(a.getAttribute('href').slice(1));
  });
}

// ---------------------------------------------------------------- photos

function newest(photo) {
  return photo.versions && photo.versions.length ? photo.versions[photo.versions.length - 1] : null;
}

// The API names media on the edge's plain origin; a page served over HTTPS takes it from the
// edge's HTTPS origin (data-edge-tls on the loader's tag, src/app/web.cc) when it has one, since
// the browser would block or upgrade a plain load.
const edgeTag = document.querySelector('script[data-edge]');
function mediaUrl(url) {
  const plain = edgeTag && edgeTag.dataset.edge;
  const tls = edgeTag && edgeTag.dataset.edgeTls;
  if (location.protocol === 'https:' && plain && tls && url.startsWith(plain + '/')) {
    return tls + url.slice(plain.length);
  }
  return url;
}

// Media may live on an edge origin; if it fails to load, fall back to the same path here.
function setImage(img, url) {
  img.onerror = null;
  url = mediaUrl(url);
  img.src = url;
  let abs;
  try { abs = new URL(url, location.href); } catch (e) { return; }
  if (abs.origin !== location.origin) {
    img.onerror = () => {
      img.onerror = null;
      img.src = abs.pathname + abs.search;
    };
  }
}

async function userById(id) {
  if (state.users.has(id)) return state.users.get(id);
  const u = await api('GET', '/api/users/' + enc(id));
  state.users.set(id, u);
  return u;
}

function photoCard(photo, opts) {
  const card = document.createElement('article');
  card.className = 'photo';
  card.dataset.photoId = photo.id;
  card.dataset.testid = 'photo-card';
  const latest = newest(photo);
  const img = document.createElement('img');
  setImage(img, latest ? latest.url : photo.url);
  img.alt = photo.caption || 'photo';
  img.dataset.testid = latest ? 'version-image' : 'photo-image';
  const w = latest ? latest.width : photo.width;
  const h = latest ? latest.height : photo.height;
  if (w && h) { img.width = w; img.height = h; }

  const meta = document.createElement('div');
  meta.className = 'meta';
  const caption = document.createElement('p');
  caption.className = 'caption';
  caption.textContent = photo.caption || '(no caption)';
  meta.append(caption);
  if (opts.showOwner) {
    const owner = document.createElement('a');
    owner.className = 'owner';
    owner.textContent = '…';
    owner.href = '#';
    meta.append(owner);
    userById(photo.owner_id).then((u) => {
      owner.textContent = `${u.display_name || u.handle} @${u.handle}`;
      owner.href = '#user/' + enc(u.handle);
    }).catch(() => { owner.textContent = 'user ' + photo.owner_id; });
  }
  const info = document.createElement('small');
  const edits = photo.versions ? photo.versions.length : 0;
  info.textContent = `${w}×${h}` + (edits ? ` · ${edits} edit${edits > 1 ? 's' : ''}` : '') +
    ` · ${new Date(photo.created_at).toLocaleString()}`;
  meta.append(info);
  if (opts.editable) {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.textContent = 'Edit';
    edit.className = 'edit-button secondary';
    edit.dataset.testid = 'edit-button';
    edit.addEventListener('click', () => openEditor(photo));
    meta.append(edit);
  }
  card.append(img, meta);
  return card;
}

// A paginated grid: `load(before)` returns {items, next}.
function makeList(gridId, moreId, emptyText, opts, pathFor) {
  const list = { next: null, seq: 0 };
  list.reload = async () => {
    const seq = ++list.seq;
    const page = await api('GET', pathFor(null));
    if (seq !== list.seq) return; // a newer load won
    const grid = $(gridId);
    grid.replaceChildren(...page.items.map((p) => photoCard(p, opts)));
    if (!page.items.length) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = emptyText;
      grid.append(empty);
    }
    list.next = page.next;
    $(moreId).hidden = !page.next;
  };
  $(moreId).addEventListener('click', async () => {
    if (!list.next) return;
    const seq = list.seq;
    try {
      const page = await api('GET', pathFor(list.next));
      if (seq !== list.seq) return;
      $(gridId).append(...page.items.map((p) => photoCard(p, opts)));
      list.next = page.next;
      $(moreId).hidden = !page.next;
    } catch (e) { showError(e); }
  });
  return list;
}

const withBefore = (path, before) => path + (before ? '&before=' + enc(before) : '');
const feedList = makeList('feed', 'feed-more', 'Nothing here yet: follow someone on the People page.',
  { showOwner: true }, (b) => withBefore(`/api/feed?limit=${PAGE}`, b));
const mineList = makeList('mine', 'mine-more', 'No photos yet: upload one above.',
  { editable: true }, (b) => withBefore(`/api/users/${enc(state.me.id)}/photos?limit=${PAGE}`, b));
const personList = makeList('person-photos', 'person-more', 'No photos yet.',
  {}, (b) => withBefore(`/api/users/${enc(state.person.id)}/photos?limit=${PAGE}`, b));

function loadFeed() { feedList.reload().catch(showError); }
function loadMine() { if (state.me) mineList.reload().catch(showError); }

// ---------------------------------------------------------------- upload

let previewUrl = null;
function clearPreview() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  $('upload-preview').hidden = true;
  $('upload-preview').removeAttribute('src');
}

$('upload-file').addEventListener('change', () => {
  clearPreview();
  const file = $('upload-file').files[0];
  if (!file) return;
  previewUrl = URL.createObjectURL(file);
  $('upload-preview').src = previewUrl;
  $('upload-preview').hidden = false;
});

$('upload-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = $('upload-file').files[0];
  if (!file) { show('Choose a file first.'); return; }
  const button = $('upload-submit');
  button.disabled = true;
  try {
    await api('POST', '/api/photos?caption=' + enc($('upload-caption').value), file,
      file.type || 'application/octet-stream');
    $('upload-form').reset();
    clearPreview();
    show('Uploaded.', true);
    await mineList.reload();
  } catch (e) { showError(e); } finally { button.disabled = false; }
});

// ---------------------------------------------------------------- profile

function renderMe() {
  const me = state.me;
  $('me-name').textContent = `${me.display_name || me.handle} @${me.handle}`;
  $('me-bio').textContent = me.bio || '';
  $('me-stats').textContent = `${me.photos} photos · ${me.followers} followers · ${me.following} following`;
}

async function loadProfile() {
  try {
    await refreshMe();
    renderMe();
    $('profile-display').value = state.me.display_name || '';
    $('profile-bio').value = state.me.bio || '';
  } catch (e) { showError(e); }
}

$('profile-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    setMe(await api('PATCH', '/api/me', { display_name: $('profile-display').value, bio: $('profile-bio').value }));
    renderMe();
    show('Profile saved.', true);
  } catch (e) { showError(e); }
});

// ---------------------------------------------------------------- people

async function showPerson(handle) {
  const person = await api('GET', '/api/users/by-handle/' + enc(handle));
  state.person = person;
  state.users.set(person.id, person);
  $('person').hidden = false;
  $('person-name').textContent = `${person.display_name || person.handle} @${person.handle}`;
  $('person-bio').textContent = person.bio || '';
  $('person-stats').textContent = `${person.photos} photos · ${person.followers} followers · ${person.following} following`;
  const self = state.me && person.id === state.me.id;
  $('follow').hidden = self;
  $('unfollow').hidden = self;
  await personList.reload();
}

$('lookup-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const handle = $('lookup-handle').value.trim().replace(/^@/, '');
  if (!handle) return;
  show('');
  go('user/' + enc(handle));
});

for (const [id, method, verb] of [['follow', 'POST', 'You follow'], ['unfollow', 'DELETE', 'You no longer follow']]) {
  $(id).addEventListener('click', async () => {
    const person = state.person;
    if (!person) return;
    try {
      await api(method, `/api/users/${enc(person.id)}/follow`);
      show(`${verb} @${person.handle}.`, true);
      await showPerson(person.handle);
    } catch (e) { showError(e); }
  });
}

// ---------------------------------------------------------------- editor

function describe(op) {
  switch (op.op) {
    case 'grayscale': return 'grayscale';
    case 'rotate': return `rotate ${op.degrees}°`;
    case 'blur': return `blur σ=${op.sigma}`;
    case 'sharpen': return `sharpen σ=${op.sigma}`;
    case 'resize': return `resize to ${op.width}×${op.height}`;
    case 'crop': return `crop ${op.width}×${op.height} at (${op.x}, ${op.y})`;
    default: return op.op;
  }
}

function renderOps() {
  $('ops').replaceChildren(...state.ops.map((op, i) => {
    const li = document.createElement('li');
    li.dataset.op = op.op;
    const text = document.createElement('span');
    text.textContent = describe(op);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'link';
    remove.textContent = 'remove';
    remove.addEventListener('click', () => { state.ops.splice(i, 1); renderOps(); });
    li.append(text, ' ', remove);
    return li;
  }));
  $('edit-submit').disabled = !state.ops.length;
}

function setJobStatus(status, text) {
  $('job-status').dataset.status = status;
  $('job-status').textContent = text;
}

function showResult(version, label) {
  $('edit-result-figure').hidden = !version;
  if (!version) {
    $('edit-result').removeAttribute('src');
    return;
  }
  setImage($('edit-result'), version.url);
  $('edit-result-caption').textContent = `${label}: ${version.width}×${version.height}`;
}

function openEditor(photo) {
  state.pollToken++; // stop showing an earlier job's progress
  state.editing = photo;
  state.ops = [];
  renderOps();
  setJobStatus('', '');
  // Every edit starts from the original; the newest version is shown next to it.
  setImage($('edit-preview'), photo.url);
  $('edit-preview-caption').textContent = `Original: ${photo.width}×${photo.height}`;
  showResult(newest(photo), 'Newest version');
  $('op-w').value = photo.width;
  $('op-h').value = photo.height;
  $('editor').showModal();
}

const num = (id) => Number($(id).value);
for (const b of document.querySelectorAll('button[data-op]')) {
  b.addEventListener('click', () => {
    const op = b.dataset.op;
    if (op === 'grayscale') state.ops.push({ op });
    else if (op === 'rotate') state.ops.push({ op, degrees: Number(b.dataset.degrees) });
    else if (op === 'blur' || op === 'sharpen') state.ops.push({ op, sigma: num('op-sigma') });
    else if (op === 'resize') state.ops.push({ op, width: num('op-w'), height: num('op-h') });
    else if (op === 'crop') {
      state.ops.push({ op, x: num('op-x'), y: num('op-y'), width: num('op-w'), height: num('op-h') });
    }
    renderOps();
  });
}
$('edit-clear').addEventListener('click', () => { state.ops = []; renderOps(); });
$('editor').addEventListener('close', () => { state.pollToken++; if (state.me) loadMine(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

$('edit-submit').addEventListener('click', async () => {
  const photo = state.editing;
  if (!photo || !state.ops.length) { setJobStatus('', 'Add an operation first.'); return; }
  const token = ++state.pollToken;
  const button = $('edit-submit');
  button.disabled = true;
  try {
    let job = await api('POST', `/api/photos/${enc(photo.id)}/edits`, { ops: state.ops });
    setJobStatus(job.status, `Job ${job.status}`);
    const deadline = Date.now() + 5 * 60 * 1000;
    while ((job.status === 'queued' || job.status === 'running') && Date.now() < deadline) {
      // A long poll: the server answers when the job finishes (or after 20 s), so a browser
      // waiting on a job costs one request per job, not two a second.
      const asked = Date.now();
      job = await api('GET', '/api/jobs/' + enc(job.id) + '?wait_ms=20000');
      if (token !== state.pollToken) return;
      if (Date.now() - asked < 200 && (job.status === 'queued' || job.status === 'running')) {
        await sleep(500);  // answered at once without finishing (a busy server): no hot loop
        if (token !== state.pollToken) return;
      }
      if (token !== state.pollToken) return;
      setJobStatus(job.status, `Job ${job.status}`);
    }
    if (job.status === 'done') {
      const fresh = await api('GET', '/api/photos/' + enc(photo.id));
      if (token !== state.pollToken) return;
      state.editing = fresh;
      const version = (fresh.versions || []).find((v) => v.job_id === job.id) || newest(fresh);
      showResult(version || (job.result_url ? { url: job.result_url, width: '?', height: '?' } : null), 'Edited');
      setJobStatus('done', 'Job done');
      state.ops = [];
      renderOps();
      loadMine();
    } else if (job.status === 'failed') {
      setJobStatus('failed', 'Job failed: ' + (job.error || 'unknown error'));
    } else {
      setJobStatus(job.status, `Job still ${job.status}; check back later.`);
    }
  } catch (e) {
    if (token === state.pollToken) setJobStatus('error', e.code ? `${e.message} (${e.code})` : e.message);
  } finally {
    button.disabled = !state.ops.length;
  }
});

// ---------------------------------------------------------------- start

// Only ask /api/me when this browser logged in before: a 401 would show up as a console error.
(async function start() {
  if (localStorage.getItem(LOGGED_IN)) {
    try {
      await refreshMe();
    } catch (e) {
      forgetLogin();
      if (e.status !== 401) showError(e);
    }
  }
  if (!state.me && location.hash && location.hash !== '#auth') history.replaceState(null, '', '#auth');
  route();
})();
