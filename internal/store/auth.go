package store

import "time"

// SealedSecret is a secret as stored: its value sealed by package secret's
// Keyring, its key names in the clear so listing needs no master key.
type SealedSecret struct {
	Name    string
	Type    string
	Keys    []string
	Brokers []string // where the secret may be sent; see secret.Bound
	Sealed  []byte
	Created time.Time
	Updated time.Time
}

// Token is an API token as stored: the SHA-256 of the token, hex, never
// the token itself.
type Token struct {
	Name string
	Hash string
	// Scope is what the token may do: read, operate or admin (see
	// package api). Tokens made before scopes existed are admin.
	Scope   string
	Created time.Time
}
