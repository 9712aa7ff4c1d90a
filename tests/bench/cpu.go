package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuUse is the CPU time (user + system) each process of the run had used at one moment: the
// difference across a row, divided by its requests, says where a request's cost goes on a
// machine whose cores the load generator, Caddy and Redis share.
type cpuUse struct{ caddy, redis, load time.Duration }

func (b *bench) cpuNow() cpuUse {
	var self syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	return cpuUse{
		caddy: procCPU(b.caddy.Process.Pid),
		redis: procCPU(b.redisPid),
		load:  time.Duration(self.Utime.Nano() + self.Stime.Nano()),
	}
}

func (c cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{caddy: c.caddy - before.caddy, redis: c.redis - before.redis, load: c.load - before.load}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux Go supports.
const clockTicks = 100

// procCPU reads utime + stime of a process from /proc/<pid>/stat (0 when it cannot).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}
