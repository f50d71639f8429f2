// Package secret holds the credentials users store for pipes (SASL
// passwords, TLS CA certificates, client certificates and keys), the rules
// they must satisfy, and the sealing that encrypts them at rest.
//
// A Secret carries plaintext in memory only. Its values must never reach a
// response, a log line or an error message, so Secret formats itself, logs
// itself and encodes itself to JSON and YAML as metadata (name, type and key
// names) only, and every error in this package names fields and keys but
// never echoes a value. What is stored is the blob Keyring.Seal returns.
package secret

import (
	"github.com/sluice-dev/sluice/internal/fielderr"

	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type says what a secret holds, and so which keys it must have.
type Type string

const (
	// Generic holds any keys, e.g. a SASL username and password.
	Generic Type = "generic"
	// TLSCA holds the PEM certificate(s) to trust for the brokers, under
	// KeyCertificate.
	TLSCA Type = "tls-ca"
	// TLSClient holds a client certificate and key for mutual TLS, under
	// the key names of the reference's CLIENT_CERTIFICATE_TLS_AUTH secret.
	TLSClient Type = "tls-client"
)

// Key names of the TLS types, as the reference platform spells them in its
// JSON secrets, so a secret exported from there imports unchanged.
const (
	KeyCertificate        = "certificate"
	KeyPrivateKey         = "privateKey"
	KeyPrivateKeyPassword = "privateKeyPassword"
)

// Limits.
const (
	MaxNameLength = 63  // a DNS label, so a name fits anywhere a name goes
	MaxKeyLength  = 253 // as for Kubernetes secret keys
	// MaxDataSize bounds the total bytes of a secret's values: the
	// reference's secrets manager allows 65,536 bytes per secret.
	MaxDataSize = 64 << 10
)

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	switch t {
	case Generic, TLSCA, TLSClient:
		return true
	}
	return false
}

// Secret is a named set of keys and their plaintext values, in memory.
//
// Printing, logging or JSON-encoding a Secret shows its name, type and key
// names, never its values. That holds wherever fmt can call its methods: a
// Secret (or *Secret) held in an unexported struct field is printed by
// reflection, so keep it in exported fields or pass it alone.
type Secret struct {
	Name string
	Type Type
	Data map[string][]byte
	// Brokers are where the secret may be sent (see brokers.go); empty
	// binds it to the first cluster that uses it.
	Brokers []string
	Created time.Time
	Updated time.Time
}

