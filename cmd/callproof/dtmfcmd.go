package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/callproof/callproof/media/dtmf"
)

// runDTMF runs the in-band detector over an audio file and prints one line per digit: the
// start in ms, the digit and its duration in ms.
func runDTMF(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dtmf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "raw audio format: ulaw, alaw, pcm16 (8 kHz) or pcm16-16k; default: from the WAV header or the file extension")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: callproof dtmf [--format F] FILE   (WAV: PCM16, μ-law or A-law at 8 or 16 kHz; or raw audio)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	found, err := dtmf.ScanFile(fs.Arg(0), *format)
	if err != nil {
		return fmt.Errorf("dtmf: %w", err)
	}
	for _, d := range found {
		fmt.Fprintf(stdout, "%d %c %d\n", d.Start.Milliseconds(), d.Digit, d.Duration.Milliseconds())
	}
	return nil
}
