// Callproof agent page: a live list of calls, each call's steps and result, and the
// verification token checked in this browser. Plain ES module, no dependencies, no build
// step. The agent key and the tokens live in memory only (never in web storage, cookies or
// a URL of this page), and every piece of DOM is built with text nodes, never parsed HTML.

const cfg = readConfig();

// ---------------------------------------------------------------------------------------
// Words. The server sends stable ids; the agent reads plain words.

const LEVEL_WORDS = {
  none: 'no verification',
  reasonable: 'reasonable degree',
  'reasonably-high': 'reasonably high degree',
};

const REQUEST_WORDS = {
  know_categories: 'Know: categories of information',
  know_specific: 'Know: specific pieces of information',
  delete: 'Delete information',
  correct: 'Correct information',
  opt_out: 'Opt out of sale or sharing',
  limit: 'Limit use of sensitive information',
  account_service: 'Account service',
};

const REASON_WORDS = {
  mismatch: 'An answer did not match the records on file.',
  no_input: 'The caller did not answer enough questions.',
  invalid_input: 'The caller’s answers were not in the expected format.',
  declaration_refused: 'The caller did not affirm the declaration.',
  locked_out: 'Too many failed attempts: verification is locked for this caller for now.',
  not_required: 'This request does not need identity verification.',
  invalid_policy: 'The verification policy for this request cannot verify anyone (a configuration problem).',
  hangup: 'The caller hung up before verification finished.',
  technical_difficulty: 'A technical problem stopped verification, so nobody was verified.',
  no_start: 'The call never started.',
  verified: 'The caller was verified.',
};

const STEP_WORDS = {
  welcome: 'Welcome',
  language_menu: 'Language chosen',
  request_menu: 'Request chosen',
  correct_menu: 'Correction chosen',
  agent_menu: 'Agent menu',
  account: 'Account number',
  risk: 'Risk check',
  dob: 'Date of birth',
  zip: 'ZIP code',
  ssn_last4: 'Last four of SSN',
  pin: 'PIN',
  last_payment: 'Last payment amount',
  otp: 'One-time passcode',
  totp: 'Authenticator code',
  declaration: 'Declaration',
  offer_opt_out: 'Opt-out offered',
  opt_out_confirmed: 'Opt-out confirmed',
};

const AMR_WORDS = {
  kba: 'knowledge questions',
  otp: 'one-time passcode',
  sms: 'code by text message',
  tel: 'code by phone call',
  pin: 'PIN',
  mfa: 'multiple factors',
  rba: 'risk-based',
  user: 'user presence',
  swk: 'software key',
  hwk: 'hardware key',
};

const RESULT_ICON = { passed: '✓', failed: '✗', skipped: '–' };

function levelWords(level) {
  return LEVEL_WORDS[level] || (level ? `level ${level}` : 'unknown level');
}
function requestWords(r) {
  return REQUEST_WORDS[r] || (r ? r.replaceAll('_', ' ') : 'not chosen yet');
}
function reasonWords(r) {
  return REASON_WORDS[r] || (r ? `Not verified (reason: ${r.replaceAll('_', ' ')}).` : 'Not verified (no reason given).');
}
function stepWords(s) {
  const id = String(s || '');
  return STEP_WORDS[id] || STEP_WORDS[id.replace(/^ask_/, '')] || id.replace(/^ask_/, '').replaceAll('_', ' ') || 'step';
}
function amrWords(list) {
  return list.map((m) => (AMR_WORDS[m] ? `${AMR_WORDS[m]} (${m})` : m)).join(', ');
}

// ---------------------------------------------------------------------------------------
// State. Everything lives here, in memory, and goes away with the tab.

const state = {
  key: '', // the agent key: memory only
  keyOrigin: '', // embed mode: the parent origin that sent the key
  signedIn: false,
  calls: new Map(), // call id -> call
  selected: '',
  last: null, // [ms, seq] of the newest event seen on any call: reconnects resume after it
  lastId: '',
  ws: null,
  attempt: 0, // reconnect attempts since the last open connection
  timer: 0,
  busy: false,
};

function readConfig() {
  const d = document.body.dataset;
  return {
    mode: d.mode === 'call' ? 'call' : 'all',
    call: d.call || '',
    issuer: d.issuer || 'callproof',
    audience: d.audience || 'callproof-agent',
    parents: (d.parentOrigins || '').split(/\s+/).filter(Boolean),
  };
}

const $ = (id) => document.getElementById(id);

