// Package jambonz owns Callproof's side of the jambonz listen verb with bidirectional
// streaming audio (https://docs.jambonz.org/verbs/verbs/listen and the supporting article on
// bidirectional audio, summarised in reference/telephony-protocols.md §5): the handler for
// GET /v1/jambonz that turns one listen WebSocket into a media.Leg, and a Client that plays
// jambonz's role for `callproof call --platform jambonz`, `callproof load` and tests. The
// application answers the call with a listen verb like:
//
//	{"verb": "listen", "url": "wss://callproof.example.com/v1/jambonz",
//	 "actionHook": "/callproof-done", "mixType": "mono", "sampleRate": 8000,
//	 "passDtmf": true, "wsAuth": {"username": "jambonz", "password": "<password>"},
//	 "metadata": {"request": "delete", "lang": "en-US"},
//	 "bidirectionalAudio": {"enabled": true, "streaming": true, "sampleRate": 8000}}
//
// The protocol, as this package implements it:
//
//   - jambonz opens the socket with the WebSocket subprotocol audio.jambonz.org, which the
//     handler requires and echoes (§8, pitfall 13), and HTTP Basic credentials from the verb's
//     wsAuth (Config.Username and Password); anything else gets 400 or 401 before the upgrade.
//   - The first message is JSON text: the call's attributes (callSid, from, to, direction, …)
//     plus sampleRate and mixType, with the verb's metadata merged in at the top level. It
//     becomes media.Start{Transport:"jambonz"}: CallID from callSid, From, To, Verstat from
//     verstat, and the stream parameters request, lang and account (also taken from a nested
//     "metadata" or "customParameters" object, if the application nests them). sampleRate must
//     be 8000 or 16000 and mixType mono or mixed (one channel).
//   - Then binary L16 little-endian PCM at sampleRate, in messages of whatever size the
//     media server's buffer held; the leg reassembles 20 ms frames and converts 16 kHz to 8 kHz.
//     With passDtmf, key presses arrive as {"event":"dtmf","dtmf":"5","duration":…}.
//   - We stream prompts back as binary L16 at sampleRate (bidirectionalAudio.streaming true;
//     set bidirectionalAudio.sampleRate to the same rate), 100 ms per message, at most
//     Config.MaxLead (default 1 s) ahead of playback; barge-in is {"type":"killAudio"} and
//     hanging up is {"type":"disconnect"} (the listen verb ends and the application's next
//     verb runs), then the close frame.
//   - jambonz acknowledges nothing in streaming mode (§5: no mark or playDone), so marks are
//     emulated from the leg's playback clock (NativeMarks false): a prompt's mark is reported
//     when the clock passes its end. Whether killAudio flushes jambonz's streaming buffer is
//     not confirmed (§5 [U]); the small lead bounds what could still play after a barge-in.
//
// Peer mistakes end only their own call with a close code (see media/wsaudio).
package jambonz
