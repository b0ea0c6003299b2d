package onvmstats

import (
	"math"
	"strconv"
)

// This file reproduces cJSON_Print from the cJSON copy ONVM bundles (onvm/lib/cJSON.c, the
// 1.x Dave Gamble lineage), so the web files match ONVM's byte for byte:
//
//   - an object is "{\n", then per member depth+1 tabs, the key, ":\t", the value, "," unless
//     last, "\n"; then depth tabs and "}". An empty object is "{\n" + depth tabs + "}";
//   - an array is "[" + elements joined by ", " + "]" on one line; an empty one is "[]";
//   - numbers are doubles printed by print_number; strings are escaped by print_string_ptr.
//
// Members keep insertion order, and duplicate keys are kept (cJSON allows them).

type jsonKind uint8

const (
	jsonNumber jsonKind = iota
	jsonString
	jsonArray
	jsonObject
)

// jsonNode is a cJSON item: a number, a string, or an array or object of children.
type jsonNode struct {
	kind jsonKind
	key  string // member name; valid iff the node is an object member
	str  string // valid iff kind == jsonString
	num  float64
	kids []jsonNode
}

func jsonNum(key string, v float64) jsonNode { return jsonNode{kind: jsonNumber, key: key, num: v} }
func jsonStr(key, v string) jsonNode         { return jsonNode{kind: jsonString, key: key, str: v} }
func jsonObj(key string, kids ...jsonNode) jsonNode {
	return jsonNode{kind: jsonObject, key: key, kids: kids}
}

// appendCJSON appends n as cJSON_Print(n) does at the given depth (0 for the root).
func appendCJSON(b []byte, n *jsonNode, depth int) []byte {
	switch n.kind {
	case jsonNumber:
		return appendCJSONNumber(b, n.num)
	case jsonString:
		return appendCJSONString(b, n.str)
	case jsonArray:
		if len(n.kids) == 0 {
			return append(b, "[]"...)
		}
		b = append(b, '[')
		for i := range n.kids {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendCJSON(b, &n.kids[i], depth+1)
		}
		return append(b, ']')
	default: // jsonObject
		b = append(b, '{', '\n')
		for i := range n.kids {
			b = appendTabs(b, depth+1)
			b = appendCJSONString(b, n.kids[i].key)
			b = append(b, ':', '\t')
			b = appendCJSON(b, &n.kids[i], depth+1)
			if i < len(n.kids)-1 {
				b = append(b, ',')
			}
			b = append(b, '\n')
		}
		b = appendTabs(b, depth)
		return append(b, '}')
	}
}

func appendTabs(b []byte, n int) []byte {
	for range n {
		b = append(b, '\t')
	}
	return b
}

// appendCJSONNumber is cJSON's print_number: 0; "%d" when the value is an int (valueint =
// (int)d equals d and d fits an int); "null" for NaN and infinities; "%.0f" for other
// integral values below 1e60; "%e" below 1e-6 or above 1e9; else "%f". Counters above 2^53
// therefore print the double they round to, as in ONVM.
func appendCJSONNumber(b []byte, d float64) []byte {
	switch {
	case d == 0:
		return append(b, '0')
	case d >= math.MinInt32 && d <= math.MaxInt32 && math.Abs(math.Trunc(d)-d) <= epsilon:
		return strconv.AppendInt(b, int64(d), 10)
	case math.IsNaN(d) || math.IsInf(d, 0):
		return append(b, "null"...)
	case math.Abs(math.Floor(d)-d) <= epsilon && math.Abs(d) < 1e60:
		return strconv.AppendFloat(b, d, 'f', 0, 64)
	case math.Abs(d) < 1e-6 || math.Abs(d) > 1e9:
		return strconv.AppendFloat(b, d, 'e', 6, 64)
	default:
		return strconv.AppendFloat(b, d, 'f', 6, 64)
	}
}

// epsilon is C's DBL_EPSILON.
const epsilon = 2.220446049250313e-16

// appendCJSONString is cJSON's print_string_ptr: '"' and '\\' are escaped, \b \f \n \r \t by
// name, other bytes below 0x20 as \u00xx (lower-case hex); everything else, including '/'
// and bytes of UTF-8 sequences, is copied. [quirk] C strings end at NUL; a Go string may hold
// one, and it is escaped as \u0000 rather than ending the string.
func appendCJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// cLabel is snprintf into a C buffer of size bytes: at most size-1 bytes of s survive.
func cLabel(s string, size int) string {
	if len(s) > size-1 {
		return s[:size-1]
	}
	return s
}
