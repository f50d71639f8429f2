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
	users, err := e.pipesWhere(ctx, func(p pipe.Pipe) bool { return p.Target.HTTPOrZero().Function == name })
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("function %q is the target of pipes %v: delete them or point them elsewhere first: %w", name, users, pipe.ErrFunctionInUse)
	}
	return e.store.DeleteFunction(ctx, name)
}

// pipesWhere names the pipes match accepts: the users of a function or a
// cluster, which may not be deleted while there are any.
func (e *Engine) pipesWhere(ctx context.Context, match func(pipe.Pipe) bool) ([]string, error) {
	pipes, err := e.store.ListPipes(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pipes {
		if match(p) {
			names = append(names, p.Name)
		}
	}
	return names, nil
}
