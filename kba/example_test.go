package kba_test

import (
	"fmt"

	"github.com/callproof/callproof/kba"
)

// A caller asks for the specific pieces of their data, keys three answers and then refuses the
// declaration: §7024(a) handles the request as one for categories instead.
func ExampleDecide() {
	policies := kba.DefaultPolicies()
	p, _ := policies.For(kba.RequestKnowSpecific)
	ada, _ := kba.DemoDirectory().ByAccount("40001234")

	keyed := map[kba.Factor]string{kba.FactorDOB: "07141985", kba.FactorZip: "94107", kba.FactorSSNLast4: "6789"}
	results := map[kba.Factor]bool{}
	for _, f := range p.Asked() {
		norm, err := kba.Normalize(f, keyed[f])
		results[f] = err == nil && kba.Match(ada, f, norm)
	}
	out := kba.Decide(p, results, false)
	fmt.Println(out.Request, out.Verified, out.Reason)

	if fb, ok := policies.Fallback(out); ok {
		fmt.Println(fb.Request, fb.Verified, fb.Level.ACR(), kba.AMR(fb.Passed))
	}
	// Output:
	// know_specific false declaration_refused
	// know_categories true urn:callproof:ccpa:reasonable [kba]
}

func ExampleGenerateOTP() {
	code, err := kba.GenerateOTP(nil, 6) // crypto/rand
	if err != nil {
		panic(err)
	}
	fmt.Println(len(code), kba.CheckOTP(code, code+"#"), kba.Secret(code))
	// Output: 6 true [redacted]
}
