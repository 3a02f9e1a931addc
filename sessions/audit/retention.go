package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention is how long records are kept: Months calendar months, or Period when Months is 0.
// §7101 asks for at least 24 months, so Validate refuses less (a Period of at least 731 days,
// the longest 24 months can be).
type Retention struct {
	Months int
	Period time.Duration
}

// DefaultRetention is the §7101 minimum, 24 calendar months.
var DefaultRetention = Retention{Months: 24}

const minRetentionPeriod = 731 * 24 * time.Hour

// ParseRetention reads "<n>mo" (calendar months), "<n>y" (years of 12 months) or a Go duration
// ("17544h"), as the audit_retention configuration key holds it. The result is validated.
func ParseRetention(s string) (Retention, error) {
	s = strings.TrimSpace(s)
	var r Retention
	switch {
	case strings.HasSuffix(s, "mo"), strings.HasSuffix(s, "y"):
		num, mult := strings.TrimSuffix(s, "mo"), 1
		if strings.HasSuffix(s, "y") {
			num, mult = strings.TrimSuffix(s, "y"), 12
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > 1200 {
			return Retention{}, fmt.Errorf("%w: retention %q: want <n>mo, <n>y or a duration", ErrInvalidConfig, s)
		}
		r.Months = n * mult
	default:
		d, err := time.ParseDuration(s)
		if err != nil {
			return Retention{}, fmt.Errorf("%w: retention %q: want <n>mo, <n>y or a duration", ErrInvalidConfig, s)
		}
		r.Period = d
	}
	return r, r.Validate()
}

// Validate refuses a retention shorter than 24 months.
func (r Retention) Validate() error {
	switch {
	case r.Months < 0 || r.Period < 0:
		return fmt.Errorf("%w: retention %s is negative", ErrInvalidConfig, r)
	case r.Months > 0 && r.Months < 24, r.Months == 0 && r.Period < minRetentionPeriod:
		return fmt.Errorf("%w: retention %s: §7101 requires at least 24 months", ErrInvalidConfig, r)
	}
	return nil
}

// Cutoff returns the time before which a record has expired at now.
func (r Retention) Cutoff(now time.Time) time.Time {
	if r.Months > 0 {
		return now.UTC().AddDate(0, -r.Months, 0)
	}
	return now.UTC().Add(-r.Period)
}

func (r Retention) String() string {
	if r.Months > 0 || r.Period == 0 {
		return strconv.Itoa(r.Months) + "mo"
	}
	return r.Period.String()
}
