package kba

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Passcode lengths GenerateOTP accepts. NIST SP 800-63B-4 §3.1.3 asks for at least 6 decimal
// digits; 10 is Twilio Verify's maximum (reference/verification.md §2.1, §3.1).
const (
	OTPMinDigits = 6
	OTPMaxDigits = 10
)

// maxOTPReads bounds GenerateOTP's reads. A real random source needs one 16-byte read almost
// always; reaching 64 means the source is broken, not unlucky (each byte is rejected with
// probability 6/256).
const maxOTPReads = 64

// GenerateOTP returns a passcode of digits decimal digits (6 to 10), each uniform over 0-9,
// read from r, which must be a CSPRNG (nil means crypto/rand.Reader; NIST SP 800-63B-4
// §3.2.12). Each digit comes from one byte by rejection sampling: bytes 250-255 are discarded so
// that byte % 10 is exactly uniform. Leading zeros are kept. The code is a secret.
func GenerateOTP(r io.Reader, digits int) (string, error) {
	if digits < OTPMinDigits || digits > OTPMaxDigits {
		return "", ErrOTPLength
	}
	if r == nil {
		r = rand.Reader
	}
	code := make([]byte, 0, digits)
	var buf [16]byte
	for reads := 0; len(code) < digits; reads++ {
		if reads == maxOTPReads {
			return "", errors.New("kba: generate passcode: random source keeps giving bytes 250-255")
		}
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("kba: generate passcode: %w", err)
		}
		for _, b := range buf {
			if b >= 250 { // 250 = 25*10: keep 0..249 so b%10 is uniform
				continue
			}
			code = append(code, '0'+b%10)
			if len(code) == digits {
				break
			}
		}
	}
	return string(code), nil
}

// CheckOTP reports whether keyed (the caller's entry, with or without the trailing '#') equals
// expected, a passcode from GenerateOTP. The comparison is constant-time. A malformed entry or
// expected value never matches. Single use, expiry and attempt counting are the caller's job
// (NIST SP 800-63B-4 §3.1.3: 10 minutes, once; reference/verification.md §7 item 4).
func CheckOTP(expected, keyed string) bool {
	k, err := Normalize(FactorOTP, keyed)
	valid := err == nil
	if !valid {
		k = ""
	}
	eq := ctEqual(expected, k)
	return eq && valid && digitsBetween(expected, OTPMinDigits, OTPMaxDigits)
}
