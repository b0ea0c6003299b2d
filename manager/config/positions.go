package config

// Key lines.
//
// BurntSushi/toml v1.6.0 keeps a position per key only in unexported MetaData fields, keyed by
// the key without array indices ("port.id" for every [[port]]), so it cannot tell which
// [[port]] a key belongs to. scanLines recovers what the errors need: for every key path as
// the decoder walks it ("manager.ring_size", "port[1].id", "chain[0].services[2]"), the
// 1-based line where it starts.
//
// It runs before the decoder, on any input, and does not validate: its map is used only once
// the decoder has accepted the file. It must never panic or loop, and it stops at nesting
// deeper than maxNesting, which keeps its recursion and its key paths small. Every step
// advances at least one byte or returns.
//
// Stages, in file order: statement (table header | key = value) → value (string | array |
// inline table | scalar). Arrays of tables ([[x]]) are counted per full path, so [[a.b]]
// under the second [[a]] is a[1].b[n].

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// lineScanner walks a TOML document recording key lines.
type lineScanner struct {
	data    []byte
	i       int            // next byte
	line    int            // line of data[i], 1-based
	lines   map[string]int // key path → first line
	aot     map[string]int // array-of-tables path → elements seen so far
	depth   int            // arrays and inline tables open at s.i
	tooDeep int            // line where depth passed maxNesting; 0 if it never did
}

// scanLines returns the line of every key path in data, and the line where keys or values
// nest deeper than maxNesting (0 if they do not; the scan stops there). It is best effort: a
// key it cannot place is absent, and reporter.line falls back to the key's parent.
func scanLines(data []byte) (lines map[string]int, tooDeep int) {
	s := &lineScanner{data: data, line: 1, lines: make(map[string]int), aot: make(map[string]int)}
	table := ""
	for {
		s.skipSpace(true)
		if s.eof() {
			return s.lines, s.tooDeep
		}
		start := s.i
		switch s.data[s.i] {
		case '[':
			table = s.header()
		default:
			s.keyValue(table)
		}
		if s.i == start { // unparsable: drop the rest of the line
			s.skipLine()
		}
	}
}

func (s *lineScanner) eof() bool { return s.i >= len(s.data) }

