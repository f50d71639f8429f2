package secret

import (
	"github.com/sluice-dev/sluice/internal/fielderr"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	yaml2 "go.yaml.in/yaml/v2"
)

// planted is a value no output may contain.
const planted = "s3cr3t-planted-9f27"

// assertNoLeak fails if out holds planted as text, base64 (how JSON writes
// []byte) or hex (what %x of the bytes would print).
func assertNoLeak(t *testing.T, what, out string) {
	t.Helper()
	for _, form := range []string{
		planted,
		base64.StdEncoding.EncodeToString([]byte(planted)),
		hex.EncodeToString([]byte(planted)),
		strings.ToUpper(hex.EncodeToString([]byte(planted))),
	} {
		if strings.Contains(out, form) {
			t.Errorf("%s leaks the value (as %q):\n%s", what, form, out)
		}
	}
}

// testPEM returns a self-signed certificate and its PKCS#8 key, in PEM.
func testPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func generic(name string, kv ...string) Secret {
	s := Secret{Name: name, Type: Generic, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Data[kv[i]] = []byte(kv[i+1])
	}
	return s
}

// fields returns the Field of every *FieldError err joins, or fails.
func fields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var l *fielderr.List
	if !errors.As(err, &l) || l.Kind != "secret" {
		t.Fatalf("error %v is not a *fielderr.List of a secret", err)
	}
	var out []string
	for _, f := range l.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestValidate(t *testing.T) {
	cert, key := testPEM(t)
	chain := append(append([]byte{}, cert...), cert...)
	rsaKey := []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
	truncated := cert[:len(cert)/2]
	keyAsCert := key // a PEM block, but not a certificate

	cases := []struct {
		name   string
		s      Secret
		fields []string // nil: valid
	}{
		{"generic", generic("kafka-creds", "username", "u", "password", planted), nil},
		{"generic empty value", generic("a", "empty", ""), nil},
		{"name one char", generic("a", "k", "v"), nil},
		{"name dots", generic("kafka.prod-1", "k", "v"), nil},
		{"name 63", generic(strings.Repeat("a", 63), "k", "v"), nil},
		{"name 64", generic(strings.Repeat("a", 64), "k", "v"), []string{"name"}},
		{"name empty", generic("", "k", "v"), []string{"name"}},
		{"name upper", generic("Kafka", "k", "v"), []string{"name"}},
		{"name underscore", generic("kafka_creds", "k", "v"), []string{"name"}},
		{"name leading dash", generic("-kafka", "k", "v"), []string{"name"}},
		{"name trailing dot", generic("kafka.", "k", "v"), []string{"name"}},
		{"name slash", generic("a/b", "k", "v"), []string{"name"}},
		{"no keys", generic("a"), []string{"data"}},
		{"nil data", Secret{Name: "a", Type: Generic}, []string{"data"}},
		{"key chars", generic("a", "A.b_c-9", "v"), nil},
		{"key 253", generic("a", strings.Repeat("k", 253), "v"), nil},
		{"key 254", generic("a", strings.Repeat("k", 254), "v"), []string{"data"}},
		{"key empty", generic("a", "", "v"), []string{"data"}},
		{"key space", generic("a", "my key", "v"), []string{"data"}},
		{"key slash", generic("a", "a/b", "v"), []string{"data"}},
		{"size at limit", generic("a", "k", strings.Repeat("x", MaxDataSize)), nil},
		{"size over limit", generic("a", "k", strings.Repeat("x", MaxDataSize-1), "l", "xx"), []string{"data"}},
		{"type empty", Secret{Name: "a", Data: map[string][]byte{"k": nil}}, []string{"type"}},
		{"type unknown", Secret{Name: "a", Type: "opaque", Data: map[string][]byte{"k": nil}}, []string{"type"}},
		{"several at once", Secret{Name: "A", Type: "x"}, []string{"name", "data", "type"}},

		{"tls-ca", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": cert}}, nil},
		{"tls-ca chain", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": chain}}, nil},
		{"tls-ca text around", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": append([]byte("subject=CN=x\n"), cert...)}}, nil},
		{"tls-ca missing", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"ca": cert}}, []string{"data.certificate"}},
		{"tls-ca not pem", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": []byte(planted)}}, []string{"data.certificate"}},
		{"tls-ca truncated", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": truncated}}, []string{"data.certificate"}},
		{"tls-ca a key", Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": keyAsCert}}, []string{"data.certificate"}},

		{"tls-client", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": key}}, nil},
		{"tls-client password", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": key, "privateKeyPassword": []byte(planted)}}, nil},
		{"tls-client rsa key", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": rsaKey}}, nil},
		{"tls-client no key", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert}}, []string{"data.privateKey"}},
		{"tls-client no cert", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"privateKey": key}}, []string{"data.certificate"}},
		{"tls-client key not pem", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": []byte(planted)}}, []string{"data.privateKey"}},
		{"tls-client cert as key", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": cert}}, []string{"data.privateKey"}},
		{"tls-client extra key", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": key, "ca": cert}}, []string{"data.ca"}},
		{"tls-client wrong case", Secret{Name: "c", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privatekey": key}}, []string{"data.privateKey", "data.privatekey"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Validate()
			got := fields(t, err)
			if !slices.Equal(got, c.fields) {
				t.Fatalf("fields = %q, want %q (error: %v)", got, c.fields, err)
			}
			if err != nil {
				msg := err.Error()
				assertNoLeak(t, "Validate error", msg)
				for _, f := range c.fields {
					if !strings.Contains(msg, f+": ") {
						t.Errorf("error %q does not name field %s", msg, f)
					}
				}
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	err := generic("Bad_Name", "k", "v").Validate()
	if err == nil || !strings.Contains(err.Error(), "lowercase letters") || !strings.Contains(err.Error(), "name: ") {
		t.Errorf("name error %v should name the field and the fix", err)
	}
	var l *fielderr.List
	if !errors.As(err, &l) || l.Fields[0].Field != "name" {
		t.Errorf("errors.As: %v", err)
	}
	err = Secret{Name: "ca", Type: TLSCA, Data: map[string][]byte{"certificate": []byte(planted)}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("tls-ca error %v should say what a certificate looks like", err)
	}
}

func TestFromJSON(t *testing.T) {
	cert, key := testPEM(t)
	t.Run("generic", func(t *testing.T) {
		s, err := FromJSON("kafka-creds", Generic, []byte(`{"username":"u","password":"`+planted+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "kafka-creds" || s.Type != Generic || string(s.Data["username"]) != "u" || string(s.Data["password"]) != planted || len(s.Data) != 2 {
			t.Fatalf("got %#v", s)
		}
	})
	t.Run("tls-client", func(t *testing.T) {
		raw, _ := json.Marshal(map[string]string{"certificate": string(cert), "privateKey": string(key), "privateKeyPassword": planted})
		s, err := FromJSON("client", TLSClient, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Data["certificate"], cert) || !bytes.Equal(s.Data["privateKey"], key) || string(s.Data["privateKeyPassword"]) != planted {
			t.Fatal("values changed on the way through")
		}
	})
	t.Run("escapes and whitespace", func(t *testing.T) {
		s, err := FromJSON("a", Generic, []byte(" \n{ \"k\" : \"line\\nnext \\u00e9\\\"\" }\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(s.Data["k"]); got != "line\nnext é\"" {
			t.Fatalf("value = %q", got)
		}
	})

	bad := []struct {
		name, raw string
		field     string
		want      string // in the message
	}{
		{"number", `{"user":"u","port":9092}`, "data.port", `key "port" is a number`},
		{"bool", `{"tls":true}`, "data.tls", "a boolean"},
		{"null", `{"password":null}`, "data.password", "null"},
		{"array", `{"brokers":["` + planted + `"]}`, "data.brokers", "an array"},
		{"object", `{"nested":{"p":"` + planted + `"}}`, "data.nested", "an object"},
		{"bad key non-string", `{"bad key":1}`, "data", `"bad key" is a number`},
		{"duplicate", `{"p":"a","p":"` + planted + `"}`, "data", "twice"},
		{"array top", `["` + planted + `"]`, "data", "JSON object"},
		{"string top", `"` + planted + `"`, "data", "JSON object"},
		{"empty input", ``, "data", "JSON object"},
		{"empty object", `{}`, "data", "at least one key"},
		{"syntax in value", `{"p":` + planted + `}`, "data", "not valid JSON"},
		{"unterminated", `{"p":"` + planted, "data", "not valid JSON"},
		{"trailing", `{"p":"a"} {"q":"` + planted + `"}`, "data", "after the JSON object"},
		{"trailing garbage", `{"p":"a"}` + planted, "data", "after the JSON object"},
		{"bad name", `{"p":"a"}`, "name", "lowercase"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			name := "a"
			if c.name == "bad name" {
				name = "Bad"
			}
			s, err := FromJSON(name, Generic, []byte(c.raw))
			if err == nil {
				t.Fatalf("accepted: %v", s)
			}
			var l *fielderr.List
			if !errors.As(err, &l) || l.Fields[0].Field != c.field {
				t.Errorf("error %v: want a field error for %s", err, c.field)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			assertNoLeak(t, "FromJSON error", err.Error())
			// One character of a value is a leak too: the json package's
			// syntax errors quote the offending character.
			if strings.Contains(err.Error(), "'s'") {
				t.Errorf("error %q quotes input", err)
			}
		})
	}
	t.Run("type rules apply", func(t *testing.T) {
		_, err := FromJSON("ca", TLSCA, []byte(`{"certificate":"`+planted+`"}`))
		if got := fields(t, err); !slices.Equal(got, []string{"data.certificate"}) {
			t.Fatalf("fields %q (%v)", got, err)
		}
	})
}

func TestRef(t *testing.T) {
	for _, in := range []string{"kafka-creds/password", "a/b", "tls.prod/privateKey", "x/A.b_c-9"} {
		r, err := ParseRef(in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", in, err)
			continue
		}
		if r.String() != in {
			t.Errorf("ParseRef(%q).String() = %q", in, r.String())
		}
	}
	r, _ := ParseRef("kafka-creds/password")
	if r != (Ref{Secret: "kafka-creds", Key: "password"}) {
		t.Errorf("got %+v", r)
	}
	for _, in := range []string{"", planted, "/password", "kafka-creds/", "/", "Kafka/password", "kafka/pass word", "kafka/a/b", planted + "/" + planted + "!"} {
		_, err := ParseRef(in)
		if err == nil {
			t.Errorf("ParseRef(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), "SECRET/KEY") {
			t.Errorf("ParseRef(%q): %v does not name the form", in, err)
		}
		assertNoLeak(t, "ParseRef error", err.Error())
	}
}

func TestMeta(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := generic("kafka-creds", "username", "u", "password", planted, "a", "x")
	s.Created, s.Updated = now, now.Add(time.Minute)
	m := s.Meta()
	if m.Name != "kafka-creds" || m.Type != Generic || !slices.Equal(m.Keys, []string{"a", "password", "username"}) || !m.Created.Equal(now) || !m.Updated.Equal(now.Add(time.Minute)) {
		t.Fatalf("Meta = %+v", m)
	}
	if k := (Secret{}).Meta().Keys; k == nil || len(k) != 0 {
		t.Errorf("empty secret keys = %#v, want []", k)
	}
	b, _ := json.Marshal(Secret{Name: "e", Type: Generic}.Meta())
	if !strings.Contains(string(b), `"keys":[]`) {
		t.Errorf("empty keys encode as %s", b)
	}
}

// TestNoLeak prints, logs and encodes a secret every way we can think of.
func TestNoLeak(t *testing.T) {
	cert, key := testPEM(t)
	_ = cert
	s := generic("kafka-creds", "username", "alice", "password", planted)
	s.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tls := Secret{Name: "client", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": key, "privateKeyPassword": []byte(planted)}}
	ps := &s
	type Wrapper struct {
		Pipe   string
		Secret Secret
		Ptr    *Secret
		List   []Secret
	}
	w := Wrapper{Pipe: "p", Secret: s, Ptr: ps, List: []Secret{s, tls}}

	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%20s", "%-20v", "%T %v"} {
		outs["Sprintf "+verb] = fmt.Sprintf(verb, s)
		outs["Sprintf "+verb+" pointer"] = fmt.Sprintf(verb, ps)
		outs["Sprintf "+verb+" tls"] = fmt.Sprintf(verb, tls)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs["Sprintf "+verb+" wrapper"] = fmt.Sprintf(verb, w)
		outs["Sprintf "+verb+" map"] = fmt.Sprintf(verb, map[string]Secret{"k": s})
	}
	outs["Sprint"] = fmt.Sprint(s, ps)
	outs["Sprintln"] = fmt.Sprintln(s, ps)
	outs["Errorf"] = fmt.Errorf("storing %v: %w", s, errors.New("x")).Error()

	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("secret", "secret", s, "ptr", ps, "tls", tls, "wrapper", w)
		log.Info("attr", slog.Any("secret", s), slog.Any("list", []Secret{s}))
		log.With("secret", s).WithGroup("g").Info("with", "s", s)
		outs["slog "+h.name] = buf.String()
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s)
	var rec struct {
		Secret struct {
			Name string   `json:"name"`
			Type string   `json:"type"`
			Keys []string `json:"keys"`
		} `json:"secret"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Secret.Name != "kafka-creds" || rec.Secret.Type != "generic" || !slices.Equal(rec.Secret.Keys, []string{"password", "username"}) {
		t.Errorf("slog JSON group = %+v, from %s", rec.Secret, buf.String())
	}

	for name, v := range map[string]any{"secret": s, "pointer": ps, "tls": tls, "wrapper": w} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs["json "+name] = string(b)
		y, err := yaml2.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs["yaml "+name] = string(y)
	}
	var m Meta
	if err := json.Unmarshal([]byte(outs["json secret"]), &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "kafka-creds" || m.Type != Generic || !slices.Equal(m.Keys, []string{"password", "username"}) || !m.Created.Equal(s.Created) {
		t.Errorf("json of a Secret = %s, want its Meta", outs["json secret"])
	}

	for what, out := range outs {
		assertNoLeak(t, what, out)
		if strings.Contains(out, "alice") || strings.Contains(out, "BEGIN") {
			t.Errorf("%s leaks a value:\n%s", what, out)
		}
	}
	for _, what := range []string{"Sprintf %v", "Sprintf %+v", "Sprintf %#v", "Sprintf %s", "slog json", "slog text", "json secret", "yaml secret"} {
		if !strings.Contains(outs[what], "kafka-creds") || !strings.Contains(outs[what], "password") || !strings.Contains(outs[what], "username") {
			t.Errorf("%s should show the name and key names: %s", what, outs[what])
		}
	}
	if want := `secret.Secret{Name:"kafka-creds", Type:"generic", Data:map[string][]byte{"password":<redacted>, "username":<redacted>}}`; outs["Sprintf %#v"] != want {
		t.Errorf("%%#v = %s, want %s", outs["Sprintf %#v"], want)
	}
	if want := `secret "kafka-creds" (type "generic", keys ["password" "username"])`; outs["Sprintf %v"] != want {
		t.Errorf("%%v = %s, want %s", outs["Sprintf %v"], want)
	}
}
