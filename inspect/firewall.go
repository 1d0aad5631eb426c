package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nldump"
)

// Firewall says whether packet filtering is configured in a namespace.
type Firewall struct {
	NFTables []NFTable `json:"nftables"`
	// IPTablesLegacy are the tables of the legacy (x_tables) iptables
	// loaded in this namespace (family ip or ip6), with their chains and
	// rule counts; iptables-nft rules show under NFTables.
	IPTablesLegacy []NFTable `json:"iptables_legacy"`
}

// NFTable is one nftables table (iptables-nft makes these too), or one
// legacy iptables table.
type NFTable struct {
	Family string    `json:"family"`
	Name   string    `json:"name"`
	Chains []NFChain `json:"chains"`
}

// NFChain is one chain with its number of rules.
type NFChain struct {
	Name  string `json:"name"`
	Hook  string `json:"hook,omitempty"` // base chains only
	Rules int    `json:"rules"`
}

// nf_tables netlink constants (linux/netfilter/nf_tables.h); the netlink
// library has no nftables calls, so the three dumps are made with its
// message helpers.
const (
	nfnlSubsysNFTables = 10
	nftMsgNewTable     = 0
	nftMsgGetTable     = 1
	nftMsgNewChain     = 3
	nftMsgGetChain     = 4
	nftMsgNewRule      = 6
	nftMsgGetRule      = 7
	nftaTableName      = 1
	nftaChainTable     = 1
	nftaChainName      = 3
	nftaChainHook      = 4
	nftaHookHooknum    = 1
	nftaRuleTable      = 1
	nftaRuleChain      = 2
	nlaTypeMask        = 0x3fff // strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
)

var nfFamilies = map[uint8]string{
	unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6",
	unix.NFPROTO_ARP: "arp", unix.NFPROTO_BRIDGE: "bridge", unix.NFPROTO_NETDEV: "netdev",
}

// readFirewall must run on a thread inside the namespace (enter.Do).
func readFirewall() (*Firewall, error) {
	fw := &Firewall{NFTables: []NFTable{}, IPTablesLegacy: []NFTable{}}
	var errs []error
	for _, fam := range legacyFamilies {
		b, err := os.ReadFile("/proc/thread-self/net/" + fam.names)
		if err != nil {
			continue // module not loaded: no legacy tables
		}
		for _, name := range strings.Fields(string(b)) {
			chains, err := legacyChains(fam, name)
			if err != nil {
				errs = append(errs, fmt.Errorf("iptables-legacy %s %s: %w", fam.name, name, err))
				chains = []NFChain{}
			}
			fw.IPTablesLegacy = append(fw.IPTablesLegacy, NFTable{Family: fam.name, Name: name, Chains: chains})
		}
	}
	tables, err := nftDump()
	if err != nil {
		errs = append(errs, fmt.Errorf("nftables: %w", err))
	}
	fw.NFTables = tables
	return fw, errors.Join(errs...)
}

