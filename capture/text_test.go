package capture

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nsdebug/nsdebug/capture/filter"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// The formatter's lines for the corpus, after the time and interface.
var wantText = map[string]string{
	"tcp syn":           "IP 10.250.1.1.40000 > 10.250.1.2.40080: Flags [S], seq 1000, win 502, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
	"tcp psh-ack data":  "IP 10.250.1.1.40000 > 10.250.1.2.40080: Flags [P.], seq 1000:1011, ack 2000, win 502, length 11",
	"udp":               "IP 10.250.1.1.40001 > 10.250.1.2.40002: UDP, length 5",
	"icmp echo request": "IP 10.250.1.1 > 10.250.1.2: ICMP echo request, id 5, seq 1, length 64",
	"icmp6 echo":        "IP6 fd00:250::1 > fd00:250::2: ICMP6, echo request, id 9, seq 3, length 16",
	"arp request":       "ARP, Request who-has 10.250.1.2 tell 10.250.1.1, length 46",
	"arp reply":         "ARP, Reply 10.250.1.2 is-at 02:00:00:00:00:0b, length 46",
}

func TestFormatPacketCorpus(t *testing.T) {
	for _, p := range textCorpus(t) {
		got := FormatPacket(p.data, filter.EN10MB, len(p.data))
		if want, ok := wantText[p.name]; ok && got != want {
			t.Errorf("%s:\n got %s\nwant %s", p.name, got, want)
		}
		if strings.Contains(got, "unknown") {
			t.Errorf("%s: not decoded: %s", p.name, got)
		}
	}
}

// tcpdump is the oracle: the same corpus written to a pcap file and read
// by tcpdump -nn -S -t gives the same lines.
func TestFormatPacketMatchesTcpdump(t *testing.T) {
	tcpdump := requireTool(t, "tcpdump")
	corpus := textCorpus(t)
	path := filepath.Join(t.TempDir(), "corpus.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, p := range corpus {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	out, err := exec.Command(tcpdump, "-nn", "-S", "-t", "-r", path).Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(corpus) {
		t.Fatalf("tcpdump printed %d lines for %d packets:\n%s", len(lines), len(corpus), out)
	}
	for i, p := range corpus {
		got := FormatPacket(p.data, filter.EN10MB, len(p.data))
		if got != lines[i] {
			t.Errorf("%s:\n     nsdebug %s\n     tcpdump %s", p.name, got, lines[i])
		}
	}
}

// requireTool finds an external oracle; in CI a missing one fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testbed.InCI() {
			t.Fatalf("%s not installed (apt-get install tcpdump tshark)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func TestTextSinkLine(t *testing.T) {
	var buf bytes.Buffer
	s := NewTextSink(&buf)
	id, _ := s.AddInterface(Iface{Name: "docker:web/any", LinkType: filter.EN10MB, Names: map[int]string{2: "eth0"}})
	p := textCorpus(t)[7]
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.Local)
	if err := s.WritePacket(&Packet{Iface: id, TS: ts, Data: p.data, WireLen: len(p.data), IfIndex: 2, Pkttype: 4}); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	want := "03:04:05.678901 docker:web/eth0 Out IP 10.250.1.1.40001 > 10.250.1.2.40002: UDP, length 5\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
}