function el(tag, attrs, children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of [].concat(children ?? [])) {
    if (c === undefined || c === null || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Sign-in: a password field, or (embedded) postMessage from an allowed parent origin.

function start() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('key').value, '');
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('redeem').addEventListener('click', () => redeem(state.calls.get(state.selected)));
  $('copy').addEventListener('click', () => copyToken(state.calls.get(state.selected)));
  $('panel').addEventListener('keydown', onPanelKey);
  window.addEventListener('online', () => {
    if (state.signedIn && !state.ws) connect();
  });
  setInterval(tick, 1000);

  if (cfg.mode === 'call') {
    document.body.classList.add('embed');
    $('calls-section').hidden = true;
    $('embed-title').hidden = false;
    if (window.parent !== window && cfg.parents.length > 0) {
      listenToParent();
      show('waiting');
      return;
    }
  }
  show('signin');
  $('key').focus();
}

function show(which) {
  $('signin').hidden = which !== 'signin';
  $('waiting').hidden = which !== 'waiting';
  $('workspace').hidden = which !== 'workspace';
  $('signout').hidden = which !== 'workspace' || state.keyOrigin !== '';
}

// listenToParent accepts the agent key from the framing CRM: only a message from the parent
// window itself, from an origin on the server's frame-ancestors list, of the documented
// shape. It tells each allowed origin that it is ready; a parent of another origin never
// receives the message (postMessage drops it).
function listenToParent() {
  window.addEventListener('message', (e) => {
    if (e.source !== window.parent || !cfg.parents.includes(e.origin)) return;
    const d = e.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'callproof:agent-key' && typeof d.key === 'string') {
      if (state.signedIn && d.key === state.key) return;
      if (state.signedIn) signOut('');
      state.keyOrigin = e.origin;
      signIn(d.key, e.origin);
    } else if (d.type === 'callproof:sign-out' && e.origin === state.keyOrigin) {
      signOut('');
    }
  });
  for (const origin of cfg.parents) {
    window.parent.postMessage({ type: 'callproof:ready', call: cfg.call }, origin);
  }
}

function toParent(msg) {
  if (state.keyOrigin && window.parent !== window) {
    window.parent.postMessage(msg, state.keyOrigin);
  }
}

async function signIn(raw, origin) {
  const key = String(raw || '').trim();
  const err = $('signin-error');
  if (!key) {
    showSignInError('Enter your agent key.');
    return;
  }
  if (state.busy) return;
  state.busy = true;
  $('signin-submit').disabled = true;
  setConn('connecting', 'Checking the agent key…');
  const ok = await probeKey(key);
  state.busy = false;
  $('signin-submit').disabled = false;
  if (ok === false) {
    setConn('idle', 'Signed out');
    if (origin) {
      toParent({ type: 'callproof:error', call: cfg.call, reason: 'agent key not accepted' });
      state.keyOrigin = '';
      show('signin');
      showSignInError('The agent key your CRM sent was not accepted. Enter a key to sign in.');
      $('key').focus();
      return;
    }
    showSignInError('That agent key was not accepted.');
    $('key').select();
    return;
  }
  // ok === null: the server did not answer; the WebSocket keeps retrying.
  err.hidden = true;
  err.textContent = '';
  $('key').removeAttribute('aria-invalid');
  $('key').value = ''; // do not leave the key in the DOM
  state.key = key;
  state.signedIn = true;
  state.keyOrigin = origin;
  show('workspace');
  renderList();
  renderPanel();
  connect();
  if (!origin) $('main').focus(); // a CRM's own focus is left alone
}

function showSignInError(text) {
  const err = $('signin-error');
  err.textContent = text;
  err.hidden = false;
  $('key').setAttribute('aria-invalid', 'true');
}

