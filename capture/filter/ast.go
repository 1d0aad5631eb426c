package filter

// The AST the parser builds. Code is generated from it in a left-to-right
// walk, which is the order libpcap's parser generates code in; that order
// matters because `vlan` moves the offsets of everything after it.

type node interface{ position() int }

type (
	// andNode and orNode: tcpdump gives both the same precedence, left to right.
	andNode struct {
		pos  int
		l, r node
	}
	orNode struct {
		pos  int
		l, r node
	}
	notNode struct {
		pos int
		x   node
	}
	// primNode is a qualified value: [proto] [dir] [type] value.
	primNode struct {
		pos int
		q   qual
		v   value
	}
	// protoNode is a protocol name on its own (tcp, ip6, arp ...).
	protoNode struct {
		pos   int
		proto string
	}
	// castNode: [proto] broadcast / multicast.
	castNode struct {
		pos   int
		proto string // "" for the default
		multi bool
	}
	lenNode struct { // less N / greater N
		pos     int
		greater bool
		n       uint32
	}
	vlanNode struct {
		pos   int
		id    uint32
		hasID bool
	}
	dirNode struct { // inbound / outbound
		pos     int
		inbound bool
	}
	relNode struct { // arith relop arith
		pos  int
		op   string
		l, r arith
	}
	trueNode struct{ pos int } // empty expression
)

func (n *andNode) position() int   { return n.pos }
func (n *orNode) position() int    { return n.pos }
func (n *notNode) position() int   { return n.pos }
func (n *primNode) position() int  { return n.pos }
func (n *protoNode) position() int { return n.pos }
func (n *castNode) position() int  { return n.pos }
func (n *lenNode) position() int   { return n.pos }
func (n *vlanNode) position() int  { return n.pos }
func (n *relNode) position() int   { return n.pos }
func (n *dirNode) position() int   { return n.pos }
func (n *trueNode) position() int  { return n.pos }

// qual is libpcap's qualifier triple.
type qual struct {
	proto string // "" (default), "link", "ip", "ip6", "arp", "rarp", "tcp", ...
	dir   string // "" (default), "src", "dst", "or", "and"
	addr  string // "" (default), "host", "net", "port", "portrange", "proto"
	err   bool   // no qualifier to inherit (an id may not follow)
	pos   int    // where the qualifiers start
}

// value is the operand of a primitive; kind is the token kind it came from.
type value struct {
	pos     int
	kind    tokKind
	text    string
	num     uint32
	masklen int    // HID/HID6 '/' NUM; -1 if none
	mask    string // HID "mask" HID
}

type arith interface{ position() int }

type (
	numArith struct {
		pos int
		v   uint32
	}
	lenArith  struct{ pos int }
	loadArith struct {
		pos   int
		proto string
		off   arith
		size  int
	}
	binArith struct {
		pos  int
		op   string
		l, r arith
	}
	negArith struct {
		pos int
		x   arith
	}
)

func (a *numArith) position() int  { return a.pos }
func (a *lenArith) position() int  { return a.pos }
func (a *loadArith) position() int { return a.pos }
func (a *binArith) position() int  { return a.pos }
func (a *negArith) position() int  { return a.pos }
