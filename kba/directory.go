package kba

import (
	"bytes"
	_ "embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
)

// Customer is one record of the directory: who the customer is, how to reach them, and the data
// points a caller is verified against. Every field but ID, Name, Phones, Emails and Locale is a
// secret: it never goes to a log, an error message, a token or an agent screen.
//
// A Customer formats as its id only (fmt, every verb) and logs as its id (zap), so printing one
// by mistake does not leak it. Customers handed out by a Directory are shared; do not modify
// them.
type Customer struct {
	// ID is the stable customer id, the token's "sub": 1 to 64 letters, digits, '_', '-', '.'.
	ID string `yaml:"id"`
	// Name is the display name (optional).
	Name string `yaml:"name,omitempty"`
	// Account is the account number the caller keys: 4 to 16 digits, unique in the directory.
	Account string `yaml:"account"`
	// Phones are the numbers on file, E.164 ("+14155550100"). OTPs go only to these.
	Phones []string `yaml:"phones,omitempty"`
	// Emails are the addresses on file (plain addr-spec).
	Emails []string `yaml:"emails,omitempty"`
	// Locale is the customer's preferred prompt language, "en-US" or "es-US" (optional; an
	// addition to the DESIGN.md format).
	Locale string `yaml:"locale,omitempty"`
	// DOB is the date of birth, YYYY-MM-DD, a real calendar date in 1900..2099.
	DOB string `yaml:"dob"`
	// Zip is the 5-digit ZIP code.
	Zip string `yaml:"zip"`
	// SSNLast4 is the last four digits of the SSN. Matched, never read back (§7024(d)).
	SSNLast4 string `yaml:"ssn_last4"`
	// PIN is the 4 to 8 digit phone PIN.
	PIN string `yaml:"pin"`
	// LastPaymentCents is the amount of the last payment in cents (12550 is $125.50), 0 to
	// MaxLastPaymentCents. Required in a directory file, so an absent value never matches 0.
	LastPaymentCents int64 `yaml:"last_payment_cents"`
	// TOTPSecret is the RFC 6238 shared secret, base32 (RFC 4648 §6), optional.
	TOTPSecret string `yaml:"totp_secret,omitempty"`
}

var (
	_ fmt.Formatter           = Customer{}
	_ zapcore.ObjectMarshaler = Customer{}
)

// String returns "customer <id>".
func (c Customer) String() string { return "customer " + c.ID }

// Format prints the customer's id only, whatever the verb, so a stray %v or %+v cannot leak a
// data point.
func (c Customer) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "kba.Customer{ID:%q}", c.ID) }

// MarshalLogObject logs the customer's id only.
func (c Customer) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("id", c.ID)
	return nil
}

// TOTPKey decodes TOTPSecret (case-insensitive, '=' padding optional). It returns nil and no
// error when the customer has no TOTP secret.
func (c *Customer) TOTPKey() ([]byte, error) {
	if c.TOTPSecret == "" {
		return nil, nil
	}
	return decodeBase32(c.TOTPSecret)
}

// MinTOTPKeyBytes is the shortest TOTP secret accepted: 80 bits. RFC 4226 §4 asks for 128 and
// recommends 160; 80 is the floor because the common demo secret (and many issued ones) is 80.
const MinTOTPKeyBytes = 10

// MaxLastPaymentCents is the largest last payment a caller can key (15 digits).
const MaxLastPaymentCents = 999_999_999_999_999

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

func decodeBase32(s string) ([]byte, error) {
	return base32NoPad.DecodeString(strings.ToUpper(strings.TrimRight(s, "=")))
}

// Directory is a validated, read-only set of customers, indexed by id and by account number.
// It is safe for concurrent use.
type Directory struct {
	customers []*Customer
	byID      map[string]*Customer
	byAccount map[string]*Customer
}

// ByAccount finds the customer with this account number (digits only, no '#').
func (d *Directory) ByAccount(account string) (*Customer, bool) {
	if d == nil {
		return nil, false
	}
	c, ok := d.byAccount[account]
	return c, ok
}

// ByID finds the customer with this id.
func (d *Directory) ByID(id string) (*Customer, bool) {
	if d == nil {
		return nil, false
	}
	c, ok := d.byID[id]
	return c, ok
}

// Customers lists the customers in file order. The slice is the caller's; the customers are
// shared and must not be modified.
func (d *Directory) Customers() []*Customer {
	if d == nil {
		return nil
	}
	return append([]*Customer(nil), d.customers...)
}

