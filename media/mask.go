package media

import "strings"

// MaskPhone hides all but the last four digits of a phone number ("+14155550100" becomes
// "***0100"). Logs, metrics and agent messages show phone numbers only in this form.
func MaskPhone(number string) string {
	var digits []byte
	for i := 0; i < len(number); i++ {
		if c := number[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) == 0 {
		return ""
	}
	if len(digits) <= 4 {
		return strings.Repeat("*", len(digits))
	}
	return "***" + string(digits[len(digits)-4:])
}
