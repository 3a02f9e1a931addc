// Callproof softphone: calls the server's WebRTC endpoint (POST /v1/webrtc with an SDP offer,
// non-trickle; DELETE on the returned Location hangs up) and sends key presses with
// RTCDTMFSender, which the server receives as RFC 4733 telephone-events.
//
// Demo inbox hook: while the page is open it polls GET /v1/demo/inbox (with ?call=<call id>
// during a call) every 2 s. A 404 means demo mode is off: the #inbox region stays hidden and
// polling stops. A 200 carries JSON {"messages": [{"to", "channel", "code", "expires_at",
// "call"}]} (or the bare array), newest first, shown in #inbox. Other statuses are retried.
// The paths come from the body's data-endpoint and data-inbox attributes.
//
// No inline script or style: the page's Content-Security-Policy forbids both.
'use strict';
(() => {
  const body = document.body;
  const endpoint = body.dataset.endpoint || '/v1/webrtc';
  const inboxURL = body.dataset.inbox || '/v1/demo/inbox';
  const $ = (id) => document.getElementById(id);
  const statusEl = $('status');
  const callBtn = $('call');
  const hangBtn = $('hangup');
  const keypad = $('keypad');
  const keyed = $('keyed');
  const callIdEl = $('call-id');
  const remote = $('remote');
  const inbox = $('inbox');
  const inboxList = $('inbox-list');
  const inboxEmpty = $('inbox-empty');
  const keys = Array.from(keypad.querySelectorAll('button[data-digit]'));

  let pc = null;
  let sender = null;
  let resource = '';
  let callId = '';
  let stream = null;
  let audioCtx = null;
  let keypadOnly = false;
  let presses = 0;

  function setState(state, text) {
    body.dataset.state = state;
    statusEl.textContent = text;
    const live = state === 'calling' || state === 'connected';
    callBtn.disabled = live;
    hangBtn.disabled = !live;
    for (const b of keys) b.disabled = state !== 'connected';
  }

  // The microphone if we may use it; otherwise a silent track, so that there is an audio
  // sender for RTCDTMFSender and the call works keypad-only (no permission, or a page served
  // over plain http from another host, where getUserMedia does not exist).
  async function localAudio() {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (e) {
      keypadOnly = true;
      audioCtx = new AudioContext();
      const dest = audioCtx.createMediaStreamDestination();
      const src = audioCtx.createConstantSource();
      src.offset.value = 0;
      src.connect(dest);
      src.start();
      return dest.stream;
    }
  }

  function iceGathered(conn) {
    return new Promise((resolve) => {
      if (conn.iceGatheringState === 'complete') { resolve(); return; }
      const check = () => {
        if (conn.iceGatheringState === 'complete') {
          conn.removeEventListener('icegatheringstatechange', check);
          resolve();
        }
      };
      conn.addEventListener('icegatheringstatechange', check);
      setTimeout(resolve, 3000); // send what we have
    });
  }

  function reasonFor(status, text) {
    switch (status) {
      case 406: return 'this browser offered no G.711 audio';
      case 413: return 'the offer was too large';
      case 415: return 'the request was not an SDP offer';
      case 429: return 'too many calls from this address; wait a minute';
      case 503: return 'the server is busy; try again shortly';
      default: return text || ('HTTP ' + status);
    }
  }

  async function call() {
    if (pc) return;
    presses = 0;
    keypadOnly = false;
    keyed.textContent = '';
    keyed.dataset.count = '0';
    callId = '';
    resource = '';
    callIdEl.textContent = '–';
    setState('calling', 'Calling…');
    try {
      stream = await localAudio();
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const conn = pc;
      sender = pc.addTrack(stream.getAudioTracks()[0], stream);
      if (sender.dtmf) sender.dtmf.ontonechange = (ev) => flash(ev.tone); // light the key playing
      pc.ontrack = (ev) => { remote.srcObject = ev.streams[0] || new MediaStream([ev.track]); };
      pc.onconnectionstatechange = () => onConnectionState(conn);
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      if (pc !== conn) return; // hung up meanwhile
      const params = new URLSearchParams();
      const page = new URLSearchParams(location.search);
      for (const k of ['request', 'lang', 'account']) {
        const v = page.get(k);
        if (v) params.set(k, v);
      }
      const q = params.toString();
      const resp = await fetch(endpoint + (q ? '?' + q : ''), {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const text = await resp.text();
      if (resp.status !== 201) throw new Error(reasonFor(resp.status, text.trim()));
      resource = new URL(resp.headers.get('Location'), location.href).toString();
      callId = resp.headers.get('Callproof-Call-Id') || '';
      callIdEl.textContent = callId || '–';
      if (pc !== conn) { hangupResource(); return; }
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      // The server hangs up by closing DTLS; Chrome reports it on the DTLS transport only.
      const dtls = sender.transport;
      if (dtls) {
        dtls.onstatechange = () => {
          if (pc === conn && (dtls.state === 'closed' || dtls.state === 'failed')) finish('ended', 'Call ended');
        };
      }
    } catch (e) {
      finish('failed', 'Call failed: ' + e.message);
    }
  }

  function onConnectionState(conn) {
    if (pc !== conn) return;
    switch (conn.connectionState) {
      case 'connected':
        setState('connected', keypadOnly ? 'Connected (no microphone: keypad only)' : 'Connected');
        break;
      case 'disconnected':
      case 'failed':
        finish('failed', 'Connection lost');
        break;
      case 'closed':
        finish('ended', 'Call ended');
        break;
    }
  }

  function hangupResource() {
    if (!resource) return;
    const u = resource;
    resource = '';
    fetch(u, { method: 'DELETE', keepalive: true, credentials: 'same-origin' }).catch(() => {});
  }

  function finish(state, text) {
    if (!pc) {
      if (body.dataset.state === 'calling') setState(state, text);
      return;
    }
    const conn = pc;
    pc = null;
    sender = null;
    resource = '';
    conn.close();
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
    if (audioCtx) audioCtx.close();
    audioCtx = null;
    remote.srcObject = null;
    setState(state, text);
  }

  function hangup() {
    hangupResource();
    finish('ended', 'Call ended');
  }

  function press(digit) {
    if (!sender || body.dataset.state !== 'connected') return;
    const dtmf = sender.dtmf;
    if (!dtmf || !dtmf.canInsertDTMF) return;
    // insertDTMF replaces what is still queued, so append to it.
    dtmf.insertDTMF(dtmf.toneBuffer + digit, 100, 70);
    presses++;
    keyed.dataset.count = String(presses);
    keyed.textContent = '•'.repeat(Math.min(presses, 20)); // never the digits themselves
  }

  function flash(tone) {
    for (const b of keys) b.classList.toggle('pressed', b.dataset.digit === tone);
  }

  callBtn.addEventListener('click', call);
  hangBtn.addEventListener('click', hangup);
  for (const b of keys) b.addEventListener('click', () => press(b.dataset.digit));
  document.addEventListener('keydown', (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (/^[0-9*#]$/.test(ev.key) && body.dataset.state === 'connected') {
      ev.preventDefault();
      press(ev.key);
    } else if (ev.key === 'Escape' && pc) {
      ev.preventDefault();
      hangup();
    }
  });
  window.addEventListener('pagehide', hangupResource);

  // Demo passcode inbox (see the comment at the top).
  let inboxStopped = false;
  function renderInbox(data) {
    const msgs = Array.isArray(data) ? data : (data && Array.isArray(data.messages) ? data.messages : []);
    inboxList.replaceChildren();
    for (const m of msgs.slice(0, 20)) {
      const li = document.createElement('li');
      const code = document.createElement('span');
      code.className = 'code';
      code.textContent = String(m.code || '');
      const meta = document.createElement('span');
      meta.className = 'meta';
      const parts = [m.channel, m.to].filter(Boolean).map(String);
      if (m.expires_at) {
        const t = new Date(m.expires_at);
        if (!isNaN(t)) parts.push('expires ' + t.toLocaleTimeString());
      }
      meta.textContent = parts.join(' · ');
      li.append(code, meta);
      inboxList.append(li);
    }
    inboxEmpty.hidden = msgs.length > 0;
    inbox.hidden = false;
  }
  async function pollInbox() {
    if (inboxStopped) return;
    try {
      const u = new URL(inboxURL, location.href);
      if (callId) u.searchParams.set('call', callId);
      const r = await fetch(u, { cache: 'no-store', credentials: 'same-origin' });
      if (r.status === 404) {
        inboxStopped = true;
        inbox.hidden = true;
        return;
      }
      if (r.ok) renderInbox(await r.json());
    } catch (e) {
      // a network hiccup or a bad body: try again on the next round
    }
    if (!inboxStopped) setTimeout(pollInbox, 2000);
  }

  window.callproofPhone = Object.freeze({
    state: () => body.dataset.state,
    callId: () => callId,
    renderInbox,
    pollInbox,
  });
  setState('idle', 'Ready to call');
  pollInbox();
})();
