package dtmf

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector kernels agree with their Go versions to within rounding.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	close := func(a, b, scale float64) bool { return math.Abs(a-b) <= 1e-12*scale }
	for trial := 0; trial < 200; trial++ {
		var x [subLen]float64
		var scale float64
		for i := range x {
			x[i] = (rng.Float64()*2 - 1) * 32768
			scale += math.Abs(x[i])
		}
		var tr, ti [8]float64
		for k := range tr {
			s, c := math.Sincos(rng.Float64() * 2 * math.Pi)
			tr[k], ti[k] = c, s
		}
		var re1, im1, re2, im2 [8]float64
		tr2, ti2 := tr, ti
		foldDFTGo(&x, &re1, &im1, &tr, &ti)
		foldDFT(&x, &re2, &im2, &tr2, &ti2)
		for k := range re1 {
			if !close(re1[k], re2[k], scale) || !close(im1[k], im2[k], scale) || !close(tr[k], tr2[k], 1) || !close(ti[k], ti2[k], 1) {
				t.Fatalf("foldDFT: tone %d: %v %v, want %v %v", k, complex(re2[k], im2[k]), complex(tr2[k], ti2[k]), complex(re1[k], im1[k]), complex(tr[k], ti[k]))
			}
		}
		s1 := [4]float64{rng.Float64() * 1000, rng.Float64() * 1000, rng.Float64() * 1000, rng.Float64() * 1000}
		s2 := s1
		s3, s4 := s1, s1
		bandStateGo(&x, &s3)
		bandState(&x, &s4)
		e1, e2 := bandBlockGo(&x, &s1), bandBlock(&x, &s2)
		if s3 != s1 || s4 != s2 {
			t.Fatalf("bandState: state %v %v, want %v %v (bandBlock's)", s3, s4, s1, s2)
		}
		if !close(e1, e2, e1) {
			t.Fatalf("bandBlock: energy %g, want %g", e2, e1)
		}
		for i := range s1 {
			if !close(s1[i], s2[i], scale) {
				t.Fatalf("bandBlock: state %v, want %v", s2, s1)
			}
		}
		var wr, wi, p, pk, wr2, wi2, p2, pk2 [8]float64
		var in, out [4][8]float64
		for i := range in {
			for k := range in[i] {
				in[i][k], out[i][k] = rng.Float64()*1e5, rng.Float64()*1e5
			}
		}
		for k := range wr {
			wr[k], wi[k] = rng.Float64()*1e6, rng.Float64()*1e6
		}
		wr2, wi2 = wr, wi
		var peak, peak2 [4]float64
		var arg, arg2 [4]int
		windowStepGo(&wr, &wi, &p, &in[0], &in[1], &out[0], &out[1], &peak, &arg)
		windowStep(&wr2, &wi2, &p2, &in[0], &in[1], &out[0], &out[1], &peak2, &arg2)
		_, _ = pk, pk2
		if wr != wr2 || wi != wi2 || p != p2 || peak != peak2 || arg != arg2 {
			t.Fatalf("windowStep: %v %v, want %v %v", peak2, arg2, peak, arg)
		}

		// foldStep is foldDFT then windowStep, to the bit, and its Go version agrees with it.
		var b bins
		for j := range b.ringRe {
			for k := range b.ringRe[j] {
				b.ringRe[j][k], b.ringIm[j][k] = rng.Float64()*1e5, rng.Float64()*1e5
			}
		}
		b.rotRe, b.rotIm = tr2, ti2
		b.winRe, b.winIm = wr, wi
		slot, old := rng.IntN(ringSize), rng.IntN(ringSize)
		for old == slot {
			old = rng.IntN(ringSize)
		}
		b2, b3 := b, b
		foldStep(&x, &b, slot, old)
		foldDFT(&x, &b2.ringRe[slot], &b2.ringIm[slot], &b2.rotRe, &b2.rotIm)
		windowStep(&b2.winRe, &b2.winIm, &b2.winP, &b2.ringRe[slot], &b2.ringIm[slot], &b2.ringRe[old], &b2.ringIm[old], &b2.winPeak, &b2.winArg)
		if b != b2 {
			t.Fatalf("foldStep: %+v, want %+v", b.winRe, b2.winRe)
		}
		foldStepGo(&x, &b3, slot, old)
		for k := range b.winRe {
			if !close(b.winRe[k], b3.winRe[k], 1e6) || !close(b.winIm[k], b3.winIm[k], 1e6) || !close(b.rotRe[k], b3.rotRe[k], 1) {
				t.Fatalf("foldStep: tone %d: %v, Go %v", k, complex(b.winRe[k], b.winIm[k]), complex(b3.winRe[k], b3.winIm[k]))
			}
		}
	}
}

func TestDCBlockKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// one sub-block: dcBlock16N agrees with dcBlock.
	for trial := 0; trial < 200; trial++ {
		var x [subLen]int16
		for i := range x {
			x[i] = int16(rng.IntN(65536) - 32768)
		}
		st1 := [2]float64{float64(rng.IntN(65536) - 32768), (rng.Float64()*2 - 1) * 40000}
		st2 := st1
		var y1 [subLen]float64
		var h [ringSize * subLen]float64
		var e [histAhead]float64
		slot := rng.IntN(ringSize)
		e1 := dcBlock(&x, &y1, &st1)
		dcBlock16N(&x, nil, 0, &h, slot, &e, &st2)
		y2 := (*[subLen]float64)(h[slot*subLen:])
		if math.Abs(e1-e[0]) > 1e-12*e1 || math.Abs(st1[1]-st2[1]) > 1e-9 || st1[0] != st2[0] {
			t.Fatalf("energy %g state %v, want %g %v", e[0], st2, e1, st1)
		}
		for i := range y1 {
			if math.Abs(y1[i]-y2[i]) > 1e-9 {
				t.Fatalf("y[%d] = %g, want %g", i, y2[i], y1[i])
			}
		}
	}
	// Several sub-blocks, with and without a first one: dcBlock16N is its one-sub-block calls one
	// after the other, to the bit, and its Go version agrees with it.
	for trial := 0; trial < 100; trial++ {
		var first *[subLen]int16
		k := rng.IntN(2)
		if k == 1 {
			first = new([subLen]int16)
			for i := range first {
				first[i] = int16(rng.IntN(65536) - 32768)
			}
		}
		n := rng.IntN(histAhead + 1 - k)
		x := make([]int16, n*subLen+rng.IntN(subLen))
		for i := range x {
			x[i] = int16(rng.IntN(65536) - 32768)
		}
		slot := rng.IntN(ringSize)
		st := [2]float64{float64(rng.IntN(65536) - 32768), (rng.Float64()*2 - 1) * 40000}
		st1, st2, st3 := st, st, st
		var h1, h2, h3 [ringSize * subLen]float64
		var e1, e2, e3 [histAhead]float64
		dcBlock16N(first, x, n, &h1, slot, &e1, &st1)
		dcBlock16NGo(first, x, n, &h3, slot, &e3, &st3)
		for i := range k + n {
			var e [histAhead]float64
			sub := first
			if i >= k {
				sub = (*[subLen]int16)(x[(i-k)*subLen:])
			}
			dcBlock16N(sub, nil, 0, &h2, (slot+i)&(ringSize-1), &e, &st2)
			e2[i] = e[0]
		}
		for i := range k + n {
			if e1[i] != e2[i] || math.Abs(e1[i]-e3[i]) > 1e-12*e1[i] {
				t.Fatalf("dcBlock16N: sub-block %d: energy %g (Go %g), want %g", i, e1[i], e3[i], e2[i])
			}
		}
		if h1 != h2 || st1 != st2 || st1[0] != st3[0] || math.Abs(st1[1]-st3[1]) > 1e-9 {
			t.Fatalf("dcBlock16N: outputs or state %v differ from one call per sub-block's %v (Go %v)", st1, st2, st3)
		}
		for i := range h1 {
			if math.Abs(h1[i]-h3[i]) > 1e-9 {
				t.Fatalf("dcBlock16N: hist[%d] = %g, Go %g", i, h1[i], h3[i])
			}
		}
	}
}