// Len is the number of customers.
func (d *Directory) Len() int {
	if d == nil {
		return 0
	}
	return len(d.customers)
}

//go:embed demo_directory.yaml
var demoYAML string

// DemoDirectoryYAML is the embedded demo directory file (cus_ada first, as in DESIGN.md). It is
// a copy: changing it changes nothing DemoDirectory returns.
var DemoDirectoryYAML = []byte(demoYAML)

var demoDirectory = sync.OnceValue(func() *Directory {
	d, err := ParseDirectory([]byte(demoYAML))
	if err != nil {
		panic("kba: embedded demo directory: " + err.Error()) // caught by TestDemoDirectory
	}
	return d
})

// DemoDirectory returns the embedded demo directory, parsed once and shared.
func DemoDirectory() *Directory { return demoDirectory() }

// rawDirectory and rawCustomer are what the YAML decodes into: strings for every scalar (so a
// wrongly typed value never ends up quoted in a decoder error) and a node for the amount.
type rawDirectory struct {
	Customers []rawCustomer `yaml:"customers"`
}

type rawCustomer struct {
	ID               string    `yaml:"id"`
	Name             string    `yaml:"name"`
	Account          string    `yaml:"account"`
	Phones           []string  `yaml:"phones"`
	Emails           []string  `yaml:"emails"`
	Locale           string    `yaml:"locale"`
	DOB              string    `yaml:"dob"`
	Zip              string    `yaml:"zip"`
	SSNLast4         string    `yaml:"ssn_last4"`
	PIN              string    `yaml:"pin"`
	LastPaymentCents yaml.Node `yaml:"last_payment_cents"`
	TOTPSecret       string    `yaml:"totp_secret"`
}

// maxProblems caps how many problems one ParseDirectory error lists.
const maxProblems = 20

// ParseDirectory parses and validates a directory file (the YAML format of DESIGN.md; unknown
// fields are errors). It checks that ids and account numbers are unique; that account numbers
// are 4 to 16 digits, phones E.164, dob a real date YYYY-MM-DD, zip 5 digits, ssn_last4 4
// digits, pin 4 to 8 digits, last_payment_cents a whole number from 0 to MaxLastPaymentCents,
// and totp_secret (when present) base32 of at least MinTOTPKeyBytes. Required: id, account, dob,
// zip, ssn_last4, pin, last_payment_cents.
//
// Every error wraps ErrInvalidDirectory and lists up to 20 problems, each naming the customer
// (index and id) and the field. No message contains a field's value.
func ParseDirectory(data []byte) (*Directory, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw rawDirectory
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrInvalidDirectory)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidDirectory, yamlProblem(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalidDirectory)
	}
	if len(raw.Customers) == 0 {
		return nil, fmt.Errorf("%w: no customers", ErrInvalidDirectory)
	}

	d := &Directory{
		customers: make([]*Customer, 0, len(raw.Customers)),
		byID:      make(map[string]*Customer, len(raw.Customers)),
		byAccount: make(map[string]*Customer, len(raw.Customers)),
	}
	type owner struct {
		index int
		id    string
	}
	var problems []string
	ids := map[string]owner{}
	accounts := map[string]owner{}
	for i := range raw.Customers {
		c, bad := validateCustomer(i, &raw.Customers[i])
		problems = append(problems, bad...)
		if c == nil {
			continue
		}
		who := customerRef(i, c.ID)
		if o, dup := ids[c.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s: id: duplicate of customers[%d]", who, o.index))
			continue
		}
		if o, dup := accounts[c.Account]; dup {
			problems = append(problems, fmt.Sprintf("%s: account: same account number as %s", who, customerRef(o.index, o.id)))
			continue
		}
		ids[c.ID] = owner{i, c.ID}
		accounts[c.Account] = owner{i, c.ID}
		d.customers = append(d.customers, c)
		d.byID[c.ID] = c
		d.byAccount[c.Account] = c
	}
	if len(problems) > 0 {
		if len(problems) > maxProblems {
			problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", len(problems)-maxProblems))
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidDirectory, strings.Join(problems, "; "))
	}
	return d, nil
}

// customerRef names a customer in an error: its index, and its id when the id is valid.
func customerRef(i int, id string) string {
	if validID(id) {
		return fmt.Sprintf("customers[%d] (%s)", i, id)
	}
	return fmt.Sprintf("customers[%d]", i)
}

