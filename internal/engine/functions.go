package engine

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// PutFunction creates or replaces a function. Pipes targeting it restart
// on the next reconcile, which this triggers, and post to the new URL.
func (e *Engine) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	if err := f.Validate(); err != nil {
		return pipe.Function{}, err
	}
	f, err := e.store.PutFunction(ctx, f)
	if err != nil {
		return pipe.Function{}, err
	}
	e.poke()
	return f, nil
}

// GetFunction returns the named function.
func (e *Engine) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	return e.store.GetFunction(ctx, name)
}

// ListFunctions returns every function.
func (e *Engine) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	return e.store.ListFunctions(ctx)
}

// DeleteFunction removes a function no pipe targets; while pipes do, it
// fails with ErrFunctionInUse naming them, rather than leaving them
// without a target.
func (e *Engine) DeleteFunction(ctx context.Context, name string) error {
	if _, err := e.store.GetFunction(ctx, name); err != nil {
		return err
	}
	pipes, err := e.store.ListPipes(ctx)
	if err != nil {
		return err
	}
	var users []string
	for _, p := range pipes {
		if p.Target.Function == name {
			users = append(users, p.Name)
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("function %q is the target of pipes %v: delete them or point them elsewhere first: %w", name, users, pipe.ErrFunctionInUse)
	}
	return e.store.DeleteFunction(ctx, name)
}
