// The Wespoke web embed's basic call (the product brief's basic-call example) on livekit-client,
// instrumented for the benchmark's browser subject (tests/bench/browser.py).
//
// The page is served by the Python driver, which also receives its milestones: each is POSTed
// to /mark as {event, t, ...} with `t` in the driver's CLOCK_MONOTONIC seconds. The page learns
// the offset between performance.now() and that clock from a few GET /clock round trips (the
// one with the shortest round trip wins; its half is the error bound, reported in the `clock`
// mark). Both clocks are monotonic and run at the same rate, so one offset holds for the call.
//
// Milestones: clock, call (just before the token request), token, signal_connected (the join
// answer came over the WebSocket), connected (the peer connection is up too), first_frame (the
// microphone track published), remote_track (the assistant's audio attached to an <audio>),
// stats (once a second: the inbound audio's cumulative receive statistics), ended (after
// room.disconnect()), error (the call failed), warning.
import { Room, RoomEvent, Track } from 'livekit-client';

const CLOCK_ROUNDS = 20;
const STATS_INTERVAL_MS = 1000;

let clockOffsetS = 0;
let room = null;
let remoteAudio = null;

function nowS() {
  return performance.now() / 1000 + clockOffsetS;
}

function mark(event, extra = {}) {
  return fetch('/mark', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ event, t: nowS(), ...extra }),
    keepalive: true,
  });
}

async function syncClock() {
  let best = null;
  for (let i = 0; i < CLOCK_ROUNDS; i++) {
    const sent = performance.now();
    const answer = await (await fetch('/clock', { cache: 'no-store' })).json();
    const received = performance.now();
    const rttMs = received - sent;
    if (best === null || rttMs < best.rttMs) {
      best = { rttMs, offsetS: answer.t - (sent + received) / 2000 };
    }
  }
  clockOffsetS = best.offsetS;
  return best.rttMs / 2;
}

// The basic call of the product brief's examples (docs/api-contract.md, "The room"): token, Room
// with the three audio processing options, connect, microphone.
async function startCall(config) {
  mark('call');
  const response = await fetch(`${config.apiUrl}/api/v1/embed/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${config.apiKey}`,
    },
    body: JSON.stringify({ assistantId: config.assistantId, metadata: {} }),
  });
  if (!response.ok) {
    throw new Error(`token request: HTTP ${response.status} ${await response.text()}`);
  }
  const { data } = await response.json();
  mark('token');

  room = new Room({
    audioCaptureDefaults: {
      echoCancellation: config.audioProcessing,
      noiseSuppression: config.audioProcessing,
      autoGainControl: config.audioProcessing,
    },
  });
  room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => {
    if (track.kind === Track.Kind.Audio) {
      const element = track.attach();
      element.autoplay = true;
      document.body.appendChild(element);
      remoteAudio = track;
      mark('remote_track', { identity: participant.identity, name: publication.trackName });
    }
  });
  room.on(RoomEvent.Disconnected, (reason) => mark('disconnected', { reason: String(reason) }));
  room.on(RoomEvent.SignalConnected, () => mark('signal_connected'));

  // No STUN servers: the local livekit-server hands out public ones by default, and this page keeps
  // to loopback (its candidates are all on 127.0.0.1 anyway). The brief's call passes no options.
  await room.connect(data.url, data.token, { rtcConfig: { iceServers: [] } });
  mark('connected');
  // The Wespoke SDK names its microphone track `microphone` (the echo assistant echoes only that).
  await room.localParticipant.setMicrophoneEnabled(true, undefined, { name: 'microphone' });
  mark('first_frame');
}

async function reportStats() {
  if (remoteAudio === null) {
    return;
  }
  const report = await remoteAudio.getRTCStatsReport();
  report?.forEach((stats) => {
    if (stats.type === 'inbound-rtp' && stats.kind === 'audio') {
      mark('stats', {
        jitterBufferDelay: stats.jitterBufferDelay,
        jitterBufferTargetDelay: stats.jitterBufferTargetDelay,
        jitterBufferEmittedCount: stats.jitterBufferEmittedCount,
        concealedSamples: stats.concealedSamples,
        totalSamplesReceived: stats.totalSamplesReceived,
        packetsReceived: stats.packetsReceived,
        packetsLost: stats.packetsLost,
        jitter: stats.jitter,
      });
    }
  });
}

// Resolves when the driver asks the call to end (its long poll answers so), or after `durationS`.
async function untilStop(durationS) {
  const timeUp = durationS === null
    ? new Promise(() => {})
    : new Promise((resolve) => setTimeout(() => resolve({ stop: true }), durationS * 1000));
  for (;;) {
    const poll = fetch('/control', { cache: 'no-store' }).then((r) => r.json());
    if ((await Promise.race([poll, timeUp])).stop) {
      return;
    }
  }
}

async function main() {
  const config = await (await fetch('/config', { cache: 'no-store' })).json();
  const errorMs = await syncClock();
  await mark('clock', { error_ms: errorMs, offset_s: clockOffsetS });
  await startCall(config);
  const stats = setInterval(() => reportStats().catch((e) => mark('warning', { message: String(e) })), STATS_INTERVAL_MS);
  await untilStop(config.durationS);
  clearInterval(stats);
  await reportStats();
  await room.disconnect();
  await mark('ended');
}

// Not fatal by itself (the call may go on): reported for the log, while `error` means the call failed.
window.addEventListener('unhandledrejection', (e) => mark('warning', { message: String(e.reason) }));
main().catch(async (e) => {
  await mark('error', { message: String(e?.stack ?? e) });
  await room?.disconnect();
});
