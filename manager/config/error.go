package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one bad value in a configuration. Parse and Validate return every Error they find
// joined with errors.Join; callers reach each one with errors.As or by unwrapping the join
// (interface{ Unwrap() []error }).
type Error struct {
	// File is the configuration file name as given to Load or Parse; "" from Validate.
	File string
	// Line is the 1-based line of Key in File; 0 when unknown (Validate, built-in defaults).
	Line int
	// Key is the TOML key path, such as "chain[1].services[2]" or "manager.ring_size"; ""
	// for a TOML syntax error with no key.
	Key string
	// Msg says what is wrong and, where it helps, what is allowed.
	Msg string
}

// Error formats e as "file:line: key: msg", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// reporter collects the errors and warnings of one Parse or Validate call. With a line index
// (Parse) each error gets the line of its key; without one (Validate) lines stay 0, so the
// same checks serve both.
type reporter struct {
	file   string
	lines  map[string]int // key path → line; nil in Validate
	errs   []*Error
	bad    map[string]bool // keys that already have an error
	broken map[string]bool // keys whose value failed to decode
	warns  []string
}

// errorf records an error for key, unless key already has one or lies beneath a key that
// failed to decode (see fail).
func (r *reporter) errorf(key, format string, args ...any) {
	if r.bad[key] {
		return
	}
	for k := key; k != ""; k = parentKey(k) {
		if r.broken[k] {
			return
		}
	}
	if r.bad == nil {
		r.bad = make(map[string]bool)
	}
	r.bad[key] = true
	r.errs = append(r.errs, &Error{File: r.file, Line: r.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail records an error for a key whose value could not be decoded, and silences later errors
// about it and its children: the field keeps its default (a table that is not one decodes as
// empty), and messages about that stand-in would mislead.
func (r *reporter) fail(key, format string, args ...any) {
	r.errorf(key, format, args...)
	if r.broken == nil {
		r.broken = make(map[string]bool)
	}
	r.broken[key] = true
}

// warnf records a warning for key, formatted like an error so it names file and line too.
func (r *reporter) warnf(key, format string, args ...any) {
	e := Error{File: r.file, Line: r.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
	r.warns = append(r.warns, e.Error())
}

// line returns the line of key, or of its closest ancestor the file mentions: a missing
// required key is reported at its table's header.
func (r *reporter) line(key string) int {
	for key != "" {
		if l, ok := r.lines[key]; ok {
			return l
		}
		key = parentKey(key)
	}
	return 0
}

// err returns the collected errors sorted by line (errors without a line last, in the order
// found), joined; nil when there are none.
func (r *reporter) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	sort.SliceStable(r.errs, func(i, j int) bool {
		li, lj := r.errs[i].Line, r.errs[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	errs := make([]error, len(r.errs))
	for i, e := range r.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// parentKey strips the last element ("a.b" → "a", "a[2]" → "a") from a key path built by
// joinKey and indexKey.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
		return ""
	}
	if strings.HasSuffix(key, `"`) {
		// A quoted segment may contain dots; find its opening quote.
		for i := len(key) - 2; i >= 0; i-- {
			if key[i] == '"' && (i == 0 || key[i-1] != '\\') {
				if i > 0 && key[i-1] == '.' {
					return key[:i-1]
				}
				return ""
			}
		}
		return ""
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// joinKey appends one TOML key segment to a key path, quoting it as TOML would when it is not
// a bare key, so paths from the line scanner and from the decoded map agree.
func joinKey(prefix, seg string) string {
	if !isBareKey(seg) {
		seg = strconv.Quote(seg)
	}
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

// indexKey appends an array index to a key path: "chain" → "chain[1]".
func indexKey(prefix string, i int) string {
	return prefix + "[" + strconv.Itoa(i) + "]"
}

// isBareKey reports whether s is a TOML bare key ([A-Za-z0-9_-]+).
func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
