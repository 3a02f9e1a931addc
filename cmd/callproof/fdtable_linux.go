//go:build linux

package main

import (
	"fmt"
	"os"
	"syscall"
)

// reserveDescriptors grows the process's descriptor table, once, to hold n descriptors (at
// most the soft RLIMIT_NOFILE), and returns the number it reserved for.
//
// Linux doubles a process's table when a new descriptor does not fit: at 64, 128, 256 and so
// on. In a multi-threaded process, a Go one always, the thread that grows it waits for an RCU
// grace period (expand_fdtable calls synchronize_rcu), and every other thread that allocates a
// descriptor meanwhile waits for it: 5 to 13 ms each time here, measured with `perf trace` on
// socket() in callproof load and accept4() in the server, at 256, 512 and 1,024 descriptors.
// socket() is a raw system call in Go, so its goroutine keeps its processor while it waits;
// with two, both were held at once and every caller frame due then went out late. Growing the
// table at start-up, while there are few descriptors, makes that wait once, before the calls.
//
// It copies a descriptor to number n-1 and closes the copy; the table keeps its size. n-1
// must be free, which it is while the process has fewer than n descriptors open: the kernel
// hands out the lowest free number, so no other open can take n-1 meanwhile.
func reserveDescriptors(n int) (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	if lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	if n <= 64 { // the table every process starts with
		return n, nil
	}
	target := n - 1
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(target), syscall.F_GETFD, 0); errno != syscall.EBADF {
		return n, nil // open, so the table already holds it
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return 0, os.NewSyscallError("pipe2", err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	if err := syscall.Dup3(p[0], target, syscall.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("reserve %d descriptors: %w", n, os.NewSyscallError("dup3", err))
	}
	if err := syscall.Close(target); err != nil {
		return 0, os.NewSyscallError("close", err)
	}
	return n, nil
}
