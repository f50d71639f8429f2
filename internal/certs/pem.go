package certs

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"
)

// pemBlock is one decoded PEM block. Only the header names that matter to us
// are kept; header values are never echoed in errors.
type pemBlock struct {
	Type    string
	Headers map[string]string
	Bytes   []byte
}

const (
	pemBegin  = "-----BEGIN "
	pemEnd    = "-----END "
	pemDashes = "-----"
	// maxLabelLen bounds a PEM label; real ones ("ENCRYPTED PRIVATE KEY") are
	// short, and a long "label" is more likely base64 from a mangled paste,
	// which must not be echoed in an error.
	maxLabelLen = 40
)

// decodePEM decodes every PEM block in data, in order.
//
// It is deliberately more forgiving than encoding/pem about layout and
// stricter about content, because the input is pasted by people into secret
// stores:
//   - CRLF or CR line endings, a UTF-8 byte order mark, and literal "\n",
//     "\r" and "\/" escapes (a JSON string pasted one level too deep) are
//     accepted;
//   - the one-line form from the AWS documentation, where the whole PEM is
//     flattened with spaces ("-----BEGIN CERTIFICATE----- MIIE... -----END
//     CERTIFICATE-----"), is accepted: inside a block only the
//     whitespace-separated tokens matter, never the line structure;
//   - any non-whitespace text outside a block, a missing or mismatched END
//     line and invalid base64 are errors. encoding/pem silently skips such
//     text and even whole corrupt blocks, which would turn a damaged secret
//     into a confusing failure later (or a silently shorter chain).
//
// Errors never quote the input: it may be key material.
func decodePEM(data []byte) ([]pemBlock, error) {
	s := string(data)
	s = strings.TrimPrefix(s, "\uFEFF")
	// A backslash never occurs in PEM, so JSON escapes left in by a paste
	// one level too deep can be undone without ambiguity.
	s = strings.NewReplacer(`\r`, "\n", `\n`, "\n", `\/`, "/").Replace(s)

	var blocks []pemBlock
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, pemBegin) {
			switch {
			case len(blocks) > 0:
				return nil, fmt.Errorf("unexpected text after PEM block %d (%s)", len(blocks), blocks[len(blocks)-1].Type)
			case strings.Contains(s, pemBegin):
				return nil, fmt.Errorf("unexpected text before the first PEM block")
			default:
				return nil, fmt.Errorf("no PEM data found (expected %q)", "-----BEGIN ...-----")
			}
		}
		n := len(blocks) + 1
		label, rest, ok := strings.Cut(s[len(pemBegin):], pemDashes)
		if !ok || !validLabel(label) {
			return nil, fmt.Errorf("PEM block %d: malformed BEGIN line", n)
		}
		body, rest, ok := strings.Cut(rest, pemEnd)
		if !ok || strings.Contains(body, pemDashes) {
			return nil, fmt.Errorf("PEM block %d (%s): missing END line (truncated?)", n, label)
		}
		endLabel, rest, ok := strings.Cut(rest, pemDashes)
		if !ok || endLabel != label {
			return nil, fmt.Errorf("PEM block %d (%s): END line does not match BEGIN line", n, label)
		}
		blk, err := decodePEMBody(label, body)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, label, err)
		}
		blocks = append(blocks, blk)
		s = rest
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("no PEM data found (expected %q)", "-----BEGIN ...-----")
	}
	return blocks, nil
}

// validLabel accepts the labels RFC 7468 and OpenSSL use in practice:
// upper-case letters, digits and single inner spaces.
func validLabel(label string) bool {
	if label == "" || len(label) > maxLabelLen || label[0] == ' ' || label[len(label)-1] == ' ' {
		return false
	}
	for _, r := range label {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != ' ' {
			return false
		}
	}
	return true
}

// decodePEMBody splits a block body into RFC 1421 headers ("Proc-Type:
// 4,ENCRYPTED") and base64 data. It works on whitespace-separated tokens so
// that the flattened one-line form decodes like the normal one. Base64 never
// contains ':', so a token with a colon is a header name; when the colon ends
// the token, the header's value is the next token.
func decodePEMBody(label, body string) (pemBlock, error) {
	blk := pemBlock{Type: label}
	tokens := strings.Fields(body)
	i := 0
	for i < len(tokens) && strings.Contains(tokens[i], ":") {
		name, value, _ := strings.Cut(tokens[i], ":")
		i++
		if value == "" && i < len(tokens) && !strings.Contains(tokens[i], ":") {
			value = tokens[i]
			i++
		}
		if blk.Headers == nil {
			blk.Headers = make(map[string]string)
		}
		blk.Headers[name] = value
	}
	data := strings.Join(tokens[i:], "")
	if data == "" {
		return blk, fmt.Errorf("no base64 data")
	}
	if strings.Contains(data, ":") {
		return blk, fmt.Errorf("header found after base64 data")
	}
	der, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		// base64.CorruptInputError reports only an offset, never the data.
		return blk, fmt.Errorf("invalid base64: %w", err)
	}
	blk.Bytes = der
	return blk, nil
}
