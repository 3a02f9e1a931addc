// Package spandsp runs spandsp's DTMF receiver as a black-box reference for the comparison
// tests of media/dtmf. Its code is compiled only with the build tag "spandsp" (cgo and
// Debian's libspandsp-dev); without the tag the package is empty and links nothing.
package spandsp
