// Package freeswitch owns Callproof's side of FreeSWITCH's mod_audio_fork (drachtio's module
// and jambonz's fork of it; reference/telephony-protocols.md §4.2): the handler for
// GET /v1/freeswitch that turns one uuid_audio_fork WebSocket into a media.Leg, and a Client
// that plays FreeSWITCH's role for `callproof call --platform freeswitch`, `callproof load` and
// tests. The dialplan or an ESL application starts the fork on an answered channel with
// compact JSON metadata (no spaces: the API splits its arguments on them):
//
//	uuid_audio_fork <uuid> start wss://callproof.example.com/v1/freeswitch mono 8k
//	  {"uuid":"<uuid>","from":"+14155550100","to":"+18005550199","sampleRate":8000,"request":"delete","lang":"en-US"}
//
// (one line), and plays each file the module announces in mod_audio_fork::play_audio
// (uuid_broadcast <uuid> <file> aleg).
//
//   - FreeSWITCH connects (libwebsockets) with the subprotocol audio.drachtio.org
//     (Config.Subprotocol; jambonz's build and MOD_AUDIO_FORK_SUBPROTOCOL_NAME change it),
//     which the handler requires and echoes, and HTTP Basic credentials from
//     MOD_AUDIO_FORK_HTTP_AUTH_USER/PASSWORD (drachtio, environment) or the channel variables
//     MOD_AUDIO_BASIC_AUTH_USERNAME/PASSWORD (jambonz build). It sends "Origin: <host>"
//     without a scheme, which the handler ignores (authentication is by credentials).
//   - The first message is the metadata argument of uuid_audio_fork, which must be a JSON
//     object (the module sends it only when it is not empty; audio before it is refused):
//     uuid (or callId) becomes CallID, from (or caller_id_number) From, to (or
//     destination_number) To, verstat Verstat, sampleRate (8000, 16000, "8k" or "16k"; default
//     Config.SampleRate) the rate of the audio, mixType must be mono or mixed, and every other
//     string member is a stream parameter (request, lang, account, ...).
//   - Then binary L16 little-endian PCM at that rate, in messages of whatever the module's
//     buffer held (not whole frames); an empty binary message (the graceful shutdown of
//     jambonz's build) is ignored. The leg reassembles 20 ms frames and converts 16 kHz to
//     8 kHz.
//   - The module forwards no digits: DTMF must come from the audio (Config.DTMF auto or
//     inband, with Config.NewDetector). An ESL application could relay DTMF with send_text,
//     but this adapter takes no text after the metadata.
//   - A prompt goes out as {"type":"playAudio","data":{"audioContentType":"raw",
//     "sampleRate":8000,"audioContent":"<base64 L16>"}} (prompts are 8 kHz; FreeSWITCH
//     resamples to the channel), one message per prompt (per 20 s of it for longer ones,
//     below the module's ~650 KB text limit). The module writes it to a temporary file and
//     raises mod_audio_fork::play_audio with the file's path: the dialplan or ESL application
//     must play it (uuid_broadcast) — the module does not. Barge-in is {"type":"killAudio"},
//     which breaks the current playback (CF_BREAK). Hanging up closes the socket; the module
//     raises mod_audio_fork::disconnect and the application decides whether to end the call.
//   - The module acknowledges nothing, so marks are emulated from the leg's playback clock
//     (NativeMarks false): a prompt's mark is reported when its duration, queued after the
//     prompts before it, has passed. The application's delay in starting playback is not
//     known to the leg.
//
// Peer mistakes end only their own call with a close code (see media/wsaudio).
package freeswitch