// validateCustomer checks one raw record. It returns the customer when every field is valid,
// and the problems otherwise.
func validateCustomer(i int, r *rawCustomer) (*Customer, []string) {
	who := customerRef(i, r.ID)
	var problems []string
	bad := func(field, rule string) { problems = append(problems, who+": "+field+": "+rule) }

	switch {
	case r.ID == "":
		bad("id", "required")
	case !validID(r.ID):
		bad("id", "must be 1 to 64 letters, digits, '_', '-' or '.'")
	}
	if len(r.Name) > 200 || !utf8.ValidString(r.Name) || strings.IndexFunc(r.Name, unicode.IsControl) >= 0 {
		bad("name", "must be at most 200 bytes of printable UTF-8")
	}
	switch {
	case r.Account == "":
		bad("account", "required")
	case !digitsBetween(r.Account, 4, 16):
		bad("account", "must be 4 to 16 digits")
	}
	for j, p := range r.Phones {
		if !validE164(p) {
			bad(fmt.Sprintf("phones[%d]", j), "must be E.164: '+' and 7 to 15 digits, no leading 0")
		}
	}
	for j, e := range r.Emails {
		if !validEmail(e) {
			bad(fmt.Sprintf("emails[%d]", j), "must be a plain address like name@example.com")
		}
	}
	if r.Locale != "" && r.Locale != "en-US" && r.Locale != "es-US" {
		bad("locale", "must be en-US or es-US")
	}
	switch {
	case r.DOB == "":
		bad("dob", "required")
	case !validISODate(r.DOB):
		bad("dob", "must be a real date YYYY-MM-DD between 1900 and 2099")
	}
	switch {
	case r.Zip == "":
		bad("zip", "required")
	case !digitsBetween(r.Zip, 5, 5):
		bad("zip", "must be 5 digits")
	}
	switch {
	case r.SSNLast4 == "":
		bad("ssn_last4", "required")
	case !digitsBetween(r.SSNLast4, 4, 4):
		bad("ssn_last4", "must be 4 digits")
	}
	switch {
	case r.PIN == "":
		bad("pin", "required")
	case !digitsBetween(r.PIN, 4, 8):
		bad("pin", "must be 4 to 8 digits")
	}
	cents, rule := parseCents(&r.LastPaymentCents)
	if rule != "" {
		bad("last_payment_cents", rule)
	}
	if r.TOTPSecret != "" {
		key, err := decodeBase32(r.TOTPSecret)
		switch {
		case err != nil:
			bad("totp_secret", "must be base32 (A-Z, 2-7, optional '=' padding)")
		case len(key) < MinTOTPKeyBytes:
			bad("totp_secret", fmt.Sprintf("must decode to at least %d bytes", MinTOTPKeyBytes))
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &Customer{
		ID: r.ID, Name: r.Name, Account: r.Account,
		Phones: append([]string(nil), r.Phones...), Emails: append([]string(nil), r.Emails...),
		Locale: r.Locale, DOB: r.DOB, Zip: r.Zip, SSNLast4: r.SSNLast4, PIN: r.PIN,
		LastPaymentCents: cents, TOTPSecret: r.TOTPSecret,
	}, nil
}

// parseCents reads last_payment_cents: a plain YAML integer, digits only. It returns the rule
// broken, or "".
func parseCents(n *yaml.Node) (int64, string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case n.Kind == 0:
		return 0, "required"
	case n.Kind != yaml.ScalarNode:
		return 0, "must be a number"
	case n.ShortTag() == "!!float":
		return 0, "must be whole cents, e.g. 12550 for $125.50"
	case n.ShortTag() != "!!int" || !digitsBetween(n.Value, 1, 15):
		return 0, fmt.Sprintf("must be a whole number of cents from 0 to %d", int64(MaxLastPaymentCents))
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, "must be a whole number of cents"
	}
	return v, ""
}

// yamlProblem turns a decoder error into a message that cannot quote a value: the decoder puts
// offending scalars between backticks, and names internal types.
func yamlProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = backticked.ReplaceAllString(msg, "value")
	msg = unknownField.ReplaceAllString(msg, `unknown field "$1"`)
	msg = strings.NewReplacer("[]kba.rawCustomer", "a list of customers", "kba.rawCustomer", "a customer",
		"kba.rawDirectory", "a directory", "yaml.Node", "a number", "[]string", "a list of strings",
		"into string", "into a string").Replace(msg)
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

var (
	backticked   = regexp.MustCompile("`[^`]*`")
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

func validE164(s string) bool { return e164.MatchString(s) }

func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// digitsBetween reports whether s is min to max ASCII digits.
func digitsBetween(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