func nftDump() ([]NFTable, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return []NFTable{}, err
	}
	defer s.Close()
	sockets := map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: {Socket: s}}
	dump := func(get, want int) ([][]byte, error) {
		return nldump.Retry(func() ([][]byte, error) {
			req := nl.NewNetlinkRequest(nfnlSubsysNFTables<<8|get, unix.NLM_F_DUMP)
			req.Sockets = sockets
			req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.NFPROTO_UNSPEC, Version: unix.NFNETLINK_V0})
			return req.Execute(unix.NETLINK_NETFILTER, uint16(nfnlSubsysNFTables<<8|want))
		})
	}
	type key struct {
		fam          uint8
		table, chain string
	}
	tmsgs, err := dump(nftMsgGetTable, nftMsgNewTable)
	if err != nil {
		return []NFTable{}, err
	}
	tables := map[key]*NFTable{}
	var order []key
	for _, m := range tmsgs {
		fam, attrs, ok := nfAttrs(m)
		if !ok {
			continue
		}
		k := key{fam: fam, table: cString(attrs[nftaTableName])}
		tables[k] = &NFTable{Family: nfFamily(fam), Name: k.table, Chains: []NFChain{}}
		order = append(order, k)
	}
	cmsgs, err := dump(nftMsgGetChain, nftMsgNewChain)
	if err != nil {
		return []NFTable{}, err
	}
	for _, m := range cmsgs {
		fam, attrs, ok := nfAttrs(m)
		if !ok {
			continue
		}
		t, ok := tables[key{fam: fam, table: cString(attrs[nftaChainTable])}]
		if !ok {
			continue
		}
		ch := NFChain{Name: cString(attrs[nftaChainName])}
		if hook, ok := attrs[nftaChainHook]; ok {
			ch.Hook = hookName(fam, hook)
		}
		t.Chains = append(t.Chains, ch)
	}
	// Pointers into the chain slices, taken once they no longer grow.
	chains := map[key]*NFChain{}
	for k, t := range tables {
		for i := range t.Chains {
			chains[key{k.fam, k.table, t.Chains[i].Name}] = &t.Chains[i]
		}
	}
	rmsgs, err := dump(nftMsgGetRule, nftMsgNewRule)
	if err != nil {
		return []NFTable{}, err
	}
	for _, m := range rmsgs {
		fam, attrs, ok := nfAttrs(m)
		if !ok {
			continue
		}
		if ch, ok := chains[key{fam, cString(attrs[nftaRuleTable]), cString(attrs[nftaRuleChain])}]; ok {
			ch.Rules++
		}
	}
	out := make([]NFTable, 0, len(order))
	for _, k := range order {
		out = append(out, *tables[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Family != out[j].Family {
			return out[i].Family < out[j].Family
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// nfAttrs splits an nfnetlink message into its family and top-level
// attributes by type.
func nfAttrs(m []byte) (uint8, map[uint16][]byte, bool) {
	if len(m) < nl.SizeofNfgenmsg {
		return 0, nil, false
	}
	fam := m[0]
	attrs, err := nl.ParseRouteAttr(m[nl.SizeofNfgenmsg:])
	if err != nil {
		return 0, nil, false
	}
	out := map[uint16][]byte{}
	for _, a := range attrs {
		out[a.Attr.Type&nlaTypeMask] = a.Value
	}
	return fam, out, true
}

func nfFamily(f uint8) string {
	if s, ok := nfFamilies[f]; ok {
		return s
	}
	return fmt.Sprint(f)
}

// hookName decodes NFTA_CHAIN_HOOK's hook number (big endian).
func hookName(fam uint8, nested []byte) string {
	attrs, err := nl.ParseRouteAttr(nested)
	if err != nil {
		return ""
	}
	for _, a := range attrs {
		if a.Attr.Type&nlaTypeMask != nftaHookHooknum || len(a.Value) < 4 {
			continue
		}
		n := binary.BigEndian.Uint32(a.Value)
		if fam == unix.NFPROTO_NETDEV {
			return map[uint32]string{0: "ingress", 1: "egress"}[n]
		}
		names := []string{"prerouting", "input", "forward", "output", "postrouting", "ingress"}
		if int(n) < len(names) {
			return names[n]
		}
		return fmt.Sprint(n)
	}
	return ""
}

// Legacy x_tables are read as iptables-legacy-save reads them: the
// kernel's IPT_SO_GET_INFO and IPT_SO_GET_ENTRIES (IP6T_ for IPv6) on a raw
// socket made inside the namespace, never by running a tool there.
// Layouts from linux/netfilter_ipv4/ip_tables.h and netfilter_ipv6/ip6_tables.h.
const (
	iptSoGetInfo    = 64 // IPT_SO_GET_INFO, IP6T_SO_GET_INFO
	iptSoGetEntries = 65 // IPT_SO_GET_ENTRIES, IP6T_SO_GET_ENTRIES
	xtTableMaxName  = 32 // XT_TABLE_MAXNAMELEN
	// struct ipt_getinfo: name, valid_hooks, hook_entry[5], underflow[5],
	// num_entries, size.
	getinfoSize = xtTableMaxName + 4 + 5*4 + 5*4 + 4 + 4
	// struct xt_entry_target: target_size, name[29], revision; then data.
	xtTargetHeader = 32
)

type legacyFamily struct {
	name         string // ip, ip6: as nft names the families
	names        string // /proc/net file listing the loaded tables
	domain       int
	level        int
	targetOffset int // offsetof(ipt_entry/ip6t_entry, target_offset)
}

var legacyFamilies = []legacyFamily{
	{"ip", "ip_tables_names", unix.AF_INET, unix.IPPROTO_IP, 88},
	{"ip6", "ip6_tables_names", unix.AF_INET6, unix.IPPROTO_IPV6, 140},
}

// entriesOffset is offsetof(struct ipt_get_entries, entrytable): after the
// name and size, aligned as a 64-bit integer (the entries' counters) is.
func entriesOffset() int {
	if runtime.GOARCH == "386" {
		return xtTableMaxName + 4
	}
	return xtTableMaxName + 8
}

// builtinChains are iptables' names for the hooks NF_INET_PRE_ROUTING ..
// NF_INET_POST_ROUTING, and nft's names for the same hooks.
var builtinChains = [5][2]string{
	{"PREROUTING", "prerouting"}, {"INPUT", "input"}, {"FORWARD", "forward"}, {"OUTPUT", "output"}, {"POSTROUTING", "postrouting"},
}

// legacyChains reads one legacy table's chains and rule counts. It must
// run on a thread inside the namespace.
func legacyChains(fam legacyFamily, table string) ([]NFChain, error) {
	if len(table) >= xtTableMaxName {
		return nil, fmt.Errorf("table name too long")
	}
	fd, err := unix.Socket(fam.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// The table may change between the two calls (GET_ENTRIES then says
	// EAGAIN): ask again.
	for range nldump.MaxAttempts {
		info := make([]byte, getinfoSize)
		copy(info, table)
		if err := getsockopt(fd, fam.level, iptSoGetInfo, info); err != nil {
			return nil, fmt.Errorf("get info: %w", err)
		}
		size := int(nl.NativeEndian().Uint32(info[getinfoSize-4:]))
		entries := make([]byte, entriesOffset()+size)
		copy(entries, table)
		nl.NativeEndian().PutUint32(entries[xtTableMaxName:], uint32(size))
		err := getsockopt(fd, fam.level, iptSoGetEntries, entries)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get entries: %w", err)
		}
		return countLegacyRules(info, entries[entriesOffset():], fam.targetOffset)
	}
	return nil, fmt.Errorf("get entries: the table kept changing")
}

func getsockopt(fd, level, opt int, buf []byte) error {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// countLegacyRules walks a table's entry blob as iptables-save does: a
// built-in chain starts at its hook_entry and ends with its policy (the
// underflow entry, not a rule); a user chain starts with an ERROR entry
// naming it and ends with an implicit RETURN (not a rule either); an ERROR
// entry named ERROR ends the table.
func countLegacyRules(info, blob []byte, targetOffset int) ([]NFChain, error) {
	u32 := func(off int) int { return int(nl.NativeEndian().Uint32(info[off:])) }
	valid := u32(xtTableMaxName)
	var hookEntry, underflow [5]int
	for h := range 5 {
		hookEntry[h] = u32(xtTableMaxName + 4 + 4*h)
		underflow[h] = u32(xtTableMaxName + 4 + 20 + 4*h)
	}
	chains := []NFChain{}
	cur, user := -1, false
	endUser := func() {
		if user && cur >= 0 && chains[cur].Rules > 0 {
			chains[cur].Rules-- // its implicit RETURN
		}
		user = false
	}
	for off := 0; off < len(blob); {
		if off+targetOffset+4 > len(blob) {
			return nil, fmt.Errorf("entry at %d cut short", off)
		}
		tOff := int(nl.NativeEndian().Uint16(blob[off+targetOffset:]))
		next := int(nl.NativeEndian().Uint16(blob[off+targetOffset+2:]))
		if next == 0 || off+next > len(blob) || tOff+xtTargetHeader > next {
			return nil, fmt.Errorf("malformed entry at %d", off)
		}
		for h := range 5 {
			if valid&(1<<h) != 0 && hookEntry[h] == off {
				endUser()
				chains = append(chains, NFChain{Name: builtinChains[h][0], Hook: builtinChains[h][1]})
				cur = len(chains) - 1
			}
		}
		target := blob[off+tOff : off+next]
		policy := false
		for h := range 5 {
			policy = policy || (valid&(1<<h) != 0 && underflow[h] == off)
		}
		switch {
		case cString(target[2:xtTargetHeader-1]) == "ERROR":
			endUser()
			name := cString(target[xtTargetHeader:])
			if name == "ERROR" {
				return chains, nil
			}
			chains = append(chains, NFChain{Name: name})
			cur, user = len(chains)-1, true
		case policy:
		case cur >= 0:
			chains[cur].Rules++
		}
		off += next
	}
	endUser()
	return chains, nil
}
