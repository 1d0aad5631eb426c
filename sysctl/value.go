package sysctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// notIntegerKeys print numbers but are not integer sysctls: their handlers
// take hex masks or lists, so a current "0" or "80" does not mean "f",
// "80,443" or "1-3" are wrong.
var notIntegerKeys = map[string]bool{
	"net.core.flow_limit_cpu_bitmap":   true, // cpumask, hex
	"net.core.rps_default_mask":        true, // cpumask, hex
	"net.ipv4.ip_local_reserved_ports": true, // port list
	"net.ipv6.icmp.ratemask":           true, // ICMPv6 type list
	"net.ipv4.vs.est_cpulist":          true, // CPU list
}

// CheckValue checks v, before anything is written, against the value the
// key holds now. When that value is all integers (the kernel's
// proc_dointvec family: one number, or a vector such as
// ip_local_port_range), v must be integers the kernel reads, and no more of
// them than the key holds: the kernel stores the numbers it can and answers
// a short write for the rest, so "77 88" would leave 77 behind, and a
// vector stops at its first bad element with the ones before it stored.
// Other values (names, lists, write-only keys) are left to the kernel.
func CheckValue(k Key, current, v string) error {
	cur := strings.Fields(current)
	if notIntegerKeys[k.Name] || len(cur) == 0 {
		return nil
	}
	for _, f := range cur {
		if !kernelInt(f) {
			return nil
		}
	}
	holds := "1 integer"
	if len(cur) > 1 {
		holds = fmt.Sprintf("%d integers", len(cur))
	}
	fields := strings.Fields(v)
	for _, f := range fields {
		if !kernelInt(f) {
			return nserr.New(nserr.ErrUsage, "invalid value %s for %s: it holds %s (now %s) and %s is not an integer the kernel reads (decimal, 0x hex or 0 octal, optional '-', 64 bits at most); nothing was written",
				quote(shorten(v)), k.Name, holds, shown(current), quote(shorten(f)))
		}
	}
	if len(fields) == 0 {
		return nserr.New(nserr.ErrUsage, "invalid value %s for %s: it holds %s (now %s) and the value has none; nothing was written", quote(v), k.Name, holds, shown(current))
	}
	if len(fields) > len(cur) {
		first := "first"
		if len(cur) > 1 {
			first = fmt.Sprintf("first %d", len(cur))
		}
		return nserr.New(nserr.ErrUsage, "invalid value %s for %s: it holds %s (now %s), %d given; the kernel would keep the %s and ignore the rest; nothing was written",
			quote(shorten(v)), k.Name, holds, shown(current), len(fields), first)
	}
	return nil
}

// kernelInt reports whether the kernel's proc_get_long takes s whole: an
// optional '-', then strtoul base 0 (0x hex, leading-0 octal, decimal) of at
// most an unsigned long, in fewer than 21 bytes (its buffer).
func kernelInt(s string) bool {
	if len(s) >= 21 {
		return false
	}
	s = strings.TrimPrefix(s, "-")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	base, digits := 10, s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case s[0] == '0':
		base = 8
	}
	_, err := strconv.ParseUint(digits, base, 64)
	return err == nil
}

// shown is a value as one readable line in a message: the kernel separates
// a vector's numbers with tabs.
func shown(v string) string {
	return strings.ReplaceAll(shorten(v), "\t", " ")
}
