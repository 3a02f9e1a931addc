package kba_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/callproof/callproof/kba"
)

// ada is cus_ada exactly as DESIGN.md shows it.
const ada = `
  - id: cus_ada
    name: Ada Lopez
    account: "40001234"
    phones: ["+14155550100"]
    emails: ["ada@example.com"]
    dob: "1985-07-14"
    zip: "94107"
    ssn_last4: "6789"
    pin: "2468"
    last_payment_cents: 12550
    totp_secret: "JBSWY3DPEHPK3PXP"   # optional, base32
`

func dir(entries ...string) []byte { return []byte("customers:\n" + strings.Join(entries, "")) }

// withField returns ada with one field's line replaced, or removed when line is "" (an empty
// id for the id field, which opens the list item); a field ada lacks is appended.
func withField(field, line string) string { return edit(ada, field, line) }

func edit(base, field, line string) string {
	var out []string
	found := false
	for _, l := range strings.Split(base, "\n") {
		trimmed := strings.TrimPrefix(strings.TrimSpace(l), "- ")
		if !strings.HasPrefix(trimmed, field+":") {
			out = append(out, l)
			continue
		}
		found = true
		switch {
		case field == "id" && line == "":
			out = append(out, `  - id: ""`)
		case field == "id":
			out = append(out, "  - "+line)
		case line != "":
			out = append(out, "    "+line)
		}
	}
	if !found {
		out = append(out[:len(out)-1], "    "+line, "")
	}
	return strings.Join(out, "\n")
}

// without returns ada without the given fields.
func without(fields ...string) string {
	s := ada
	for _, f := range fields {
		s = edit(s, f, "")
	}
	return s
}

func TestDemoDirectory(t *testing.T) {
	d := kba.DemoDirectory()
	if d.Len() < 3 {
		t.Fatalf("demo directory has %d customers, want at least 3", d.Len())
	}
	cs := d.Customers()
	want := kba.Customer{
		ID: "cus_ada", Name: "Ada Lopez", Account: "40001234", Phones: []string{"+14155550100"},
		Emails: []string{"ada@example.com"}, DOB: "1985-07-14", Zip: "94107", SSNLast4: "6789",
		PIN: "2468", LastPaymentCents: 12550, TOTPSecret: "JBSWY3DPEHPK3PXP",
	}
	if !equalCustomer(*cs[0], want) {
		t.Errorf("first demo customer differs from DESIGN.md's cus_ada")
	}
	for _, id := range []string{"cus_ada", "cus_ben", "cus_chen"} {
		c, ok := d.ByID(id)
		if !ok {
			t.Fatalf("demo directory lacks %s", id)
		}
		if got, ok := d.ByAccount(c.Account); !ok || got != c {
			t.Errorf("ByAccount(%s's account) does not find it", id)
		}
	}
	if ben, _ := d.ByID("cus_ben"); ben.Locale != "es-US" {
		t.Errorf("cus_ben locale = %q, want es-US", ben.Locale)
	}
	// DemoDirectoryYAML is the embedded file, and a copy.
	again, err := kba.ParseDirectory(kba.DemoDirectoryYAML)
	if err != nil || again.Len() != d.Len() {
		t.Fatalf("DemoDirectoryYAML does not parse to the demo directory: %v", err)
	}
	kba.DemoDirectoryYAML[0] ^= 0xff
	defer func() { kba.DemoDirectoryYAML[0] ^= 0xff }()
	if kba.DemoDirectory().Len() != d.Len() {
		t.Error("changing DemoDirectoryYAML changed the demo directory")
	}
	// Customers returns a fresh slice.
	cs[0] = nil
	if d.Customers()[0] == nil {
		t.Error("Customers shares its slice")
	}
}

func equalCustomer(a, b kba.Customer) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Account == b.Account && fmt.Sprint(a.Phones) == fmt.Sprint(b.Phones) &&
		strings.Join(a.Emails, ",") == strings.Join(b.Emails, ",") && a.Locale == b.Locale && a.DOB == b.DOB &&
		a.Zip == b.Zip && a.SSNLast4 == b.SSNLast4 && a.PIN == b.PIN && a.LastPaymentCents == b.LastPaymentCents &&
		a.TOTPSecret == b.TOTPSecret
}

