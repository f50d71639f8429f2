package secret

import (
	"context"
	"errors"
)

// Errors a secret Service returns, wrapped; test with errors.Is.
var (
	ErrNotFound = errors.New("secret not found")
	ErrInUse    = errors.New("secret is used by clusters")
)

// Service manages secrets. It never returns a value: only Meta.
type Service interface {
	PutSecret(ctx context.Context, s Secret) (Meta, error)
	GetSecret(ctx context.Context, name string) (Meta, error)
	ListSecrets(ctx context.Context) ([]Meta, error)
	// DeleteSecret refuses (ErrInUse) while a cluster uses the secret.
	DeleteSecret(ctx context.Context, name string) error
}
