package kba

// RFC 8176 §2 authentication method reference values kba can vouch for.
const (
	amrKBA = "kba" // knowledge-based authentication
	amrPIN = "pin" // personal identification number or pattern
	amrOTP = "otp" // one-time password
	amrMFA = "mfa" // multiple-factor authentication
)

// AMR returns the RFC 8176 "amr" values for the factors that passed, in the order kba, pin,
// otp, mfa, each at most once (nil for none; unknown factors are ignored):
//
//   - dob, zip, ssn_last4, last_payment → "kba";
//   - pin → "pin";
//   - otp → "otp".
//
// "mfa" is added only when factors from two different NIST categories passed: something you
// know (kba or pin) and something you have (otp, possession of the contact on file). kba and pin
// together are still one category, so they are not "mfa". How the passcode travelled ("sms",
// "tel") and channel facts ("mca", "rba") are the caller's to add: kba does not know them.
func AMR(factors []Factor) []string {
	var kba, pin, otp bool
	for _, f := range factors {
		switch specs[f].AMR {
		case amrKBA:
			kba = true
		case amrPIN:
			pin = true
		case amrOTP:
			otp = true
		}
	}
	var out []string
	if kba {
		out = append(out, amrKBA)
	}
	if pin {
		out = append(out, amrPIN)
	}
	if otp {
		out = append(out, amrOTP)
	}
	if (kba || pin) && otp {
		out = append(out, amrMFA)
	}
	return out
}
