package media

import "math/bits"

// G.711 (ITU-T Recommendation G.711, 1988): 8-bit logarithmic companding of 13-bit (A-law) and
// 14-bit (μ-law) linear samples. This package works in 16-bit PCM: A-law input is shifted down
// 3 bits and μ-law input 2 bits, as the reference software of ITU-T G.191 does.
//
// Encoding and decoding go through tables built once at start-up, so the hot path is a load.

const (
	ulawBias = 0x84 // 132, the bias added before segment search (G.711 §3, μ-law)
	ulawClip = 32635
)

var (
	ulawToPCM [256]int16
	alawToPCM [256]int16
	pcmToUlaw [65536]byte // indexed by uint16(sample)
	pcmToAlaw [65536]byte
)

func init() {
	for i := 0; i < 256; i++ {
		ulawToPCM[i] = ulawDecode(byte(i))
		alawToPCM[i] = alawDecode(byte(i))
	}
	for i := 0; i < 65536; i++ {
		s := int16(uint16(i))
		pcmToUlaw[i] = ulawEncode(s)
		pcmToAlaw[i] = alawEncode(s)
	}
}

// ulawEncode is the G.711 μ-law encoder on a 16-bit sample.
func ulawEncode(s int16) byte {
	x := int(s)
	var sign byte
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > ulawClip {
		x = ulawClip
	}
	x += ulawBias
	exp := bits.Len(uint(x>>7)) - 1
	if exp < 0 {
		exp = 0
	}
	mant := byte(x>>(exp+3)) & 0x0F
	return ^(sign | byte(exp)<<4 | mant)
}

// ulawDecode is the G.711 μ-law decoder to a 16-bit sample.
func ulawDecode(u byte) int16 {
	u = ^u
	exp := int(u>>4) & 0x07
	mant := int(u & 0x0F)
	x := ((mant << 3) + ulawBias) << exp
	x -= ulawBias
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}

// alawEncode is the G.711 A-law encoder on a 16-bit sample (even bits inverted, 0x55).
func alawEncode(s int16) byte {
	x := int(s) >> 3 // 13-bit
	var mask byte
	if x >= 0 {
		mask = 0xD5
	} else {
		mask = 0x55
		x = -x - 1
	}
	seg := 0
	for seg < 8 && x > (0x20<<seg)-1 {
		seg++
	}
	if seg >= 8 {
		return 0x7F ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte(x>>1) & 0x0F
	} else {
		a |= byte(x>>seg) & 0x0F
	}
	return a ^ mask
}

// alawDecode is the G.711 A-law decoder to a 16-bit sample.
func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// UlawSilence and AlawSilence are the codes of a zero sample.
const (
	UlawSilence byte = 0xFF
	AlawSilence byte = 0xD5
)

// UlawToPCM decodes one μ-law code.
func UlawToPCM(u byte) int16 { return ulawToPCM[u] }

// AlawToPCM decodes one A-law code.
func AlawToPCM(a byte) int16 { return alawToPCM[a] }

// PCMToUlaw encodes one sample as μ-law.
func PCMToUlaw(s int16) byte { return pcmToUlaw[uint16(s)] }

// PCMToAlaw encodes one sample as A-law.
func PCMToAlaw(s int16) byte { return pcmToAlaw[uint16(s)] }

// DecodeUlaw decodes src into dst, which must be at least len(src) long; it returns
// dst[:len(src)]. It does not allocate.
func DecodeUlaw(dst []int16, src []byte) []int16 {
	dst = dst[:len(src)]
	for i, u := range src {
		dst[i] = ulawToPCM[u]
	}
	return dst
}

// DecodeAlaw decodes src into dst, which must be at least len(src) long.
func DecodeAlaw(dst []int16, src []byte) []int16 {
	dst = dst[:len(src)]
	for i, a := range src {
		dst[i] = alawToPCM[a]
	}
	return dst
}

// EncodeUlaw encodes src into dst, which must be at least len(src) long.
func EncodeUlaw(dst []byte, src []int16) []byte {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = pcmToUlaw[uint16(s)]
	}
	return dst
}

// EncodeAlaw encodes src into dst, which must be at least len(src) long.
func EncodeAlaw(dst []byte, src []int16) []byte {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = pcmToAlaw[uint16(s)]
	}
	return dst
}
