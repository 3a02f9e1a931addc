package kba

import "errors"

var (
	// ErrInvalidInput wraps every rejection of a caller's entry by Normalize: wrong length, a
	// character other than a digit (and one trailing '#'), or a date that is not on the calendar.
	// The message names the factor and the rule, never the digits.
	ErrInvalidInput = errors.New("kba: invalid input")
	// ErrUnknownFactor is returned for a factor id kba does not define.
	ErrUnknownFactor = errors.New("kba: unknown factor")
	// ErrUnknownRequest is returned by ParseRequest and Policies.For for a request type that is
	// not one of the seven Callproof knows.
	ErrUnknownRequest = errors.New("kba: unknown request")
	// ErrInvalidDirectory wraps every problem ParseDirectory finds in a directory file. Messages
	// name the customer (index and id) and the field, never the value.
	ErrInvalidDirectory = errors.New("kba: invalid directory")
	// ErrInvalidPolicy wraps every problem Policies.Validate and Policy.Excluding find.
	ErrInvalidPolicy = errors.New("kba: invalid policy")
	// ErrInvalidLockout is returned by LockoutRule.Validate.
	ErrInvalidLockout = errors.New("kba: invalid lockout rule")
	// ErrOTPLength is returned by GenerateOTP for a length outside 6..10 digits.
	ErrOTPLength = errors.New("kba: passcode length must be 6 to 10 digits")
)
