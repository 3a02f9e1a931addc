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
		e1, e2 := bandBlockGo(&x, &s1), bandBlock(&x, &s2)
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
		var peak, peak2 [2]float64
		var arg, arg2 [4]int
		windowStepGo(&wr, &wi, &p, &in[0], &in[1], &out[0], &out[1], &peak, &arg)
		windowStep(&wr2, &wi2, &p2, &in[0], &in[1], &out[0], &out[1], &peak2, &arg2)
		_, _ = pk, pk2
		if wr != wr2 || wi != wi2 || p != p2 || peak != peak2 || arg != arg2 {
			t.Fatalf("windowStep: %v %v, want %v %v", peak2, arg2, peak, arg)
		}
	}
}

func TestDCBlockKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		var x [subLen]int16
		for i := range x {
			x[i] = int16(rng.IntN(65536) - 32768)
		}
		st1 := [2]float64{float64(rng.IntN(65536) - 32768), (rng.Float64()*2 - 1) * 40000}
		st2 := st1
		var y1, y2 [subLen]float64
		e1, e2 := dcBlock(&x, &y1, &st1), dcBlock16(&x, &y2, &st2)
		if math.Abs(e1-e2) > 1e-12*e1 || math.Abs(st1[1]-st2[1]) > 1e-9 || st1[0] != st2[0] {
			t.Fatalf("energy %g state %v, want %g %v", e2, st2, e1, st1)
		}
		for i := range y1 {
			if math.Abs(y1[i]-y2[i]) > 1e-9 {
				t.Fatalf("y[%d] = %g, want %g", i, y2[i], y1[i])
			}
		}
	}
}