func (s *lineScanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

// advance moves past one byte, counting lines.
func (s *lineScanner) advance() {
	if s.data[s.i] == '\n' {
		s.line++
	}
	s.i++
}

// skipSpace skips blanks and comments, and newlines too when nl is set.
func (s *lineScanner) skipSpace(nl bool) {
	for !s.eof() {
		switch c := s.data[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '\n' && nl:
			s.advance()
		case c == '#':
			for !s.eof() && s.data[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) skipLine() {
	for !s.eof() && s.data[s.i] != '\n' {
		s.i++
	}
}

// record notes the line of key unless an earlier line is known.
func (s *lineScanner) record(key string, line int) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = line
	}
}

// header parses "[a.b]" or "[[a.b]]" and returns the table's key path.
func (s *lineScanner) header() string {
	line := s.line
	s.i++ // '['
	array := s.peek(0) == '['
	if array {
		s.i++
	}
	segs := s.key()
	path := ""
	for n, seg := range segs {
		path = joinKey(path, seg)
		if array && n == len(segs)-1 {
			s.record(path, line) // the array itself, at its first element
			s.aot[path]++
			path = indexKey(path, s.aot[path]-1)
		} else if c := s.aot[path]; c > 0 {
			path = indexKey(path, c-1)
		}
		s.record(path, line)
	}
	s.skipLine()
	return path
}

// keyValue parses "k.l = value" inside table.
func (s *lineScanner) keyValue(table string) {
	line := s.line
	segs := s.key()
	if len(segs) == 0 {
		return
	}
	path := table
	for _, seg := range segs {
		path = joinKey(path, seg)
		s.record(path, line)
	}
	s.skipSpace(false)
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skipSpace(false)
	s.value(path)
}

// key parses a dotted key of bare and quoted segments, stopping before '=' or ']'.
func (s *lineScanner) key() []string {
	var segs []string
	for {
		s.skipSpace(false)
		if s.eof() {
			return segs
		}
		switch c := s.data[s.i]; c {
		case '"':
			segs = append(segs, unescapeBasic(s.basicString()))
		case '\'':
			start := s.i + 1
			s.literalString()
			end := max(start, s.i-1)
			segs = append(segs, string(s.data[start:end]))
		default:
			start := s.i
			for !s.eof() && !strings.ContainsRune(" \t\r\n.=]\"'#,{}[", rune(s.data[s.i])) {
				s.i++
			}
			if s.i == start {
				return segs
			}
			segs = append(segs, string(s.data[start:s.i]))
		}
		s.skipSpace(false)
		if s.peek(0) != '.' {
			return segs
		}
		if len(segs) >= maxNesting { // a dotted key nests tables as deep as its segments
			s.tooDeep = s.line
			s.i = len(s.data)
			return segs
		}
		s.i++
	}
}

// value parses one value whose key path is path, recording the lines of array elements and
// inline-table keys beneath it.
func (s *lineScanner) value(path string) {
	if s.eof() {
		return
	}
	switch s.data[s.i] {
	case '"':
		s.basicString()
	case '\'':
		s.literalString()
	case '[':
		if s.enter() {
			s.array(path)
			s.depth--
		}
	case '{':
		if s.enter() {
			s.inlineTable(path)
			s.depth--
		}
	default: // number, boolean, date-time: up to a delimiter
		for !s.eof() && !strings.ContainsRune(",]}\n#", rune(s.data[s.i])) {
			s.i++
		}
	}
}

// enter opens an array or inline table at s.i. Past maxNesting levels it stops the scan and
// notes the line instead: the TOML decoder, and the key paths built here, take time quadratic
// in the depth, so Parse refuses such input before decoding it. key does the same for dotted
// keys with too many segments.
func (s *lineScanner) enter() bool {
	s.depth++
	if s.depth > maxNesting {
		s.tooDeep = s.line
		s.i = len(s.data)
		return false
	}
	return true
}

// array parses "[v, ...]" starting at its '['.
func (s *lineScanner) array(path string) {
	s.i++
	for n := 0; ; n++ {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		if s.data[s.i] == ']' {
			s.i++
			return
		}
		elem := indexKey(path, n)
		s.record(elem, s.line)
		start := s.i
		s.value(elem)
		s.skipSpace(true)
		switch s.peek(0) {
		case ',':
			s.i++
		case ']':
			s.i++
			return
		default:
			if s.i == start {
				return
			}
		}
	}
}

// inlineTable parses "{k = v, ...}" starting at its '{'.
func (s *lineScanner) inlineTable(path string) {
	s.i++
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		if s.data[s.i] == '}' {
			s.i++
			return
		}
		line := s.line
		start := s.i
		segs := s.key()
		p := path
		for _, seg := range segs {
			p = joinKey(p, seg)
			s.record(p, line)
		}
		s.skipSpace(true)
		if s.peek(0) == '=' {
			s.i++
			s.skipSpace(true)
			s.value(p)
		}
		s.skipSpace(true)
		switch s.peek(0) {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			if s.i == start {
				return
			}
		}
	}
}

// basicString skips a "..." or """...""" string and returns its raw contents.
func (s *lineScanner) basicString() string {
	return s.quoted('"', true)
}

// literalString skips a '...' or ”'...”' string.
func (s *lineScanner) literalString() {
	s.quoted('\'', false)
}

// quoted skips a string opened by q at s.i, single-line or tripled multi-line, honouring
// backslash escapes when escapes is set, and returns its raw contents.
func (s *lineScanner) quoted(q byte, escapes bool) string {
	multi := s.peek(1) == q && s.peek(2) == q
	if multi {
		s.i += 3
	} else {
		s.i++
	}
	start := s.i
	for !s.eof() {
		c := s.data[s.i]
		switch {
		case c == '\\' && escapes:
			s.advance()
			if !s.eof() {
				s.advance()
			}
		case c == '\n' && !multi:
			return string(s.data[start:s.i])
		case c == q && !multi:
			raw := string(s.data[start:s.i])
			s.i++
			return raw
		case c == q && s.peek(1) == q && s.peek(2) == q:
			// Up to two more quotes right before the closing three belong to the contents.
			end := s.i
			for k := 0; k < 2 && s.peek(3) == q; k++ {
				s.i++
				end++
			}
			s.i += 3
			return string(s.data[start:end])
		default:
			s.advance()
		}
	}
	return string(s.data[start:])
}

// unescapeBasic decodes the escapes of a TOML basic string (TOML 1.1: \b \t \n \f \r \e \" \\
// \xHH \uHHHH \UHHHHHHHH), so a quoted key's path matches the decoded key.
func unescapeBasic(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x', 'u', 'U':
			n := 2 // hex digits after \x, \u, \U
			if raw[i] == 'u' {
				n = 4
			} else if raw[i] == 'U' {
				n = 8
			}
			if i+1+n <= len(raw) {
				if v, err := strconv.ParseUint(raw[i+1:i+1+n], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
					b.WriteRune(rune(v))
					i += n
					continue
				}
			}
			b.WriteByte('\\')
			b.WriteByte(raw[i])
		default:
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}
