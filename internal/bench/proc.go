package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used so far.
// Every phase of a run is in this process, so a phase's CPU seconds are the
// difference across it; with an in-process broker they include the
// broker's work, the same for the pipe and its baselines.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS restarts the kernel's peak-RSS count (VmHWM) so the next
// peakRSS reads the peak of one phase, not of the whole run. Writing 5 to
// clear_refs does that on Linux 4.0 and later; where it fails, peakRSS
// reports the process's lifetime peak, which is an upper bound.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS is the process's peak resident set since the last resetPeakRSS,
// in bytes.
func peakRSS() int64 {
	if v := procStatus("VmHWM:"); v > 0 {
		return v
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// currentRSS is the process's resident set now, in bytes.
func currentRSS() int64 { return procStatus("VmRSS:") }

// procStatus reads one "Name:  N kB" line of /proc/self/status in bytes,
// or 0 where there is no such file.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		fields := bytes.Fields(line[len(field):])
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// meter measures one phase: wall time, CPU time and peak RSS.
type meter struct {
	start time.Time
	cpu   time.Duration
}

func startMeter() meter {
	// Each phase starts with the garbage of the one before collected, so
	// it does not pay for it.
	runtime.GC()
	resetPeakRSS()
	return meter{start: time.Now(), cpu: cpuTime()}
}

// stop fills in p's time, CPU and memory figures and its rates over n
// records of size bytes.
func (m meter) stop(p *Phase, n int64, size int) {
	p.Seconds = time.Since(m.start).Seconds()
	p.CPUSeconds = (cpuTime() - m.cpu).Seconds()
	p.PeakRSSBytes = peakRSS()
	p.Records = n
	if p.Seconds > 0 {
		p.RecordsPerSec = float64(n) / p.Seconds
		p.MBPerSec = float64(n) * float64(size) / p.Seconds / 1e6
	}
}
