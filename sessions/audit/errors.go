package audit

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidRecord wraps every reason Record.Validate refuses a record. Messages name the
	// field, never its value.
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrClosed is returned by Append and Prune after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrUnavailable is returned (wrapped) when the file cannot be written or synced. The Log
	// then refuses every further append until it is reopened, because what reached the disk is
	// unknown; callers fail closed.
	ErrUnavailable = errors.New("audit: log unavailable")
	// ErrLocked is returned by Open when another process holds the log.
	ErrLocked = errors.New("audit: log is locked by another process")
	// ErrInvalidConfig wraps every problem with an option or a retention period.
	ErrInvalidConfig = errors.New("audit: invalid configuration")

	// ErrCorrupt is matched by every *LineError: the file is not a valid chain.
	ErrCorrupt = errors.New("audit: corrupt log")
	// ErrBadJSON: the line is not one JSON object of the record or checkpoint shape.
	ErrBadJSON = errors.New("audit: malformed line")
	// ErrNotCanonical: the line decodes, but is not byte for byte its canonical encoding
	// (extra or reordered fields, escapes, a time not in UTC...).
	ErrNotCanonical = errors.New("audit: line not in canonical form")
	// ErrTampered: the line's hash is not SHA-256(prev || canonical record).
	ErrTampered = errors.New("audit: hash does not match the line")
	// ErrBrokenLink: the line's prev is not the previous line's hash.
	ErrBrokenLink = errors.New("audit: prev does not match the previous line's hash")
	// ErrTruncated: the last line has no newline (a write cut short).
	ErrTruncated = errors.New("audit: last line truncated")
	// ErrLineTooLong: the line is longer than MaxLineBytes.
	ErrLineTooLong = errors.New("audit: line too long")
	// ErrMisplacedCheckpoint: a checkpoint anywhere but line 1.
	ErrMisplacedCheckpoint = errors.New("audit: checkpoint not on the first line")
)

// LineError says which line of an audit file is bad and why. Err is one of ErrBadJSON,
// ErrNotCanonical, ErrTampered, ErrBrokenLink, ErrTruncated, ErrLineTooLong,
// ErrMisplacedCheckpoint, or ErrInvalidRecord (wrapped); every LineError matches ErrCorrupt.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Offset is the byte offset at which the line starts.
	Offset int64
	Err    error
}

func (e *LineError) Error() string { return fmt.Sprintf("audit: line %d: %v", e.Line, e.Err) }

// Unwrap returns the reason.
func (e *LineError) Unwrap() error { return e.Err }

// Is matches ErrCorrupt.
func (e *LineError) Is(target error) bool { return target == ErrCorrupt }
