//go:build !race

package dtmf

// raceEnabled trims the corpus sweeps under the race detector (see allCases).
const raceEnabled = false
