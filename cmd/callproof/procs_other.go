//go:build !unix

package main

import "time"

// processCPU is not read outside Unix: the server keeps the processors it started with.
func processCPU() (time.Duration, bool) { return 0, false }
