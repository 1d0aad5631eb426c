package output

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The reference: what JSON wrote before issue 13, a json.Encoder indenting.
func encoderJSON(t testing.TB, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type row struct {
	Name   string            `json:"name"`
	IDs    []int             `json:"ids"`
	Empty  []string          `json:"empty"`
	Nil    []string          `json:"nil"`
	Labels map[string]string `json:"labels"`
	None   map[string]string `json:"none,omitempty"`
	Inner  *row              `json:"inner,omitempty"`
	Raw    json.RawMessage   `json:"raw,omitempty"`
	F      float64           `json:"f"`
	B      bool              `json:"b"`
	Any    any               `json:"any"`
}

func TestJSONMatchesEncoder(t *testing.T) {
	for _, v := range []any{
		nil, 1, "x", true, []int{}, map[string]int{}, []any{[]any{}, map[string]any{}, []any{[]any{}}},
		"quote \" backslash \\ \\\" end\\", "<a href=\"x\">&amp;</a>", "tab\tnewline\n\u2028 é \x01",
		"{[,:]}", `"{"`, map[string]any{"k:": "v,", "[": []string{"]", "}"}},
		row{Name: "a{b}[c],d:e\"", IDs: []int{1, 2, 3}, Empty: []string{}, Labels: map[string]string{"io.k8s/x": "y z", "": ""},
			Inner: &row{Name: "\\", Raw: json.RawMessage(` { "a" : [ 1 , 2 ] , "b" : {} } `), Any: []any{nil, 1.5, "s"}}, F: -1e-9, B: true},
		[]row{{}, {Any: map[string]any{}}},
	} {
		want := encoderJSON(t, v)
		var got bytes.Buffer
		if err := JSON(&got, v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("JSON(%#v):\n%s\nwant (json.Encoder with SetIndent):\n%s", v, got.Bytes(), want)
		}
	}
}

func TestJSONError(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, map[string]any{"f": func() {}}); err == nil || b.Len() != 0 {
		t.Fatalf("unencodable value: err %v, wrote %q; want an error and nothing written", err, b.String())
	}
}

// FuzzIndent: on any compact JSON (as the encoder writes it) indent agrees
// with json.Indent byte for byte.
func FuzzIndent(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,{"b":"\"}"}],"c":{}}`, `"\\"`, `[[],[{}],""]`, `{"x\\\"":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var compact bytes.Buffer
		if json.Compact(&compact, in) != nil {
			return
		}
		compact.WriteByte('\n')
		var want bytes.Buffer
		if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		if got := indent(nil, compact.Bytes()); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("indent(%q) = %q, json.Indent: %q", compact.Bytes(), got, want.Bytes())
		}
	})
}

// The ls -o json shape at 500 namespaces, against the encoder's own
// indenting (go test -bench JSON ./internal/output).
func benchRows() []row {
	rows := make([]row, 500)
	for i := range rows {
		rows[i] = row{Name: "nsdbench-1234-" + string(rune('a'+i%26)), IDs: []int{i, i + 1}, Labels: map[string]string{"io.kubernetes.pod.name": "web", "com.docker.compose.service": "db"},
			Inner: &row{Name: "eth0", IDs: []int{1500}, Any: []any{"10.99.0.2/16", "fe80::1/64"}}}
	}
	return rows
}

func BenchmarkJSON(b *testing.B) {
	rows := benchRows()
	for b.Loop() {
		_ = JSON(&bytes.Buffer{}, rows)
	}
}

func BenchmarkJSONEncoderIndent(b *testing.B) {
	rows := benchRows()
	for b.Loop() {
		_ = encoderJSON(b, rows)
	}
}
