// millions browser UI: plain JS over the JSON API. The session lives in the HttpOnly `sid`
// cookie; fetch sends Origin on writes, which passes the server's CSRF check.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { me: null, editing: null, ops: [] };

function show(message, ok) {
  const m = $('message');
  m.textContent = message;
  m.className = ok ? 'ok' : '';
  m.hidden = !message;
}

async function api(method, path, body, contentType) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    if (contentType) {
      opts.headers['Content-Type'] = contentType;
      opts.body = body;
    } else {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
  }
  const res = await fetch(path, opts);
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  if (!res.ok) {
    if (res.status === 401) forgetLogin();
    const err = new Error(data && data.error ? data.error.message : 'HTTP ' + res.status);
    err.code = data && data.error ? data.error.code : 'http_' + res.status;
    err.status = res.status;
    throw err;
  }
  return data;
}

function forgetLogin() {
  localStorage.removeItem('millions.loggedIn');
  state.me = null;
}

function setView(name) {
  for (const v of ['auth', 'feed', 'mine', 'people', 'profile']) $('view-' + v).hidden = v !== name;
  $('nav').hidden = !state.me;
  if (name === 'feed') loadFeed();
  if (name === 'mine') loadMine();
  if (name === 'profile' && state.me) {
    $('profile-display').value = state.me.display_name;
    $('profile-bio').value = state.me.bio;
  }
}

function photoCard(photo, editable) {
  const card = document.createElement('div');
  card.className = 'photo';
  card.dataset.photoId = photo.id;
  const latest = photo.versions.length ? photo.versions[photo.versions.length - 1] : null;
  const img = document.createElement('img');
  img.src = latest ? latest.url : photo.url;
  img.alt = photo.caption || 'photo';
  img.loading = 'lazy';
  img.dataset.testid = latest ? 'version-image' : 'photo-image';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const caption = document.createElement('div');
  caption.textContent = photo.caption || '(no caption)';
  const info = document.createElement('small');
  const w = latest ? latest.width : photo.width, h = latest ? latest.height : photo.height;
  info.textContent = `${w}×${h} · ${photo.versions.length} edit(s) · ${new Date(photo.created_at).toLocaleString()}`;
  meta.append(caption, info);
  if (editable) {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.textContent = 'Edit';
    edit.className = 'edit-button';
    edit.addEventListener('click', () => openEditor(photo));
    meta.append(edit);
  }
  card.append(img, meta);
  return card;
}

function render(target, page, editable) {
  const el = $(target);
  el.replaceChildren(...page.items.map((p) => photoCard(p, editable)));
  if (!page.items.length) {
    const empty = document.createElement('p');
    empty.textContent = 'Nothing here yet.';
    el.append(empty);
  }
}

async function loadFeed() {
  try { render('feed', await api('GET', '/api/feed?limit=50'), false); } catch (e) { show(e.message); }
}

async function loadMine() {
  if (!state.me) return;
  try {
    render('mine', await api('GET', `/api/users/${state.me.id}/photos?limit=50`), true);
  } catch (e) { show(e.message); }
}

async function refreshMe() {
  state.me = await api('GET', '/api/me');
  $('whoami').textContent = '@' + state.me.handle;
}

async function logIn(handle, password) {
  await api('POST', '/api/sessions', { handle, password });
  localStorage.setItem('millions.loggedIn', '1');
  await refreshMe();
  show('Welcome, ' + state.me.display_name + '.', true);
  setView('mine');
}

$('signup-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const handle = $('signup-handle').value.trim();
  const password = $('signup-password').value;
  const body = { handle, password };
  if ($('signup-display').value.trim()) body.display_name = $('signup-display').value.trim();
  try {
    await api('POST', '/api/users', body);
    await logIn(handle, password);
  } catch (e) { show(e.message); }
});

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try { await logIn($('login-handle').value.trim(), $('login-password').value); } catch (e) { show(e.message); }
});

$('logout').addEventListener('click', async () => {
  try { await api('DELETE', '/api/sessions/current'); } catch (e) { /* already gone */ }
  forgetLogin();
  show('Logged out.', true);
  setView('auth');
});

for (const b of document.querySelectorAll('nav button[data-view]')) {
  b.addEventListener('click', () => { show(''); setView(b.dataset.view); });
}

