package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Firewall says whether packet filtering is configured in a namespace.
type Firewall struct {
	NFTables []NFTable `json:"nftables"`
	// IPTablesLegacy names the tables of the legacy (x_tables) iptables that
	// are loaded in this namespace; iptables-nft rules show under NFTables.
	IPTablesLegacy []string `json:"iptables_legacy"`
}

// NFTable is one nftables table (iptables-nft makes these too).
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
	fw := &Firewall{NFTables: []NFTable{}, IPTablesLegacy: []string{}}
	var errs []error
	for _, f := range []string{"ip_tables_names", "ip6_tables_names"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			continue // module not loaded: no legacy tables
		}
		pre := "ip:"
		if strings.HasPrefix(f, "ip6") {
			pre = "ip6:"
		}
		for _, t := range strings.Fields(string(b)) {
			fw.IPTablesLegacy = append(fw.IPTablesLegacy, pre+t)
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
		return RetryDump(func() ([][]byte, error) {
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
