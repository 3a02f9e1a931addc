//go:build linux

package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fdSize reads the size of the process's descriptor table from /proc/self/status.
func fdSize(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func TestReserveDescriptors(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	before := fdSize(t)
	want := 4 * before
	if uint64(want) > lim.Cur {
		t.Fatalf("the soft descriptor limit %d is below the %d this test needs", lim.Cur, want)
	}
	got, err := reserveDescriptors(want)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("reserved %d, want %d", got, want)
	}
	if size := fdSize(t); size < want {
		t.Errorf("table holds %d descriptors after reserving %d (%d before)", size, want, before)
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(want-1), syscall.F_GETFD, 0); errno != syscall.EBADF {
		t.Errorf("descriptor %d left open (fcntl: %v)", want-1, errno)
	}
	// Again: the table already holds them, nothing changes.
	if got, err := reserveDescriptors(want); err != nil || got != want {
		t.Errorf("second reservation: %d, %v", got, err)
	}
	// Beyond the soft limit: the limit.
	if lim.Cur <= 1<<17 { // a larger table is kernel memory this test has no need of
		if got, err := reserveDescriptors(int(lim.Cur) + 1000); err != nil || got != int(lim.Cur) {
			t.Errorf("reserving past the limit %d: %d, %v", lim.Cur, got, err)
		}
	}
}
