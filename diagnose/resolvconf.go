package diagnose

import (
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/resolver"
)

// ResolvConf is the part of resolv.conf the checks read.
type ResolvConf struct {
	Nameservers []string
	Search      []string
	Ndots       int // 1 when not set (glibc's default)
}

func parseResolvConf(s string) *ResolvConf {
	rc := &ResolvConf{Ndots: 1, Nameservers: []string{}, Search: []string{}}
	for _, l := range strings.Split(s, "\n") {
		if i := strings.IndexAny(l, "#;"); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				rc.Nameservers = append(rc.Nameservers, f[1])
			}
		case "search", "domain":
			// The last search/domain line wins, as in glibc.
			rc.Search = append([]string{}, f[1:]...)
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					if n, err := strconv.Atoi(v); err == nil {
						rc.Ndots = min(n, 15)
					}
				}
			}
		}
	}
	return rc
}

// readResolvConf reads the container's resolv.conf; nil with the reason
// when there is none.
func readResolvConf(res *resolver.Result, procRoot string) (*ResolvConf, string) {
	s, err := readContainerFile(res, procRoot, res.ResolvConf, "/etc/resolv.conf")
	if err != "" {
		return nil, err
	}
	return parseResolvConf(s), ""
}