func TestParseDirectoryGood(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want func(*testing.T, *kba.Directory)
	}{
		{"design example", dir(ada), func(t *testing.T, d *kba.Directory) {
			c, ok := d.ByAccount("40001234")
			if !ok || c.ID != "cus_ada" || c.LastPaymentCents != 12550 || c.DOB != "1985-07-14" {
				t.Errorf("cus_ada not parsed as written")
			}
		}},
		{"unquoted scalars keep their digits", dir(strings.NewReplacer(`"40001234"`, "0040001234", `"94107"`, "02134",
			`"6789"`, "0089", `"2468"`, "0007", `"1985-07-14"`, "1985-07-14").Replace(ada)), func(t *testing.T, d *kba.Directory) {
			c, ok := d.ByAccount("0040001234")
			if !ok || c.Zip != "02134" || c.SSNLast4 != "0089" || c.PIN != "0007" || c.DOB != "1985-07-14" {
				t.Errorf("leading zeros or dates lost in unquoted scalars")
			}
		}},
		{"optional fields absent", dir(without("name", "phones", "emails", "totp_secret")),
			func(t *testing.T, d *kba.Directory) {
				c, _ := d.ByID("cus_ada")
				if k, err := c.TOTPKey(); k != nil || err != nil {
					t.Errorf("TOTPKey without a secret = %v, %v", k, err)
				}
				if c.Name != "" || c.Phones != nil || c.Emails != nil {
					t.Errorf("absent optional fields not empty")
				}
			}},
		{"zero last payment, leap day, lower-case padded base32", dir(withField("last_payment_cents", "last_payment_cents: 0") +
			strings.NewReplacer("cus_ada", "cus_leap", `"40001234"`, `"1234"`, `"1985-07-14"`, `"2000-02-29"`,
				`"JBSWY3DPEHPK3PXP"`, `"jbswy3dpehpk3pxp======"`).Replace(ada)), func(t *testing.T, d *kba.Directory) {
			c, _ := d.ByID("cus_leap")
			k, err := c.TOTPKey()
			if err != nil || string(k) != "Hello!\xde\xad\xbe\xef" {
				t.Errorf("TOTPKey = %q, %v", k, err)
			}
			if a, _ := d.ByID("cus_ada"); a.LastPaymentCents != 0 {
				t.Errorf("last payment 0 not kept")
			}
		}},
		{"anchors and aliases", dir(strings.Replace(ada, "last_payment_cents: 12550", "last_payment_cents: &amt 12550", 1) +
			strings.NewReplacer("cus_ada", "cus_twin", `"40001234"`, `"40001235"`, "last_payment_cents: 12550", "last_payment_cents: *amt").Replace(ada)),
			func(t *testing.T, d *kba.Directory) {
				if c, _ := d.ByID("cus_twin"); c.LastPaymentCents != 12550 {
					t.Errorf("alias not followed")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := kba.ParseDirectory(tt.data)
			if err != nil {
				t.Fatalf("ParseDirectory: %v", err)
			}
			tt.want(t, d)
		})
	}
}

