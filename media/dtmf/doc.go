// Package dtmf owns DTMF (dual-tone multi-frequency) digits in every form a call can carry
// them: the in-band tone detector that finds key presses in PCM audio (ITU-T Q.23 signals,
// Q.24 receiver behaviour), RFC 4733 telephone-event payloads and a de-duplicating receiver
// for them, SIP INFO bodies (application/dtmf-relay and application/dtmf), a tone generator
// for tests and simulated callers, and a scanner that runs the detector over WAV or raw files.
//
// # In-band detector
//
// Detector implements media.ToneDetector. Audio at 16 kHz is decimated to 8 kHz by a half-band
// FIR first, so one tuned detector serves both rates. The 8 kHz signal is DC-blocked and cut
// into 17-sample sub-blocks; for each sub-block the detector keeps the energy, the complex DFT
// value at the eight DTMF frequencies (rotated to an absolute phase reference; computed only when
// a window holding the sub-block is loud enough to hold a tone) and — only for windows that pass
// every cheaper test — the energy of the DTMF band (560-1950 Hz, 2nd-order Butterworth skirts).
// On x86-64 processors with AVX2 and FMA the DC blocker, the DFT, the window sums and the band
// filter run as vector kernels (kernel_amd64.s); elsewhere the same computations run in Go.
// Every sub-block (2.125 ms) it evaluates the 102-sample window that ends there — the window
// length of spandsp and Asterisk — with these tests:
//
//   - each tone reaches MinLevel, and the strongest row and column tones each stand 8 dB above
//     the other tones of their group;
//   - each tone's frequency, measured from the phase advance of its DFT value across 51 samples
//     and refined by solving the two tones' leakage into each other's bins away, lies within
//     FreqTolerance of nominal (Q.24: accept ±1.5 %, reject ±3.5 %); levels and twist are
//     measured at that frequency, so an off-frequency tone is not also weakened;
//   - twist is within NormalTwist (low tone louder) and ReverseTwist (high tone louder);
//   - the pair holds 82 % of the energy of the DTMF band and at least half of the whole band's.
//
// spandsp and Asterisk require 82 % of the whole band, which is what loses digits under
// speech. A pair that holds less than 85 % of the whole band is therefore confirmed only if it
// is steady over the key press: its levels vary by under 4.5 dB, and it shows neither second
// harmonics nor energy at the difference of its two frequencies — a voice whose harmonics k·f0
// and m·f0 happen to sit on a row and a column has both.
//
// Within a key press whose frequencies have been measured well inside the tolerance, the windows
// that follow are analysed with those frequencies instead of measuring them again: every other
// test, and the timing, are computed as above.
//
// A run of passing windows becomes a digit when the tone it implies has lasted MinDuration,
// and the digit ends when the tone has been absent for MaxGap (so a lost 20 or 30 ms packet does
// not split a key press, and a 40 ms pause separates two). Tone on and off times are estimated
// to a couple of milliseconds from the energy share of the first and last windows, so durations
// come from the sample clock, not from the window grid.
//
// # Levels
//
// Levels are in dBm0 with the convention of ITU-T G.711 and spandsp: a sine whose peak is 16-bit
// full scale (32768) is +3.14 dBm0, so 0 dBm0 is a sine of peak 22 827 and the level L of a
// sine of peak A is 20·log10(A/32768) + 3.14.
//
// # Out-of-band digits
//
// ParseEvent, Event.Marshal and Receiver implement RFC 4733 §2.3 (payload format) and §2.5.2
// (receiver procedures); Sender builds the packet sequence a sender would emit (§2.5.1).
// ParseSIPInfo reads the two SIP INFO bodies used in practice. None of these log or put the
// digit in an error: digits are caller answers.
package dtmf
