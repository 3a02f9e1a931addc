package otp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestGenerate(t *testing.T) {
	// Bytes 250-255 are skipped; the rest count modulo 10; leading zeros stay.
	src := append(bytes.Repeat([]byte{255, 250}, 4), 0, 10, 249, 123, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	code, err := generate(bytes.NewReader(src), 6)
	if err != nil || code.Reveal() != "009378" {
		t.Fatalf("generate = %q, %v", code.Reveal(), err)
	}
	if _, err := generate(bytes.NewReader(bytes.Repeat([]byte{250}, 64*16)), 6); err == nil {
		t.Fatal("a source of only rejected bytes must fail")
	}
	if _, err := generate(bytes.NewReader(nil), 6); !errors.Is(err, io.EOF) {
		t.Fatalf("empty source: %v", err)
	}
	// crypto/rand: every digit appears in every position over enough codes.
	var seen [10][10]bool
	for range 2000 {
		c, err := generate(nil, 10)
		if err != nil || len(c) != 10 {
			t.Fatal(c.Len(), err)
		}
		for i, d := range c.Reveal() {
			seen[i][d-'0'] = true
		}
	}
	for i := range seen {
		for d, ok := range seen[i] {
			if !ok {
				t.Fatalf("digit %d never appeared at position %d", d, i)
			}
		}
	}
}

func TestNormalizeKeyed(t *testing.T) {
	for in, want := range map[string]string{
		"123456": "123456", "123456#": "123456", "#": "", "": "", "12#34": "", "12 34": "", "123456##": "",
		"123456789012345678901234567890123": "",
	} {
		if got := normalizeKeyed(in); got != want {
			t.Errorf("normalizeKeyed(%q) = %q, want %q", in, got, want)
		}
	}
}
