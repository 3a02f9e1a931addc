//go:build spandsp && cgo

// spandsp's DTMF receiver (Debian's libspandsp-dev 0.0.6, LGPL-2.1), run as a
// black-box reference for the comparison tests of media/dtmf (dtmf.md §5.2: 20 ms chunks,
// default parameters, digits timed at chunk granularity). It is compiled only with the build
// tag "spandsp" and never linked into the product.
package spandsp

/*
#cgo pkg-config: spandsp
#include <stdint.h>
#include <stdlib.h>
#include <inttypes.h>
#include <spandsp.h>

#define MAXEV 256

typedef struct {
	dtmf_rx_state_t *rx;
	long pos;   // samples given before the current chunk
	long chunk; // samples in the current chunk
	int cur;    // digit on, or 0
	long start;
	int n;
	int code[MAXEV];
	long on[MAXEV];
	long len[MAXEV];
} harness;

static void on_tone(void *user, int code, int level, int delay) {
	harness *h = (harness *) user;
	long now = h->pos + h->chunk; // reported at the end of the chunk being processed
	if (h->cur && h->n < MAXEV) {
		h->code[h->n] = h->cur;
		h->on[h->n] = h->start;
		h->len[h->n] = now - h->start;
		h->n++;
	}
	h->cur = code;
	h->start = now;
}

static void on_digits(void *user, const char *digits, int len) {}

static harness *harness_new(void) {
	harness *h = calloc(1, sizeof(harness));
	h->rx = dtmf_rx_init(NULL, on_digits, NULL);
	dtmf_rx_set_realtime_callback(h->rx, on_tone, h);
	return h;
}

static void harness_free(harness *h) {
	dtmf_rx_free(h->rx);
	free(h);
}

static void harness_run(harness *h, const int16_t *amp, int samples) {
	h->chunk = samples;
	dtmf_rx(h->rx, amp, samples);
	h->pos += samples;
	h->chunk = 0;
}

static void harness_flush(harness *h) {
	on_tone(h, 0, 0, 0);
}
*/
import "C"

import (
	"time"
	"unsafe"
)

// Digit is one key press spandsp reported.
type Digit struct {
	Digit    byte
	Start    time.Duration // when spandsp reported the tone on (end of that chunk)
	Duration time.Duration
}

// Receiver is one spandsp dtmf_rx context at 8 kHz.
type Receiver struct{ h *C.harness }

// New returns a receiver with spandsp's defaults (8 dB normal twist, 4 dB reverse, −42 dBm0).
func New() *Receiver { return &Receiver{h: C.harness_new()} }

// Close frees the C state.
func (r *Receiver) Close() { C.harness_free(r.h) }

// Process feeds pcm in chunks of chunk samples and appends the digits that ended to dst.
func (r *Receiver) Process(dst []Digit, pcm []int16, chunk int) []Digit {
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		C.harness_run(r.h, (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(n))
		pcm = pcm[n:]
		dst = r.drain(dst)
	}
	return dst
}

// Flush ends a digit still on.
func (r *Receiver) Flush(dst []Digit) []Digit {
	C.harness_flush(r.h)
	return r.drain(dst)
}

func (r *Receiver) drain(dst []Digit) []Digit {
	for i := 0; i < int(r.h.n); i++ {
		dst = append(dst, Digit{
			Digit:    byte(r.h.code[i]),
			Start:    time.Duration(r.h.on[i]) * time.Second / 8000,
			Duration: time.Duration(r.h.len[i]) * time.Second / 8000,
		})
	}
	r.h.n = 0
	return dst
}
