// Package output renders nsdebug's results: aligned tables for people, stable
// indented JSON for scripts. Colour is the caller's decision (IOStreams.Color).
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// Format is an -o value.
type Format string

// ParseFormat checks an -o value against the formats a command offers.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == s {
			return a, nil
		}
		names[i] = string(a)
	}
	return "", nserr.New(nserr.ErrUsage, "unknown output format %q (want %s)", s, strings.Join(names, ", "))
}

// JSON writes v as indented JSON with a trailing newline, byte for byte what
// a json.Encoder with SetIndent("", "  ") writes. The encoder's indenting is
// a second pass through encoding/json's validating scanner, 8% of ls -o json
// with 500 namespaces (issue 13); the compact text it indents was just made
// by the encoder, so indent only has to know strings from punctuation.
func JSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(indent(make([]byte, 0, 2*buf.Len()), buf.Bytes()))
	return err
}

// indent appends src, compact JSON as encoding/json writes it (no space
// outside strings), to dst indented by two spaces as json.Indent would.
func indent(dst, src []byte) []byte {
	depth := 0
	open := false // just after { or [: a newline is due unless it closes at once
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, ' ', ' ')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if open && c != '}' && c != ']' {
			open = false
			depth++
			newline()
		}
		switch c {
		case '"':
			// Copy the string whole; a backslash escapes the next byte.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				j = len(src) - 1
			}
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			open = true
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, c, ' ')
		case '}', ']':
			if open {
				open = false
			} else {
				depth--
				newline()
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Table writes aligned columns. Colour is applied to whole lines after
// alignment, so escape codes never disturb the column widths.
type Table struct {
	out    io.Writer
	buf    bytes.Buffer
	tw     *tabwriter.Writer
	color  bool
	header bool
	paints map[int]string // line -> colour code
	lines  int
}

// NewTable starts a table with a header row (bold when color).
func NewTable(w io.Writer, color bool, header ...string) *Table {
	t := &Table{out: w, color: color, paints: map[int]string{}}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	if len(header) > 0 {
		t.header = true
		t.RowColored(Bold, header...)
	}
	return t
}

// Row adds a row.
func (t *Table) Row(cells ...string) { t.RowColored("", cells...) }

// RowColored adds a row painted with code when colour is on.
func (t *Table) RowColored(code string, cells ...string) {
	if code != "" {
		t.paints[t.lines] = code
	}
	t.lines++
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// Flush writes the table out.
func (t *Table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	var b strings.Builder
	for i, l := range lines {
		if code, ok := t.paints[i]; ok && t.color && l != "" {
			body := strings.TrimRight(l, " \n")
			b.WriteString(code + body + Reset + "\n")
			continue
		}
		b.WriteString(l)
	}
	t.buf.Reset()
	_, err := io.WriteString(t.out, b.String())
	return err
}

// ANSI codes used when colour is on.
const (
	Bold   = "\x1b[1m"
	Dim    = "\x1b[2m"
	Yellow = "\x1b[33m"
	Green  = "\x1b[32m"
	Reset  = "\x1b[0m"
)

// Paint wraps s in code when color is on.
func Paint(color bool, code, s string) string {
	if !color || s == "" {
		return s
	}
	return code + s + Reset
}
