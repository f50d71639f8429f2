package secret

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Brokers bound a secret to where it may be sent. A cluster that names a
// generic or tls-client secret must have every bootstrap server among the
// secret's brokers: otherwise anyone who may edit clusters (or create an
// event source mapping with SourceAccessConfigurations) could point a
// cluster that uses a stored password at a host they run, and read the
// password off the wire. tls-ca secrets hold public certificates and are
// not bound.
//
// An entry is host:port, host (any port), or *.domain[:port] (any host
// under domain: MSK's brokers are b-1.NAME.ID.cN.kafka.REGION.amazonaws.com).
// Host names compare without case.

// ValidateBrokers checks broker entries; the error names the bad one.
func ValidateBrokers(brokers []string) error {
	for _, b := range brokers {
		host, port, err := splitBroker(b)
		if err != nil {
			return err
		}
		h := strings.TrimPrefix(host, "*.")
		if h == "" || strings.ContainsAny(h, "*/@ ") {
			return fmt.Errorf("broker %q: give host:port, host or *.domain[:port]", b)
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("broker %q: the port must be 1–65535", b)
			}
		}
	}
	return nil
}

func splitBroker(b string) (host, port string, err error) {
	if strings.Contains(b, "://") {
		return "", "", fmt.Errorf("broker %q: give host:port without a scheme", b)
	}
	if h, p, err := net.SplitHostPort(b); err == nil {
		return strings.ToLower(h), p, nil
	}
	return strings.ToLower(strings.Trim(b, "[]")), "", nil
}

// Bound reports whether secret brokers allow sending to server
// (host:port, as a cluster's bootstrap server).
func Bound(brokers []string, server string) bool {
	sh, sp, err := splitBroker(server)
	if err != nil {
		return false
	}
	for _, b := range brokers {
		host, port, err := splitBroker(b)
		if err != nil || (port != "" && port != sp) {
			continue
		}
		if domain, ok := strings.CutPrefix(host, "*."); ok {
			if strings.HasSuffix(sh, "."+domain) {
				return true
			}
			continue
		}
		if host == sh {
			return true
		}
	}
	return false
}

// Unbound returns the servers brokers do not allow.
func Unbound(brokers, servers []string) []string {
	var out []string
	for _, s := range servers {
		if !Bound(brokers, s) {
			out = append(out, s)
		}
	}
	return out
}

// Binds says whether secrets of type t are bound to brokers.
func (t Type) Binds() bool { return t != TLSCA }