// Meta is what may be shown of a secret: everything but the values.
type Meta struct {
	Name    string    `json:"name"`
	Type    Type      `json:"type"`
	Keys    []string  `json:"keys"`
	Brokers []string  `json:"brokers,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Keys returns the secret's key names, sorted. It is never nil, so an
// empty secret encodes as [] rather than null.
func (s Secret) Keys() []string {
	keys := slices.Sorted(maps.Keys(s.Data))
	if keys == nil {
		keys = []string{}
	}
	return keys
}

// Meta returns the secret without its values.
func (s Secret) Meta() Meta {
	return Meta{Name: s.Name, Type: s.Type, Keys: s.Keys(), Created: s.Created, Updated: s.Updated}
}

// String describes the secret by name, type and key names. Names and keys
// are quoted, so an unvalidated secret cannot forge log lines.
func (s Secret) String() string {
	return fmt.Sprintf("secret %q (type %q, keys %q)", s.Name, string(s.Type), s.Keys())
}

// GoString is what %#v prints: the Go-like shape with every value redacted.
func (s Secret) GoString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "secret.Secret{Name:%q, Type:%q, Data:map[string][]byte{", s.Name, string(s.Type))
	for i, k := range s.Keys() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q:<redacted>", k)
	}
	b.WriteString("}}")
	return b.String()
}

// Format makes every verb print String (or GoString for %#v): without it,
// fmt would honour String for %v and %s but print Data for verbs such as
// %x or %d.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	// Re-apply the caller's width, flags and verb to the description.
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// LogValue makes slog log a group of name, type and keys.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", s.Name),
		slog.String("type", string(s.Type)),
		slog.Any("keys", s.Keys()),
	)
}

// MarshalJSON encodes the secret's Meta, so encoding a Secret by accident
// (in a response, in a struct that is logged) cannot leak its values.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.Meta())
}

// MarshalYAML does for YAML encoders (go.yaml.in/yaml and its forks, which
// look for this method by name) what MarshalJSON does for JSON.
func (s Secret) MarshalYAML() (any, error) {
	return s.Meta(), nil
}

// FieldError is one invalid field of a secret and how to fix it: the one
// field-error type of every spec (package fielderr). Neither part ever
// holds a secret value: Value stays empty.
type FieldError = fielderr.Field

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	keyRE  = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

func validName(n string) bool { return len(n) <= MaxNameLength && nameRE.MatchString(n) }
func validKey(k string) bool  { return len(k) <= MaxKeyLength && keyRE.MatchString(k) }

const (
	nameRule = "use 1–63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. kafka-creds)"
	keyRule  = "use 1–253 letters, digits, '-', '_' and '.'"
)

// Validate checks a secret before it is stored. It returns nil, or a
// *fielderr.List (Kind "secret") naming every problem, so a user fixes them
// all in one round.
func (s Secret) Validate() error {
	errs := fielderr.New("secret")
	add := func(field, reason string) { errs.Add(field, "", reason) }

	switch {
	case s.Name == "":
		add("name", "required: "+nameRule)
	case !validName(s.Name):
		add("name", nameRule)
	}

	keys := s.Keys()
	if len(keys) == 0 {
		add("data", "required: give at least one key and value")
	}
	total := 0
	for _, k := range keys {
		total += len(s.Data[k])
		if !validKey(k) {
			add("data", fmt.Sprintf("key %s is not a valid key name: %s", quoteShort(k), keyRule))
		}
	}
	if total > MaxDataSize {
		add("data", fmt.Sprintf("values total %d bytes, over the limit of %d: split the secret or store less in it", total, MaxDataSize))
	}

	if err := ValidateBrokers(s.Brokers); err != nil {
		add("brokers", err.Error())
	} else if len(s.Brokers) > 0 && !s.Type.Binds() {
		add("brokers", "a tls-ca secret holds public certificates and goes nowhere: remove --brokers")
	}

	switch s.Type {
	case Generic:
	case TLSCA:
		errs.Fields = append(errs.Fields, checkCertificate(s.Data, "the CA certificate(s) to trust for the brokers")...)
	case TLSClient:
		errs.Fields = append(errs.Fields, checkCertificate(s.Data, "the client certificate")...)
		if v, ok := s.Data[KeyPrivateKey]; !ok {
			add("data."+KeyPrivateKey, "required for type tls-client: give the client's private key in PEM")
		} else if !hasPEM(v, isPrivateKey) {
			add("data."+KeyPrivateKey, "must be PEM with a -----BEGIN ... PRIVATE KEY----- block: paste the whole key, BEGIN and END lines included")
		}
		for _, k := range keys {
			switch k {
			case KeyCertificate, KeyPrivateKey, KeyPrivateKeyPassword:
			default:
				if validKey(k) { // an invalid key was reported above
					add("data."+k, "not allowed for type tls-client: use only certificate, privateKey and privateKeyPassword")
				}
			}
		}
	case "":
		add("type", "required: use generic, tls-ca or tls-client")
	default:
		add("type", fmt.Sprintf("unknown type %s: use generic, tls-ca or tls-client", quoteShort(string(s.Type))))
	}
	return errs.Err()
}

// checkCertificate checks KeyCertificate of a TLS secret; what describes
// the certificate the type expects.
func checkCertificate(data map[string][]byte, what string) []FieldError {
	const field = "data." + KeyCertificate
	v, ok := data[KeyCertificate]
	switch {
	case !ok:
		return []FieldError{{Field: field, Reason: "required: give " + what + " in PEM"}}
	case !hasPEM(v, func(t string) bool { return t == "CERTIFICATE" }):
		return []FieldError{{Field: field, Reason: "must be PEM with at least one -----BEGIN CERTIFICATE----- block: paste " + what + ", BEGIN and END lines included"}}
	}
	return nil
}

// hasPEM reports whether data holds a well-formed PEM block whose type
// match accepts. Decoding, rather than searching for the BEGIN line, also
// catches a certificate truncated by a bad paste.
func hasPEM(data []byte, match func(string) bool) bool {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if match(b.Type) {
			return true
		}
	}
}

// isPrivateKey accepts PKCS#8 (plain and encrypted), PKCS#1 and SEC 1 keys.
func isPrivateKey(blockType string) bool { return strings.HasSuffix(blockType, "PRIVATE KEY") }

// quoteShort quotes a user-given name for an error, cut short so a huge
// bad input does not make a huge message.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

// FromJSON builds and validates a secret from the reference platform's JSON
// form: a flat object of string values, such as {"username":"u",
// "password":"p"} or {"certificate":"-----BEGIN…","privateKey":"…"}.
// Errors name the offending key and never quote the input.
func FromJSON(name string, typ Type, raw []byte) (Secret, error) {
	data, err := parseFlatJSON(raw)
	if err != nil {
		return Secret{}, err
	}
	s := Secret{Name: name, Type: typ, Data: data}
	if err := s.Validate(); err != nil {
		return Secret{}, err
	}
	return s, nil
}

// parseFlatJSON reads the object token by token rather than with
// json.Unmarshal, so it can name the key of a non-string value, refuse a
// repeated key (Unmarshal silently keeps the last), and report syntax errors
// by offset: json.SyntaxError messages quote the offending input character,
// which may be part of a value.
func parseFlatJSON(raw []byte) (map[string][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // so a number is refused as a number, not decoded
	syntax := func() error {
		return invalidField("data", fmt.Sprintf("not valid JSON (near byte %d): give an object of string values, like {\"username\":\"…\",\"password\":\"…\"}", dec.InputOffset()))
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, invalidField("data", "must be a JSON object of string values, like {\"username\":\"…\",\"password\":\"…\"}")
		}
		return nil, syntax()
	}
	data := map[string][]byte{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, syntax()
		}
		key, ok := t.(string)
		if !ok {
			return nil, syntax()
		}
		if _, dup := data[key]; dup {
			return nil, invalidField("data", fmt.Sprintf("key %s appears twice: give each key once", quoteShort(key)))
		}
		t, err = dec.Token()
		if err != nil {
			return nil, syntax()
		}
		var kind string
		switch v := t.(type) {
		case string:
			data[key] = []byte(v)
			continue
		case json.Number:
			kind = "a number"
		case bool:
			kind = "a boolean"
		case nil:
			kind = "null"
		case json.Delim:
			if v == '[' {
				kind = "an array"
			} else {
				kind = "an object"
			}
		}
		field := "data"
		if validKey(key) {
			field = "data." + key
		}
		return nil, invalidField(field, fmt.Sprintf("key %s is %s: every value must be a JSON string (quote it)", quoteShort(key), kind))
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntax()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidField("data", fmt.Sprintf("unexpected data after the JSON object (near byte %d): give one object", dec.InputOffset()))
	}
	return data, nil
}

// Ref points at one key of one secret, as pipes name their credentials.
type Ref struct {
	Secret string
	Key    string
}

// ParseRef parses the reference form SECRET/KEY, e.g. kafka-creds/password.
// Errors do not repeat the input: a user who pastes a password where a
// reference belongs must not see it echoed into a terminal or a log.
func ParseRef(s string) (Ref, error) {
	const form = "want SECRET/KEY, e.g. kafka-creds/password"
	name, key, ok := strings.Cut(s, "/")
	switch {
	case !ok:
		return Ref{}, fmt.Errorf("secret reference: no '/': %s", form)
	case name == "":
		return Ref{}, fmt.Errorf("secret reference: the secret name before '/' is empty: %s", form)
	case key == "":
		return Ref{}, fmt.Errorf("secret reference: the key after '/' is empty: %s", form)
	case !validName(name):
		return Ref{}, fmt.Errorf("secret reference: invalid secret name: %s; for the name, %s", form, nameRule)
	case !validKey(key):
		return Ref{}, fmt.Errorf("secret reference: invalid key: %s; for the key, %s", form, keyRule)
	}
	return Ref{Secret: name, Key: key}, nil
}

// String returns the SECRET/KEY form ParseRef reads.
func (r Ref) String() string { return r.Secret + "/" + r.Key }

// invalidField is a one-field *fielderr.List for a secret.
func invalidField(field, reason string) error {
	return &fielderr.List{Kind: "secret", Fields: []FieldError{{Field: field, Reason: reason}}}
}