$('upload-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = $('upload-file').files[0];
  if (!file) return;
  const caption = encodeURIComponent($('upload-caption').value);
  try {
    await api('POST', '/api/photos?caption=' + caption, file, file.type || 'application/octet-stream');
    $('upload-form').reset();
    show('Uploaded.', true);
    loadMine();
  } catch (e) { show(e.message); }
});

$('profile-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    state.me = await api('PATCH', '/api/me', { display_name: $('profile-display').value, bio: $('profile-bio').value });
    show('Saved.', true);
  } catch (e) { show(e.message); }
});

let person = null;
async function showPerson(handle) {
  person = await api('GET', '/api/users/by-handle/' + encodeURIComponent(handle));
  $('person').hidden = false;
  $('person-name').textContent = `${person.display_name} (@${person.handle})`;
  $('person-stats').textContent = `${person.followers} followers · ${person.following} following · ${person.photos} photos. ${person.bio}`;
  render('person-photos', await api('GET', `/api/users/${person.id}/photos?limit=50`), false);
}

$('lookup-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try { await showPerson($('lookup-handle').value.trim()); show(''); } catch (e) { $('person').hidden = true; show(e.message); }
});

for (const [id, method, verb] of [['follow', 'POST', 'Following'], ['unfollow', 'DELETE', 'Unfollowed']]) {
  $(id).addEventListener('click', async () => {
    if (!person) return;
    try {
      await api(method, `/api/users/${person.id}/follow`);
      show(`${verb} @${person.handle}.`, true);
      await showPerson(person.handle);
    } catch (e) { show(e.message); }
  });
}

function renderOps() {
  $('ops').replaceChildren(...state.ops.map((op) => {
    const li = document.createElement('li');
    li.textContent = JSON.stringify(op);
    return li;
  }));
}

function openEditor(photo) {
  state.editing = photo;
  state.ops = [];
  renderOps();
  $('job-status').textContent = '';
  const latest = photo.versions.length ? photo.versions[photo.versions.length - 1] : null;
  $('edit-preview').src = latest ? latest.url : photo.url;
  $('op-w').value = photo.width;
  $('op-h').value = photo.height;
  $('editor').showModal();
}

const num = (id) => Number($(id).value);
for (const b of document.querySelectorAll('button[data-op]')) {
  b.addEventListener('click', () => {
    const op = b.dataset.op;
    if (op === 'grayscale') state.ops.push({ op });
    if (op === 'rotate') state.ops.push({ op, degrees: Number(b.dataset.degrees) });
    if (op === 'blur' || op === 'sharpen') state.ops.push({ op, sigma: num('op-sigma') });
    if (op === 'resize') state.ops.push({ op, width: num('op-w'), height: num('op-h') });
    if (op === 'crop') state.ops.push({ op, x: num('op-x'), y: num('op-y'), width: num('op-w'), height: num('op-h') });
    renderOps();
  });
}
$('edit-clear').addEventListener('click', () => { state.ops = []; renderOps(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
$('edit-submit').addEventListener('click', async () => {
  if (!state.editing || !state.ops.length) { $('job-status').textContent = 'Add an operation first.'; return; }
  try {
    let job = await api('POST', `/api/photos/${state.editing.id}/edits`, { ops: state.ops });
    $('job-status').textContent = 'Job ' + job.status;
    for (let i = 0; i < 240 && (job.status === 'queued' || job.status === 'running'); i++) {
      await sleep(500);
      job = await api('GET', '/api/jobs/' + job.id);
      $('job-status').textContent = 'Job ' + job.status;
    }
    if (job.status === 'done') {
      const photo = await api('GET', '/api/photos/' + state.editing.id);
      state.editing = photo;
      $('edit-preview').src = job.result_url;
      $('job-status').textContent = 'Job done';
      state.ops = [];
      renderOps();
      loadMine();
    } else if (job.status === 'failed') {
      $('job-status').textContent = 'Job failed: ' + (job.error || 'unknown error');
    }
  } catch (e) { $('job-status').textContent = e.message; }
});

(async function start() {
  if (localStorage.getItem('millions.loggedIn')) {
    try {
      await refreshMe();
      setView('mine');
      return;
    } catch (e) { forgetLogin(); }
  }
  setView('auth');
})();
