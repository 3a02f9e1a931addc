// Package resample owns sample-rate conversion between the 8 kHz PCM16 the flow and the prompts
// work in and the 16 kHz PCM16 that wideband platforms (Vonage, jambonz, FreeSWITCH) stream: a
// 2:1 decimator (Down, 16 kHz to 8 kHz, with anti-alias filtering), a 1:2 interpolator (Up,
// 8 kHz to 16 kHz, with image rejection), both streaming with their state kept across calls and
// no allocation once the destination has room, and UpClip, a stateless interpolator for
// converting a whole prompt once.
//
// # Filter
//
// Both directions use one linear-phase half-band FIR low-pass at 16 kHz: 63 taps, a sinc cut at
// 4 kHz (a quarter of the rate) under a Kaiser window with β = 7, coefficients rounded to Q15.
// Being half-band, every second tap is zero and the centre tap is exactly ½, so each output
// sample costs 16 multiplications (the taps are symmetric) and, when interpolating, every
// second output sample is an input sample passed through unchanged. Measured on the Q15 taps:
//
//   - passband 0–3.4 kHz: flat within ±0.005 dB (the tests hold it to ±0.5 dB);
//   - 4 kHz: −6.02 dB (the half-band point);
//   - stopband 4.6–8 kHz: at least 69 dB down (the tests hold it to 50 dB). Decimating, a
//     tone there would alias into 0–3.4 kHz; interpolating, the image of a 0–3.4 kHz tone
//     lands there.
//   - DC gain exactly 1 in both directions (the side taps sum to ½ in Q15).
//
// The group delay is 31 samples at 16 kHz (1.94 ms) in both directions; UpClip has none (it is
// the zero-phase form of Up: UpClip(x)[2i] == x[i]).
//
// Arithmetic is integer (int64 accumulation, rounding to nearest, saturation to int16), so
// results are bit-identical on every platform: a simulated client can recognise a prompt the
// server converted with UpClip by comparing samples.
package resample