func TestParseDirectoryInvalid(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		want   []string // substrings of the error
		secret string   // must not appear in the error
	}{
		{"empty", []byte(""), []string{"empty file"}, ""},
		{"no customers", []byte("customers: []\n"), []string{"no customers"}, ""},
		{"not yaml", []byte("customers:\n  - id: \"x\n"), []string{"line"}, ""},
		{"two documents", []byte("customers:" + ada + "---\ncustomers: []\n"), []string{"more than one YAML document"}, ""},
		{"unknown top-level field", []byte("clients: []\n"), []string{`unknown field "clients"`}, ""},
		{"unknown customer field", dir(withField("pinn", `pinn: "97531"`)), []string{`unknown field "pinn"`}, "97531"},
		{"duplicate key", dir(ada + "    pin: \"97531\"\n"), []string{`"pin" already defined`}, "97531"},
		{"customers not a list", []byte("customers: \"s3cr3tvalue\"\n"), []string{"list of customers"}, "s3cr3tvalue"},
		{"duplicate id", dir(ada, strings.Replace(ada, `"40001234"`, `"40001235"`, 1)), []string{"customers[1] (cus_ada): id: duplicate of customers[0]"}, ""},
		{"duplicate account", dir(ada, strings.Replace(ada, "cus_ada", "cus_bob", 1)), []string{"customers[1] (cus_bob): account: same account number as customers[0] (cus_ada)"}, "40001234"},
		{"id missing", dir(withField("id", "")), []string{"customers[0]: id: required"}, ""},
		{"id bad", dir(withField("id", `id: "cus ada/1"`)), []string{"customers[0]: id: must be"}, "cus ada/1"},
		{"name control char", dir(withField("name", `name: "Ada\u0007"`)), []string{"(cus_ada): name:"}, ""},
		{"account missing", dir(withField("account", "")), []string{"(cus_ada): account: required"}, ""},
		{"account short", dir(withField("account", `account: "987"`)), []string{"(cus_ada): account: must be 4 to 16 digits"}, "987"},
		{"account long", dir(withField("account", `account: "98765432109876543"`)), []string{"account: must be 4 to 16 digits"}, "98765432109876543"},
		{"account letters", dir(withField("account", `account: "4000X234"`)), []string{"account: must be 4 to 16 digits"}, "4000X234"},
		{"phone not E.164", dir(withField("phones", `phones: ["+14155550100", "4155559876"]`)), []string{"(cus_ada): phones[1]: must be E.164"}, "4155559876"},
		{"phone leading zero", dir(withField("phones", `phones: ["+04155559876"]`)), []string{"phones[0]: must be E.164"}, "4155559876"},
		{"phone too long", dir(withField("phones", `phones: ["+1415555987654321"]`)), []string{"phones[0]: must be E.164"}, "1415555987654321"},
		{"email bad", dir(withField("emails", `emails: ["Ada <ada.private@example.com>"]`)), []string{"(cus_ada): emails[0]:"}, "ada.private"},
		{"locale bad", dir(withField("locale", `locale: fr-FR`)), []string{"(cus_ada): locale: must be en-US or es-US"}, ""},
		{"dob missing", dir(withField("dob", "")), []string{"(cus_ada): dob: required"}, ""},
		{"dob format", dir(withField("dob", `dob: "07/14/1985"`)), []string{"(cus_ada): dob: must be a real date"}, "07/14/1985"},
		{"dob not a date", dir(withField("dob", `dob: "1985-02-30"`)), []string{"dob: must be a real date"}, "1985-02-30"},
		{"dob not a leap year", dir(withField("dob", `dob: "1900-02-29"`)), []string{"dob: must be a real date"}, "1900-02-29"},
		{"dob too old", dir(withField("dob", `dob: "1899-12-31"`)), []string{"dob: must be a real date"}, "1899-12-31"},
		{"zip missing", dir(withField("zip", "")), []string{"(cus_ada): zip: required"}, ""},
		{"zip+4", dir(withField("zip", `zip: "94107-1234"`)), []string{"(cus_ada): zip: must be 5 digits"}, "94107-1234"},
		{"zip short", dir(withField("zip", `zip: "9410"`)), []string{"zip: must be 5 digits"}, "9410"},
		{"ssn missing", dir(withField("ssn_last4", "")), []string{"(cus_ada): ssn_last4: required"}, ""},
		{"ssn long", dir(withField("ssn_last4", `ssn_last4: "56789"`)), []string{"(cus_ada): ssn_last4: must be 4 digits"}, "56789"},
		{"ssn letters", dir(withField("ssn_last4", `ssn_last4: "67a9"`)), []string{"ssn_last4: must be 4 digits"}, "67a9"},
		{"pin missing", dir(withField("pin", "")), []string{"(cus_ada): pin: required"}, ""},
		{"pin short", dir(withField("pin", `pin: "135"`)), []string{"(cus_ada): pin: must be 4 to 8 digits"}, "135"},
		{"pin long", dir(withField("pin", `pin: "135792468"`)), []string{"pin: must be 4 to 8 digits"}, "135792468"},
		{"pin not digits", dir(withField("pin", `pin: "13*7"`)), []string{"pin: must be 4 to 8 digits"}, "13*7"},
		{"last payment missing", dir(withField("last_payment_cents", "")), []string{"(cus_ada): last_payment_cents: required"}, ""},
		{"last payment negative", dir(withField("last_payment_cents", "last_payment_cents: -97531")), []string{"(cus_ada): last_payment_cents: must be a whole number"}, "97531"},
		{"last payment dollars", dir(withField("last_payment_cents", "last_payment_cents: 975.31")), []string{"last_payment_cents: must be whole cents"}, "975.31"},
		{"last payment string", dir(withField("last_payment_cents", `last_payment_cents: "97531x"`)), []string{"last_payment_cents: must be a whole number"}, "97531x"},
		{"last payment hex", dir(withField("last_payment_cents", `last_payment_cents: 0x97531`)), []string{"last_payment_cents: must be a whole number"}, "0x97531"},
		{"last payment list", dir(withField("last_payment_cents", `last_payment_cents: [97531]`)), []string{"last_payment_cents: must be a number"}, "97531"},
		{"last payment too big", dir(withField("last_payment_cents", `last_payment_cents: 9753197531975319`)), []string{"last_payment_cents: must be a whole number"}, "9753197531975319"},
		{"totp not base32", dir(withField("totp_secret", `totp_secret: "JBSWY3DPEHPK3PX1"`)), []string{"(cus_ada): totp_secret: must be base32"}, "JBSWY3DPEHPK3PX1"},
		{"totp too short", dir(withField("totp_secret", `totp_secret: "JBSWY3DP"`)), []string{"(cus_ada): totp_secret: must decode to at least 10 bytes"}, "JBSWY3DP"},
		{"wrong type for a string", dir(withField("zip", `zip: {code: "97531"}`)), []string{"line"}, "97531"},
		{"several problems at once", dir(withField("pin", `pin: "1"`), strings.NewReplacer("cus_ada", "cus_two", `"94107"`, `"9"`).Replace(ada)),
			[]string{"customers[0] (cus_ada): pin:", "customers[1] (cus_two): zip:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := kba.ParseDirectory(tt.data)
			if err == nil {
				t.Fatalf("ParseDirectory succeeded with %d customers, want an error", d.Len())
			}
			if !errors.Is(err, kba.ErrInvalidDirectory) {
				t.Errorf("error %v does not wrap ErrInvalidDirectory", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q echoes the value %q", err, tt.secret)
			}
			for _, internal := range []string{"rawCustomer", "rawDirectory", "yaml.Node"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("error %q names internal type %s", err, internal)
				}
			}
		})
	}
}