// probeKey asks GET /v1/agent with the key as a Bearer header and no upgrade: the server
// checks the key before the WebSocket handshake, so 401 means a wrong key and anything else
// (400: not a WebSocket request) a good one. It returns true, false, or null when the server
// cannot be reached.
async function probeKey(key) {
  try {
    const r = await fetch('/v1/agent', {
      headers: { Authorization: `Bearer ${key}` },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
    return r.status !== 401 && r.status !== 403;
  } catch {
    return null;
  }
}

function signOut(message) {
  const wasEmbedded = state.keyOrigin !== '';
  state.signedIn = false;
  state.key = '';
  clearTimeout(state.timer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000, 'signed out');
  toParent({ type: 'callproof:signed-out', call: cfg.call });
  state.keyOrigin = '';
  state.calls.clear();
  state.selected = '';
  state.last = null;
  state.lastId = '';
  state.attempt = 0;
  setService(null);
  $('calls').replaceChildren();
  renderList();
  renderPanel();
  setConn('idle', 'Signed out');
  if (wasEmbedded && cfg.parents.length > 0 && window.parent !== window) {
    show('waiting');
    for (const origin of cfg.parents) {
      window.parent.postMessage({ type: 'callproof:ready', call: cfg.call }, origin);
    }
  } else {
    show('signin');
    if (message) showSignInError(message);
    $('key').focus();
  }
}

// ---------------------------------------------------------------------------------------
// The agent WebSocket: same origin, access_token in the query (browsers cannot set headers
// on a WebSocket), subscribe all or one call, resume after the last event id on reconnect.

function connect() {
  clearTimeout(state.timer);
  if (!state.signedIn) return;
  const url = new URL('/v1/agent', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  url.searchParams.set('access_token', state.key);
  setConn('connecting', state.attempt > 0 ? `Reconnecting (attempt ${state.attempt + 1})…` : 'Connecting…');
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  let opened = false;
  let openedAt = 0;
  let healthy = false; // the back-off resets only once a connection proved useful
  ws.onopen = () => {
    if (state.ws !== ws) return;
    setService(null); // a node that is degraded says so first
    opened = true;
    openedAt = Date.now();
    setConn('open', 'Live');
    const sub = { type: 'subscribe' };
    if (cfg.mode === 'call') sub.call = cfg.call;
    else sub.all = true;
    if (state.lastId) sub.after = state.lastId;
    ws.send(JSON.stringify(sub));
  };
  ws.onmessage = (e) => {
    if (state.ws !== ws || typeof e.data !== 'string') return;
    if (!healthy) {
      healthy = true;
      state.attempt = 0;
    }
    let m;
    try {
      m = JSON.parse(e.data);
    } catch {
      return;
    }
    onMessage(m);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return; // replaced or signed out
    state.ws = null;
    if (!state.signedIn) return;
    if (opened) {
      if (Date.now() - openedAt >= 5000) state.attempt = 0;
      scheduleReconnect();
      return;
    }
    // The handshake failed: a revoked key, or the server is down.
    setConn('reconnecting', 'Connection failed. Checking…');
    probeKey(state.key).then((ok) => {
      if (!state.signedIn || state.ws) return;
      if (ok === false) signOut('The agent key is no longer accepted. Sign in again.');
      else scheduleReconnect();
    });
  };
}

// scheduleReconnect waits 0.5 s, 1 s, 2 s ... up to 30 s (±20 % jitter) between attempts;
// a connection that delivered a message or stayed open 5 s starts the series again.
function scheduleReconnect() {
  clearTimeout(state.timer);
  const base = Math.min(30000, 500 * 2 ** Math.min(state.attempt, 6));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  state.attempt++;
  setConn('reconnecting', `Connection lost. Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
  state.timer = setTimeout(connect, delay);
}

// setService shows the node's own status notice (type status) while it is degraded: it
// cannot verify callers, and says why.
function setService(m) {
  const p = $('service');
  if (!m || m.state !== 'degraded') {
    if (!p.hidden && m) announce('Verification is available again.');
    p.hidden = true;
    p.textContent = '';
    return;
  }
  const words = {
    state_store_unavailable: 'Verification is unavailable: this server cannot reach its state store. Callers hear a technical-difficulty message and nobody is verified; call updates may be missing.',
    state_store_restoring: 'Verification is paused for a few seconds: the state store restarted and is being restored.',
  };
  p.textContent = words[m.reason] || String(m.detail || 'Verification is unavailable on this server.').slice(0, 200);
  p.hidden = false;
}

function setConn(s, text) {
  document.body.dataset.ws = s;
  $('conn').dataset.state = s;
  $('conn-text').textContent = text;
}

// parseId reads "<unix ms>-<seq>".
function parseId(s) {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(typeof s === 'string' ? s : '');
  return m ? [BigInt(m[1]), BigInt(m[2])] : null;
}
function cmpId(a, b) {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

function onMessage(m) {
  if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
  if (m.type === 'error') {
    setConn('open', `Live · the server said: ${String(m.reason || 'error').slice(0, 120)}`);
    return;
  }
  if (m.type === 'status') {
    setService(m);
    return;
  }
  if (typeof m.call !== 'string' || m.call === '') return;
  if (cfg.mode === 'call' && m.call !== cfg.call) return;
  // Each call's messages arrive in event id order, exactly once; a message that is not newer
  // than the last one seen for its call is a duplicate (belt and braces across reconnects).
  // The newest id over all calls is where a reconnect resumes ("after").
  let id = null;
  if (m.id !== undefined) {
    id = parseId(m.id);
    if (!id) return;
    const known = state.calls.get(m.call);
    if (known?.last && cmpId(id, known.last) <= 0) return;
    if (!state.last || cmpId(id, state.last) > 0) {
      state.last = id;
      state.lastId = m.id;
    }
  }
  const c = ensureCall(m.call);
  if (id) c.last = id;
  const fresh = isFresh(m);
  switch (m.type) {
    case 'call':
      for (const f of ['caller', 'transport', 'request', 'lang']) {
        if (typeof m[f] === 'string' && m[f]) c[f] = m[f];
      }
      if (m.state === 'started') {
        c.state = 'started';
        c.startedAt = m.at || c.startedAt;
      } else if (m.state === 'ended') {
        c.state = 'ended';
        c.endedAt = m.at || '';
        c.endReason = typeof m.reason === 'string' ? m.reason : '';
      }
      break;
    case 'step':
      c.steps.push({ step: String(m.step || ''), result: String(m.result || ''), at: m.at || '' });
      break;
    case 'verified':
      c.outcome = 'verified';
      c.level = String(m.level || '');
      if (typeof m.request === 'string' && m.request) c.request = m.request;
      c.amr = Array.isArray(m.amr) ? m.amr.map(String) : [];
      c.note = typeof m.reason === 'string' ? m.reason : '';
      setToken(c, typeof m.token === 'string' ? m.token : '', fresh);
      if (!c.token) c.check = { sig: 'missing', problems: ['The server sent no token for this verification.'], claims: null, kid: '' };
      if (fresh && !c.token) announce(`Warning: ${callName(c).toLowerCase()} was reported verified, but no token was received`);
      else if (fresh) announce(`${callName(c)} verified, ${levelWords(c.level)}`);
      toParent({ type: 'callproof:result', call: c.id, outcome: 'verified', level: c.level, request: c.request, signature: 'pending' });
      break;
    case 'not_verified':
      c.outcome = 'not_verified';
      c.reason = String(m.reason || '');
      if (typeof m.request === 'string' && m.request) c.request = m.request;
      setToken(c, '', false);
      if (fresh) announce(`${callName(c)} not verified: ${lowerFirst(reasonWords(c.reason))}`);
      toParent({ type: 'callproof:result', call: c.id, outcome: 'not_verified', reason: c.reason, request: c.request });
      break;
    default:
      return;
  }
  update(c);
}

// isFresh tells live news from history replayed on first sign-in: only the former is
// announced to screen readers.
function isFresh(m) {
  const at = Date.parse(m.at || '');
  return Number.isNaN(at) || Date.now() - at < 120000;
}

function ensureCall(id) {
  let c = state.calls.get(id);
  if (c) return c;
  c = {
    id,
    caller: '',
    transport: '',
    request: '',
    lang: '',
    state: '',
    startedAt: '',
    endedAt: '',
    endReason: '',
    steps: [],
    outcome: '',
    level: '',
    amr: [],
    note: '',
    reason: '',
    token: '',
    check: null, // result of checkToken
    action: null, // {kind, text}: the last redeem or copy outcome
    expiredShown: false,
    last: null, // [ms, seq] of this call's newest event
    item: null, // the list button
  };
  state.calls.set(id, c);
  if (cfg.mode === 'all') {
    const btn = el('button', { type: 'button', class: 'call-btn', 'data-call': id });
    btn.addEventListener('click', () => openCall(id, true));
    btn.addEventListener('keydown', onListKey);
    c.item = btn;
    $('calls').prepend(el('li', { class: 'call-item' }, btn)); // newest first
  }
  if (!state.selected && (cfg.mode === 'all' || id === cfg.call)) state.selected = id;
  return c;
}

function callName(c) {
  return `Call ${c.caller || c.id}`;
}
function lowerFirst(s) {
  return s ? s[0].toLowerCase() + s.slice(1).replace(/\.$/, '') : s;
}

function update(c) {
  renderItem(c);
  renderList();
  if (c.id === state.selected) renderPanel();
}

// ---------------------------------------------------------------------------------------
// Tokens: decode, check the Ed25519 signature with WebCrypto against the server's JWKS, and
// check exp, nbf, iss, aud, call and acr. Nothing here trusts the token before the
// signature verifies; its claims are shown only then.

function setToken(c, token, fresh) {
  if (token && token === c.token) return;
  c.token = token;
  c.check = token ? { sig: 'pending', problems: [], claims: null, kid: '' } : null;
  c.action = null;
  if (!token) return;
  checkToken(token, c.id, c.level).then((check) => {
    if (c.token !== token) return; // replaced meanwhile
    c.check = check;
    const ok = check.sig === 'ok' && problemsOf(c).length === 0;
    if (fresh && !ok) announce(`Warning: the token for ${callName(c).toLowerCase()} failed its checks`);
    toParent({
      type: 'callproof:result', call: c.id, outcome: 'verified', level: c.level, request: c.request,
      signature: check.sig === 'ok' ? 'checked' : 'failed', valid: ok,
    });
    update(c);
  });
}

const jwks = { keys: new Map(), fetchedAt: 0, pending: null };

async function loadJWKS(force) {
  if (jwks.pending) return jwks.pending;
  if (jwks.fetchedAt && (!force || Date.now() - jwks.fetchedAt < 10000)) return undefined;
  jwks.pending = (async () => {
    try {
      const r = await fetch('/.well-known/jwks.json', { cache: 'no-cache', credentials: 'omit' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const set = await r.json();
      const keys = new Map();
      for (const k of Array.isArray(set?.keys) ? set.keys : []) {
        if (k && typeof k.kid === 'string') keys.set(k.kid, k);
      }
      jwks.keys = keys;
      jwks.fetchedAt = Date.now();
    } finally {
      jwks.pending = null;
    }
  })();
  return jwks.pending;
}

// findKey looks kid up in the JWKS, fetching it again (at most every 10 s) when the kid is
// unknown, so a key rotation is picked up.
async function findKey(kid) {
  await loadJWKS(false);
  if (!jwks.keys.has(kid)) await loadJWKS(true);
  return jwks.keys.get(kid);
}

function b64urlBytes(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  let b = s.replaceAll('-', '+').replaceAll('_', '/');
  while (b.length % 4) b += '=';
  const bin = atob(b);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function b64urlJSON(s) {
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b64urlBytes(s)));
}
function quote(v) {
  return `“${String(v ?? '').slice(0, 60)}”`;
}

async function checkToken(raw, callId, level) {
  const r = { sig: 'pending', problems: [], claims: null, kid: '' };
  const fail = (sig, text) => {
    r.sig = sig;
    r.problems.push(text);
    return r;
  };
  if (raw.length > 8192) return fail('malformed', 'The token is too large to be a Callproof token.');
  const parts = raw.split('.');
  if (parts.length !== 3) return fail('malformed', 'The token is not a signed JWT (it needs three dot-separated parts).');
  let header;
  let claims;
  try {
    header = b64urlJSON(parts[0]);
    claims = b64urlJSON(parts[1]);
  } catch {
    return fail('malformed', 'The token cannot be decoded.');
  }
  if (!header || typeof header !== 'object' || !claims || typeof claims !== 'object' || Array.isArray(claims)) {
    return fail('malformed', 'The token cannot be decoded.');
  }
  r.kid = typeof header.kid === 'string' ? header.kid : '';
  if (header.alg !== 'EdDSA' && header.alg !== 'Ed25519') {
    fail('alg', `The token uses the algorithm ${quote(header.alg)}, not EdDSA (Ed25519).`);
  } else if (header.crit !== undefined) {
    fail('malformed', 'The token has critical header parameters this page does not understand.');
  } else if (!r.kid) {
    fail('unknown-key', 'The token does not name its signing key (no kid).');
  } else if (!globalThis.crypto?.subtle) {
    fail('unsupported', 'This browser cannot check signatures on this page: it must be served over HTTPS.');
  } else {
    let jwk;
    let fetched = true;
    try {
      jwk = await findKey(r.kid);
    } catch {
      fetched = false;
      fail('jwks', 'The server’s public keys (/.well-known/jwks.json) could not be fetched, so the signature is not checked.');
    }
    if (fetched && !jwk) {
      fail('unknown-key', 'The token was signed with a key this server does not publish (unknown kid): it may be forged or come from another server.');
    } else if (fetched && (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')) {
      fail('unknown-key', 'The server’s key for this token is not an Ed25519 key.');
    } else if (fetched) {
      try {
        const key = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
        const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, b64urlBytes(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
        if (ok) r.sig = 'ok';
        else fail('bad', 'The signature does not match: the token was altered or was not signed by this server.');
      } catch (e) {
        if (e?.name === 'NotSupportedError') fail('unsupported', 'This browser cannot check Ed25519 signatures (WebCrypto).');
        else fail('bad', 'The signature could not be checked: the token or the key is malformed.');
      }
    }
  }
  r.claims = claims;
  // exp is checked live (problemsOf), since a token expires while it is on screen.
  if (typeof claims.exp !== 'number') r.problems.push('The token has no expiry time (exp).');
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > Date.now() + 60000) r.problems.push('The token is not valid yet (nbf is in the future).');
  if (claims.iss !== cfg.issuer) r.problems.push(`The token was issued by ${quote(claims.iss)}, not ${quote(cfg.issuer)}.`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(cfg.audience)) r.problems.push(`The token is meant for ${quote(aud.join(', '))}, not ${quote(cfg.audience)}.`);
  if (claims.call !== callId) r.problems.push('The token is for a different call.');
  if (level && claims.acr !== `urn:callproof:ccpa:${level}`) r.problems.push('The token’s level (acr) differs from the level reported for this call.');
  return r;
}

function expiresAt(c) {
  const exp = c.check?.claims?.exp;
  return typeof exp === 'number' ? exp * 1000 : NaN;
}

function problemsOf(c) {
  if (!c.check) return [];
  const out = c.check.problems.slice();
  const exp = expiresAt(c);
  if (!Number.isNaN(exp) && exp <= Date.now()) out.push(`The token expired at ${clock(exp)}: ask the caller to verify again before acting on it.`);
  return out;
}

// ---------------------------------------------------------------------------------------
// Redeem and copy.

async function redeem(c) {
  if (!c || !c.token) return;
  const token = c.token;
  setAction(c, 'busy', 'Redeeming…');
  $('redeem').disabled = true;
  let r;
  let body = null;
  try {
    r = await fetch('/v1/tokens/redeem', {
      method: 'POST',
      headers: { Authorization: `Bearer ${state.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
    body = await r.json().catch(() => null);
  } catch {
    r = null;
  }
  $('redeem').disabled = false;
  if (c.token !== token) return;
  if (!r) {
    setAction(c, 'error', 'Redeem failed: the server could not be reached. Try again.');
  } else if (r.status === 200) {
    const who = body && typeof body.sub === 'string' ? ` for customer ${body.sub}` : '';
    setAction(c, 'ok', `Redeemed${who}. This token cannot be redeemed again.`);
  } else if (r.status === 409) {
    setAction(c, 'warn', 'Already redeemed: this token was used before. Do not act on it a second time.');
  } else if (r.status === 401 || r.status === 403) {
    setAction(c, 'error', `Redeem refused (HTTP ${r.status}): the server did not accept the agent key.`);
  } else if (r.status === 404 || r.status === 405) {
    setAction(c, 'error', `Redeem is not available on this server (HTTP ${r.status}).`);
  } else {
    const why = body && typeof body.error === 'string' ? `: ${body.error.slice(0, 120)}` : '';
    setAction(c, 'error', `Redeem failed (HTTP ${r.status})${why}.`);
  }
}

async function copyToken(c) {
  if (!c || !c.token) return;
  try {
    await navigator.clipboard.writeText(c.token);
    setAction(c, 'ok', 'Token copied to the clipboard.');
  } catch {
    setAction(c, 'error', 'Copy failed: the browser did not allow clipboard access.');
  }
}

function setAction(c, kind, text) {
  c.action = { kind, text };
  if (c.id === state.selected) renderAction(c);
}

// ---------------------------------------------------------------------------------------
// Rendering.

function renderList() {
  if (cfg.mode !== 'all') return;
  const n = state.calls.size;
  $('calls-empty').hidden = n > 0;
  $('calls-count').textContent = n > 0 ? `(${n})` : '';
  for (const c of state.calls.values()) {
    if (c.item) {
      if (c.id === state.selected) c.item.setAttribute('aria-current', 'true');
      else c.item.removeAttribute('aria-current');
    }
  }
}

function outcomeOf(c) {
  if (c.outcome === 'verified') {
    if (!c.check || c.check.sig === 'pending') return 'verified';
    return c.check.sig === 'ok' && problemsOf(c).length === 0 ? 'verified' : 'warn';
  }
  if (c.outcome === 'not_verified') return 'not_verified';
  return c.state === 'ended' ? 'ended' : 'pending';
}

const OUTCOME_LABEL = {
  verified: 'Verified',
  warn: 'Check token',
  not_verified: 'Not verified',
  ended: 'Ended',
  pending: 'In progress',
};

function pill(c) {
  const o = outcomeOf(c);
  return el('span', { class: 'pill', 'data-outcome': o }, OUTCOME_LABEL[o]);
}

function progress(c) {
  const count = (r) => c.steps.filter((s) => s.result === r).length;
  const parts = [`${c.steps.length} ${c.steps.length === 1 ? 'step' : 'steps'}`];
  for (const r of ['passed', 'failed', 'skipped']) {
    const k = count(r);
    if (k) parts.push(`${k} ${r}`);
  }
  return parts.join(' · ');
}

function renderItem(c) {
  if (!c.item) return;
  const meta = [c.transport || 'unknown platform', requestWords(c.request)];
  if (c.lang) meta.push(c.lang);
  const third = [progress(c)];
  if (c.outcome === 'verified') third.push(levelWords(c.level));
  c.item.replaceChildren(
    el('span', { class: 'ci-top' }, [el('span', { class: 'ci-caller' }, c.caller || c.id), pill(c)]),
    el('span', { class: 'ci-meta' }, meta.join(' · ')),
    el('span', { class: 'ci-progress' }, third.join(' · ')),
  );
}

function renderPanel() {
  const c = state.calls.get(state.selected);
  $('panel-empty').hidden = Boolean(c);
  $('panel-body').hidden = !c;
  if (!c) {
    $('panel-empty').textContent = cfg.mode === 'call' ? 'Waiting for this call’s first event…' : 'Select a call to see its steps and result.';
    return;
  }
  $('panel-title').textContent = callName(c);
  const st = $('panel-state');
  st.textContent = c.state === 'ended' ? 'Call ended' : c.state === 'started' ? 'Call in progress' : 'Call';
  st.dataset.state = c.state || 'unknown';

  const facts = [
    ['Platform', c.transport || 'unknown'],
    ['Request', requestWords(c.request)],
    ['Language', c.lang || 'not chosen yet'],
    ['Started', c.startedAt ? clock(Date.parse(c.startedAt)) : 'unknown'],
  ];
  if (c.state === 'ended') facts.push(['Ended', `${c.endedAt ? clock(Date.parse(c.endedAt)) : ''}${c.endReason ? ` (${c.endReason.replaceAll('_', ' ')})` : ''}`]);
  facts.push(['Call ID', el('code', {}, c.id)]);
  $('facts').replaceChildren(...facts.map(([k, v]) => el('div', { class: 'fact' }, [el('dt', {}, k), el('dd', {}, v)])));

  renderBadge(c);
  renderToken(c);
  renderAction(c);

  const tl = $('timeline');
  $('timeline-empty').hidden = c.steps.length > 0;
  tl.replaceChildren(...c.steps.map((s) => el('li', { class: 'step', 'data-result': s.result }, [
    el('span', { class: 'step-icon', 'aria-hidden': 'true' }, RESULT_ICON[s.result] || '•'),
    el('span', { class: 'step-words' }, [
      el('span', { class: 'step-name' }, stepWords(s.step)),
      el('span', { class: 'step-result' }, s.result || 'unknown'),
    ]),
    s.at ? el('time', { class: 'step-time', datetime: s.at }, clock(Date.parse(s.at))) : null,
  ])));
}

function renderBadge(c) {
  const o = outcomeOf(c);
  const badge = $('badge');
  badge.dataset.outcome = o;
  const icon = { verified: '✓', warn: '!', not_verified: '✗', ended: '–', pending: '…' }[o];
  $('badge-icon').textContent = icon;
  $('badge-text').textContent = OUTCOME_LABEL[o];
  let sub = '';
  if (c.outcome === 'verified') {
    sub = `${levelWords(c.level)} · ${requestWords(c.request)}`;
    if (c.check?.sig === 'pending') sub += ' · checking the token…';
    else if (o === 'warn') sub += ' · the token failed its checks';
  } else if (c.outcome === 'not_verified') {
    sub = requestWords(c.request);
  } else if (o === 'ended') {
    sub = 'The call ended without a result.';
  } else {
    sub = 'Verification has not finished.';
  }
  $('badge-sub').textContent = sub;
  const reason = $('reason');
  const text = c.outcome === 'not_verified' ? reasonWords(c.reason) : c.note ? `Note: ${c.note}` : '';
  reason.textContent = text;
  reason.hidden = !text;
  reason.dataset.kind = c.outcome === 'not_verified' ? 'failed' : 'note';
}

function renderToken(c) {
  const sig = $('sig');
  const claimsEl = $('claims');
  const actions = $('actions');
  if (!c.check) {
    sig.hidden = true;
    claimsEl.hidden = true;
    actions.hidden = true;
    return;
  }
  actions.hidden = !c.token;
  sig.hidden = false;
  const problems = problemsOf(c);
  const check = c.check;
  let title;
  if (check.sig === 'pending') {
    sig.dataset.sig = 'pending';
    title = 'Checking the token’s signature…';
  } else if (check.sig === 'ok') {
    sig.dataset.sig = problems.length ? 'warn' : 'ok';
    title = problems.length ? '✓ Signature checked, but the token has problems:' : '✓ Signature checked';
  } else {
    sig.dataset.sig = 'warn';
    title = '⚠ Signature NOT checked — do not rely on this token';
  }
  $('sig-title').textContent = title;
  const lines = problems.slice();
  if (check.sig === 'ok' && !problems.length) {
    lines.push(`Ed25519 signature verified in this browser with key ${shortKid(check.kid)} from the server’s JWKS; issuer, audience and call match.`);
  }
  $('sig-problems').replaceChildren(...lines.map((p) => el('li', {}, p)));

  // Claims are shown only once the signature verified: before that they are just text.
  const cl = check.claims;
  if (check.sig !== 'ok' || !cl) {
    claimsEl.hidden = true;
    return;
  }
  claimsEl.hidden = false;
  const level = typeof cl.acr === 'string' ? cl.acr.replace('urn:callproof:ccpa:', '') : '';
  const amr = Array.isArray(cl.amr) ? cl.amr.map(String) : [];
  const points = Array.isArray(cl.data_points) ? cl.data_points.map((p) => stepWords(p)) : [];
  const rows = [
    ['Level', levelWords(level)],
    ['Request', requestWords(typeof cl.ccpa_request === 'string' ? cl.ccpa_request : '')],
    ['Methods', amr.length ? amrWords(amr) : 'none listed'],
    ['Checked', points.length ? points.join(', ') : 'none listed'],
    ['Declaration', cl.declaration === true ? 'Affirmed by the caller' : 'Not affirmed'],
    ['Verstat', typeof cl.verstat === 'string' && cl.verstat ? cl.verstat : 'Not provided by the carrier'],
    ['Caller number', cl.ani_match === true ? 'Matches a number on file' : 'Does not match a number on file'],
    ['Customer', typeof cl.sub === 'string' ? cl.sub : 'unknown'],
    ['Time left', el('span', { id: 'ttl', class: 'ttl' }, timeLeft(c))],
    ['Token ID', el('code', {}, typeof cl.jti === 'string' ? cl.jti : 'none')],
  ];
  claimsEl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function renderAction(c) {
  const s = $('action-status');
  s.textContent = c.action ? c.action.text : '';
  s.dataset.kind = c.action ? c.action.kind : '';
}

function shortKid(kid) {
  return kid.length > 12 ? `${kid.slice(0, 10)}…` : kid;
}

function clock(ms) {
  if (Number.isNaN(ms)) return '';
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function timeLeft(c) {
  const exp = expiresAt(c);
  if (Number.isNaN(exp)) return 'no expiry';
  const left = Math.floor((exp - Date.now()) / 1000);
  if (left <= 0) return `expired at ${clock(exp)}`;
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  const mm = h ? `${h}:${String(m).padStart(2, '0')}` : String(m);
  return `${mm}:${s} left (until ${clock(exp)})`;
}

// tick runs every second: the countdown, and the switch to "expired" when it reaches zero.
function tick() {
  const c = state.calls.get(state.selected);
  if (!c || !c.check) return;
  const ttl = $('ttl');
  if (ttl) ttl.textContent = timeLeft(c);
  const expired = !Number.isNaN(expiresAt(c)) && expiresAt(c) <= Date.now();
  if (expired !== Boolean(c.expiredShown)) {
    c.expiredShown = expired;
    update(c);
  }
}

// ---------------------------------------------------------------------------------------
// Keyboard: arrows move through the list, Enter (the button's own) opens a call and moves
// focus to its panel, Escape goes back to the list.

function openCall(id, focusPanel) {
  state.selected = id;
  renderList();
  renderPanel();
  if (focusPanel) $('panel-title').focus();
}

function onListKey(e) {
  const items = [...document.querySelectorAll('#calls .call-btn')];
  const i = items.indexOf(e.currentTarget);
  let j = -1;
  if (e.key === 'ArrowDown') j = Math.min(items.length - 1, i + 1);
  else if (e.key === 'ArrowUp') j = Math.max(0, i - 1);
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = items.length - 1;
  if (j < 0) return;
  e.preventDefault();
  items[j].focus();
}

function onPanelKey(e) {
  if (e.key !== 'Escape' || cfg.mode !== 'all') return;
  const c = state.calls.get(state.selected);
  if (c?.item) {
    e.preventDefault();
    c.item.focus();
  }
}

// ---------------------------------------------------------------------------------------
// The live region: polite, one message at a time. Clearing first makes a repeated text be
// announced again.

let announceTimer = 0;
function announce(text) {
  const a = $('announcer');
  a.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    a.textContent = text;
  }, 100);
}

start();
