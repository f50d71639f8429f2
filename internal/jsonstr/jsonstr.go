// Package jsonstr writes Go strings as JSON string content, escaping as
// encoding/json does, for the encoders that build bodies by hand. It is a
// leaf without dependencies, so the domain packages may use it.
package jsonstr

import (
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// AppendContent writes s as the content of a JSON string, without
// its quotes, escaping as encoding/json does (without HTML escaping, which
// only matters inside HTML) and replacing invalid UTF-8 with U+FFFD. The
// input transformer writes strings with it too, so every body Sluice
// makes escapes alike.
func AppendContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers
		// that treat them as line ends; encoding/json escapes them too.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// AppendHeader appends a Kafka record header as the reference's event
// writes one: {"KEY":[b0,b1,…]}, the value as Java's signed bytes.
func AppendHeader(dst []byte, key string, value []byte) []byte {
	dst = append(dst, '{', '"')
	dst = AppendContent(dst, key)
	dst = append(dst, '"', ':', '[')
	for j, c := range value {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(int8(c)), 10)
	}
	return append(dst, ']', '}')
}