func TestParseDirectoryCapsProblems(t *testing.T) {
	var entries []string
	for i := range 30 {
		entries = append(entries, fmt.Sprintf("  - id: c%d\n    account: \"1\"\n    dob: \"x\"\n", i))
	}
	_, err := kba.ParseDirectory(dir(entries...))
	if err == nil || !strings.Contains(err.Error(), "more") || strings.Count(err.Error(), ";") > 21 {
		t.Fatalf("error not capped: %v", err)
	}
}

func TestDirectoryNil(t *testing.T) {
	var d *kba.Directory
	if _, ok := d.ByAccount("40001234"); ok {
		t.Error("nil directory found an account")
	}
	if _, ok := d.ByID("cus_ada"); ok || d.Customers() != nil || d.Len() != 0 {
		t.Error("nil directory is not empty")
	}
}

func TestCustomerFormatRedacts(t *testing.T) {
	c, _ := kba.DemoDirectory().ByID("cus_ada")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, arg := range []any{c, *c} {
			out := fmt.Sprintf(verb, arg)
			if !strings.Contains(out, "cus_ada") {
				t.Errorf("%s of customer = %q: want the id", verb, out)
			}
			for _, secret := range []string{"6789", "2468", "94107", "1985", "12550", "JBSWY3DP", "40001234"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of customer = %q: leaks %s", verb, out, secret)
				}
			}
		}
	}
	var nilc *kba.Customer
	if got := fmt.Sprint(nilc); got != "<nil>" {
		t.Errorf("nil customer prints %q", got)
	}
}
