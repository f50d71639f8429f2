package engine

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// PutFunction creates or replaces a function. Pipes targeting an HTTP
// function restart on the next reconcile, which this triggers, and post to
// the new URL; a hosted function's next invocation runs on processes of
// the new handler. A function may not change kind while pipes target it:
// their target sections name the kind.
func (e *Engine) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	if err := f.Validate(); err != nil {
		return pipe.Function{}, err
	}
	if old, err := e.store.GetFunction(ctx, f.Name); err == nil && old.Kind() != f.Kind() {
		users, err := e.pipesWhere(ctx, func(p pipe.Pipe) bool { return p.Target.FunctionName() == f.Name })
		if err != nil {
			return pipe.Function{}, err
		}
		if len(users) > 0 {
			return pipe.Function{}, fmt.Errorf("function %q is the target of pipes %v as a %s function: delete them, or register the %s function under another name: %w",
				f.Name, users, old.Kind(), f.Kind(), pipe.ErrFunctionInUse)
		}
	}
	f, err := e.store.PutFunction(ctx, f)
	if err != nil {
		return pipe.Function{}, err
	}
	e.poke()
	return e.functionStatus(f), nil
}

// GetFunction returns the named function, with its processes' status if
// it is hosted.
func (e *Engine) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	f, err := e.store.GetFunction(ctx, name)
	if err != nil {
		return pipe.Function{}, err
	}
	return e.functionStatus(f), nil
}

// ListFunctions returns every function.
func (e *Engine) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	fs, err := e.store.ListFunctions(ctx)
	for i := range fs {
		fs[i] = e.functionStatus(fs[i])
	}
	return fs, err
}

// DeleteFunction removes a function no pipe targets; while pipes do, it
// fails with ErrFunctionInUse naming them, rather than leaving them
// without a target.
func (e *Engine) DeleteFunction(ctx context.Context, name string) error {
	if _, err := e.store.GetFunction(ctx, name); err != nil {
		return err
	}
	users, err := e.pipesWhere(ctx, func(p pipe.Pipe) bool { return p.Target.FunctionName() == name })
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
