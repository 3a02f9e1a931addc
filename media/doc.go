// Package media owns the audio side of a call: the Leg interface every transport adapter
// implements, the events a leg delivers (start, digits, marks, hangup), the actions the flow
// takes on it (play, clear, hangup), 20 ms PCM16 frames at 8 kHz, and the G.711 codecs
// (ITU-T G.711 μ-law and A-law).
//
// Adapters live in sub-packages named after the wire protocol they speak (media/twilio, ...).
// They import this package and never ivr, kba or sessions: media knows bytes, frames and
// digits, not what a digit means.
//
// Inbound, an adapter feeds a Receiver: it turns platform digit events, in-band tones (through
// a ToneDetector) and playback acknowledgements into one ordered Event stream, de-duplicating a
// key press that arrives both ways. Outbound, the flow hands the leg a *Clip (a prompt decoded
// once at start-up) and a mark name; buffered platforms get the whole clip followed by the mark,
// paced platforms get one frame per 20 ms tick.
package media
